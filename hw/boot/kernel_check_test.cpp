#include "hw/boot/kernel_check.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

using hw::boot::check_riscv_kernel;
using hw::boot::KernelKind;

namespace {

// The first 64 bytes of a riscv64 Linux Image (arch/riscv/include/asm/image.h), version 0.2.
std::vector<uint8_t> riscv_image() {
  std::vector<uint8_t> image(4096, 0);
  std::memcpy(image.data() + 0x30, "RISCV\0\0\0", 8);
  std::memcpy(image.data() + 0x38, "RSC\x05", 4);
  return image;
}

std::string error_of(const base::ErrorOr<void>& r) {
  return r.ok() ? std::string("ok") : r.error().message;
}

}  // namespace

TEST_CASE("kernel_kind tells images apart by their headers") {
  CHECK(hw::boot::kernel_kind({}) == KernelKind::Empty);
  CHECK(hw::boot::kernel_kind(riscv_image()) == KernelKind::RiscvLinuxImage);
  std::vector<uint8_t> elf = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  CHECK(hw::boot::kernel_kind(elf) == KernelKind::Elf);
  std::vector<uint8_t> arm(4096, 0);
  std::memcpy(arm.data() + 0x38, "ARM\x64", 4);
  CHECK(hw::boot::kernel_kind(arm) == KernelKind::Arm64LinuxImage);
  std::vector<uint8_t> bz(4096, 0);
  std::memcpy(bz.data() + 0x202, "HdrS", 4);
  CHECK(hw::boot::kernel_kind(bz) == KernelKind::X86BzImage);
  CHECK(hw::boot::kernel_kind(std::vector<uint8_t>{0x1f, 0x8b, 8, 0}) == KernelKind::Gzip);
}

// Each of these used to start and print nothing, ever.
TEST_CASE("riscv64 kernels that cannot start the way the config says are refused with the reason") {
  CHECK(error_of(check_riscv_kernel({}, "Image", true, true)) == "boot.kernel Image: the file is empty");
  CHECK(error_of(check_riscv_kernel(riscv_image(), "Image", false, true)) ==
        "boot.kernel Image: a Linux kernel Image runs in S-mode under SBI firmware, and boot.firmware is not "
        "set (set boot.firmware: opensbi)");
  CHECK(check_riscv_kernel(riscv_image(), "Image", true, true).ok());
  std::vector<uint8_t> noise(1 << 16);
  std::mt19937 random(14);
  for (uint8_t& b : noise) b = static_cast<uint8_t>(random());
  CHECK(error_of(check_riscv_kernel(noise, "Image", true, true)).find("not a Linux kernel") !=
        std::string::npos);
  CHECK(check_riscv_kernel(noise, "prog.bin", false, false).ok());  // bare metal: unknowable
  CHECK(error_of(check_riscv_kernel(std::vector<uint8_t>{0x1f, 0x8b, 8}, "Image.gz", true, true))
            .find("gzip-compressed") != std::string::npos);
}
