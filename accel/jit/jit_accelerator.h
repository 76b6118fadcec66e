// The `jit` accelerator: riscv64 guests on jit::Engine (jit/engine.h; the reference interpreter
// today), one host thread per hart. The LLVM tier will plug in behind the same engine.
//
// Contract for machines (hw/riscv64 virt):
// - create_vm(spec, memory, ops): spec.vcpu_count harts; spec.timebase drives `time` and Sstc
//   (a private 10 MHz timebase is used if it is null). Every region already in `memory` is mapped;
//   map_memory() adds later ones (before the harts run).
// - Vm::set_irq_line(hart * 64 + bit, level) drives that hart's mip input bit (MSIP=3, MTIP=7,
//   SEIP=9, MEIP=11); thread-safe; wakes a hart sleeping in wfi.
// - Vcpu::set_boot_state(RiscvBootState) puts the hart in M-mode at pc with a0..a2; run() executes
//   until kick() and returns ExitInterrupted. Guest faults trap into the guest; they never end run().
#pragma once

#include <memory>
#include <string>

#include "accel/accelerator.h"

namespace accel {

std::unique_ptr<Accelerator> make_jit_accelerator();

// Why the interpreter cannot honour a `cpu.features` entry ("+v", "sstc" without a sign), or empty:
// the static check `validate` runs (the same rule as at `up`).
std::string jit_cpu_feature_problem(const std::string& feature);

}  // namespace accel
