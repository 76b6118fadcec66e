// Makes the `jit` implementation known to accel::Registry (the launcher links this in).
#include "accel/jit/jit_accelerator.h"
#include "accel/registry.h"

namespace {
accel::AccelFactoryRegistration g_jit_registration(
    "jit", [] { return accel::make_jit_accelerator(); }, accel::jit_cpu_feature_problem);
}  // namespace
