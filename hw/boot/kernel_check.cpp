#include "hw/boot/kernel_check.h"

#include <cstring>

namespace hw::boot {

namespace {

bool has_at(std::span<const uint8_t> bytes, size_t offset, const char* magic, size_t length) {
  return bytes.size() >= offset + length && std::memcmp(bytes.data() + offset, magic, length) == 0;
}

}  // namespace

KernelKind kernel_kind(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return KernelKind::Empty;
  if (has_at(bytes, 0,
             "\x7f"
             "ELF",
             4))
    return KernelKind::Elf;
  if (has_at(bytes, 0x38, "RSC\x05", 4) || has_at(bytes, 0x30, "RISCV\0\0\0", 8))
    return KernelKind::RiscvLinuxImage;
  if (has_at(bytes, 0x38, "ARM\x64", 4)) return KernelKind::Arm64LinuxImage;
  if (has_at(bytes, 0x202, "HdrS", 4)) return KernelKind::X86BzImage;
  if (has_at(bytes, 0, "\x1f\x8b", 2)) return KernelKind::Gzip;
  return KernelKind::Raw;
}

base::ErrorOr<void> check_riscv_kernel(std::span<const uint8_t> bytes, const std::string& path,
                                       bool has_firmware, bool linux_expected) {
  auto refuse = [&](const std::string& why) {
    return base::fail(base::Error("boot.kernel " + path + ": " + why));
  };
  switch (kernel_kind(bytes)) {
    case KernelKind::Empty:
      return refuse("the file is empty");
    case KernelKind::Elf:
      return {};  // the ELF loader checks the machine type and segments
    case KernelKind::RiscvLinuxImage:
      if (!has_firmware)
        return refuse(
            "a Linux kernel Image runs in S-mode under SBI firmware, and boot.firmware is not set (set "
            "boot.firmware: opensbi)");
      return {};
    case KernelKind::Arm64LinuxImage:
      return refuse("an arm64 Linux kernel Image, not a riscv64 one");
    case KernelKind::X86BzImage:
      return refuse("an x86 Linux bzImage, not a riscv64 kernel");
    case KernelKind::Gzip:
      return refuse("gzip-compressed (an Image.gz?); give the uncompressed Image");
    case KernelKind::Raw:
      if (linux_expected)
        return refuse(
            "not a Linux kernel (no RISC-V Image header, not ELF), but boot.initrd or boot.cmdline is set; "
            "check "
            "the file, or drop them for a bare-metal program");
      return {};  // a raw bare-metal program: nothing to check it against
  }
  return {};
}

}  // namespace hw::boot
