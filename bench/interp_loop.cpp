// bench/interp_loop: guest MIPS of the reference interpreter and of the LLVM tier (tier llvm: every
// block compiled before it runs) on an integer loop, side by side with qemu-riscv64 (user mode,
// TCG) running the same loop as a Linux program.
// Usage: interp_loop [--no-qemu]   (run with cwd = the runfiles root, as `bazel run` does)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "base/guest_memory.h"
#include "base/timebase.h"
#include "jit/engine.h"

namespace {

constexpr uint64_t kIterations = 100'000'000;  // keep in sync with BUILD (-defsym ITERATIONS)
constexpr uint64_t kInstructions = 4 * kIterations + 4;

class ToHost final : public accel::VmOps {
 public:
  bool mmio_read(uint64_t, std::span<uint8_t>) override { return false; }
  bool mmio_write(uint64_t addr, std::span<const uint8_t>) override {
    if (addr != 0x40000000) return false;
    done = true;
    return true;
  }
  bool pio_read(uint16_t, std::span<uint8_t>) override { return false; }
  bool pio_write(uint16_t, std::span<const uint8_t>) override { return false; }
  bool done = false;
};

double cpu_seconds(const rusage& usage) {
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
         usage.ru_stime.tv_usec / 1e6;
}

double thread_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return cpu_seconds(usage);
}

// Returns wall seconds; *cpu gets the CPU seconds the run consumed (what we compare: the machine
// is shared, so wall time depends on everyone else's load).
double run_ours(const std::string& image_path, jit::TierOptions::Mode mode, uint64_t* retired, double* cpu) {
  std::ifstream file(image_path, std::ios::binary);
  std::vector<uint8_t> image((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (image.empty()) {
    std::fprintf(stderr, "interp_loop: cannot read %s\n", image_path.c_str());
    std::exit(1);
  }
  base::GuestMemory memory;
  auto region = memory.add_region(0x80000000, 1 << 20);
  if (!region.ok() || !memory.write(0x80000000, image)) std::exit(1);
  base::Timebase timebase;
  ToHost ops;
  jit::Engine engine(ops, timebase, 1, jit::CpuConfig{});
  engine.add_ram(*region);
  jit::TierOptions tier;
  tier.mode = mode;
  tier.library = "jit/libvmlaunch_jit_llvm.so";  // runfiles-relative (data dep)
  auto set = engine.set_tier(tier);
  if (!set.ok()) {
    std::fprintf(stderr, "interp_loop: %s\n", set.error().c_str());
    std::exit(1);
  }
  engine.reset(0, 0x80000000, 0, 0, 0);
  const double cpu_start = thread_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  while (!ops.done) engine.step(0, 1 << 20);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *cpu = thread_cpu_seconds() - cpu_start;
  *retired = engine.state(0)->instret;
  return seconds;
}

// CPU seconds of a qemu-riscv64-static run (process start included), or -1 if it cannot run.
double run_qemu(const std::string& elf_path) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execlp("qemu-riscv64-static", "qemu-riscv64-static", elf_path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return cpu_seconds(usage);
}

}  // namespace

int main(int argc, char** argv) {
  const bool qemu = !(argc > 1 && std::strcmp(argv[1], "--no-qemu") == 0);
  uint64_t retired = 0;
  double cpu = 0;
  const double wall = run_ours("bench/interp_loop_bare.bin", jit::TierOptions::Mode::kInterp, &retired, &cpu);
  const double ours_mips = retired / cpu / 1e6;
  std::printf("jit interpreter: %llu instructions, %.3f s CPU (%.3f s wall) = %.1f MIPS\n",
              static_cast<unsigned long long>(retired), cpu, wall, ours_mips);
  const double auto_wall =
      run_ours("bench/interp_loop_bare.bin", jit::TierOptions::Mode::kAuto, &retired, &cpu);
  std::printf(
      "jit tier auto:   %llu instructions, %.3f s CPU (%.3f s wall) = %.1f MIPS (background compile)\n",
      static_cast<unsigned long long>(retired), cpu, auto_wall, retired / cpu / 1e6);
  const double tier_wall =
      run_ours("bench/interp_loop_bare.bin", jit::TierOptions::Mode::kLlvm, &retired, &cpu);
  const double tier_mips = retired / cpu / 1e6;
  std::printf(
      "jit llvm tier:   %llu instructions, %.3f s CPU (%.3f s wall) = %.1f MIPS (%.2fx the interpreter)\n",
      static_cast<unsigned long long>(retired), cpu, tier_wall, tier_mips, tier_mips / ours_mips);
  if (!qemu) return 0;
  const double theirs = run_qemu("bench/interp_loop_linux.elf");
  if (theirs < 0) {
    std::printf("qemu-riscv64-static: not available (apt-get install qemu-user-static)\n");
    return 0;
  }
  const double qemu_mips = kInstructions / theirs / 1e6;
  std::printf("qemu-riscv64-static (TCG JIT, user mode): %.3f s CPU = %.1f MIPS (incl. process start)\n",
              theirs, qemu_mips);
  std::printf("ratio interpreter/qemu: %.2f\n", ours_mips / qemu_mips);
  std::printf("ratio llvm tier/qemu: %.2f\n", tier_mips / qemu_mips);
  return 0;
}
