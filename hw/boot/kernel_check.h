// What a riscv64 boot.kernel file is, checked before the machine starts: a 0-byte file, random
// bytes, or a Linux Image started without SBI firmware used to run into silence (`up` printed
// nothing, ever). The machine builder calls check_riscv_kernel after reading the file.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"

namespace hw::boot {

enum class KernelKind {
  Empty,
  Elf,
  RiscvLinuxImage,  // arch/riscv/include/asm/image.h header: "RISCV\0\0\0" at 0x30 or "RSC\x05" at 0x38
  Arm64LinuxImage,  // "ARM\x64" at 0x38
  X86BzImage,       // "HdrS" at 0x202
  Gzip,             // Image.gz and friends: compressed, not loadable as is
  Raw,              // anything else: a bare-metal program, or garbage
};

KernelKind kernel_kind(std::span<const uint8_t> bytes);

// Ok when `bytes` can start the way the config says. `has_firmware`: boot.firmware runs first
// (OpenSBI); `linux_expected`: boot.initrd or boot.cmdline is set, so the kernel must be Linux.
// Errors name the file and say what to change.
base::ErrorOr<void> check_riscv_kernel(std::span<const uint8_t> bytes, const std::string& path,
                                       bool has_firmware, bool linux_expected);

}  // namespace hw::boot
