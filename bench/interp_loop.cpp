// bench/interp_loop: guest MIPS of the reference interpreter on an integer loop, side by side with
// qemu-riscv64 (user mode, TCG) running the same loop as a Linux program.
// Usage: interp_loop [--no-qemu]   (run with cwd = the runfiles root, as `bazel run` does)
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
#include "jit/hart.h"

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

double run_ours(const std::string& image_path, uint64_t* retired) {
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
  jit::Platform platform(ops, timebase);
  platform.add_ram(*region);
  jit::Hart hart(platform, 0);
  hart.reset(0x80000000, 0, 0, 0);
  const auto start = std::chrono::steady_clock::now();
  while (!ops.done) hart.step(1 << 20);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *retired = hart.instret();
  return seconds;
}

double run_qemu(const std::string& elf_path) {
  const std::string command = "qemu-riscv64-static " + elf_path;
  const auto start = std::chrono::steady_clock::now();
  const int status = std::system(command.c_str());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (status != 0) return -1;
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  const bool qemu = !(argc > 1 && std::strcmp(argv[1], "--no-qemu") == 0);
  uint64_t retired = 0;
  const double ours = run_ours("bench/interp_loop_bare.bin", &retired);
  const double ours_mips = retired / ours / 1e6;
  std::printf("jit interpreter: %llu instructions in %.3f s = %.1f MIPS\n",
              static_cast<unsigned long long>(retired), ours, ours_mips);
  if (!qemu) return 0;
  const double theirs = run_qemu("bench/interp_loop_linux.elf");
  if (theirs < 0) {
    std::printf("qemu-riscv64-static: not available (apt-get install qemu-user-static)\n");
    return 0;
  }
  const double qemu_mips = kInstructions / theirs / 1e6;
  std::printf("qemu-riscv64-static (TCG, user mode): %.3f s = %.1f MIPS (incl. process start)\n", theirs,
              qemu_mips);
  std::printf("ratio jit/qemu: %.2f\n", ours_mips / qemu_mips);
  return 0;
}
