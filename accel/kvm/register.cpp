// Links the kvm implementation into accel::Registry::builtin() (see accel/registry.h).
#include "accel/kvm/cpuid.h"
#include "accel/kvm/kvm.h"
#include "accel/registry.h"

namespace accel::kvm {
namespace {
const AccelFactoryRegistration registration(
    "kvm", [] { return std::make_unique<KvmAccelerator>(kvm_device_path()); }, cpu_feature_problem);
}  // namespace
}  // namespace accel::kvm
