// How riscv interrupt controllers (CLINT, PLIC) drive a hart's interrupt-pending inputs.
// The machine binds this to accel::Vm::set_irq_line(hart * 64 + bit, level); tests bind a fake.
// Called with the controller's lock held: the sink must not call back into the controller.
#pragma once

#include <functional>

namespace hw::riscv {

// mip bit numbers (privileged spec 1.12, table 3.6).
inline constexpr unsigned kMipSsip = 1, kMipMsip = 3, kMipStip = 5, kMipMtip = 7, kMipSeip = 9, kMipMeip = 11;

using HartIrqSink = std::function<void(unsigned hart, unsigned bit, bool level)>;

}  // namespace hw::riscv
