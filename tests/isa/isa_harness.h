// Runs a flat bare-metal riscv64 image on the `jit` accelerator the way a machine would (through
// accel::Accelerator), with a tiny device set at fixed addresses outside RAM (see macros.inc):
// an HTIF-style tohost word, interrupt-line controls and a readable register.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace isa {

struct RunResult {
  bool finished = false;  // tohost was written before the time limit
  uint64_t tohost = 0;    // 1 = pass, (n << 1) | 1 = test n failed
  std::string error;      // harness problems (file missing, accelerator error)
  double seconds = 0;
  std::vector<uint8_t> dump;  // the buffer the program named through DUMP/DUMP+8, if any
  std::string vcpu_error;     // the first error a vCPU's run() returned (e.g. a lockstep divergence)
  std::string stats_json;     // the accelerator's `up --stats` JSON after the run
};

inline constexpr uint64_t kRamBase = 0x80000000;

// Loads `image` at kRamBase into `ram_mib` MiB of RAM, starts `harts` harts at kRamBase (a0 =
// hart id) and waits up to `timeout_seconds` for a tohost write. accel_options: the jit
// accelerator's settings ({"tier", "llvm"} forces every block through the LLVM tier).
using AccelOptions = std::vector<std::pair<std::string, std::string>>;
RunResult run_image(const std::string& image_path, unsigned harts = 1, unsigned ram_mib = 16,
                    double timeout_seconds = 20, const AccelOptions& accel_options = {});

}  // namespace isa
