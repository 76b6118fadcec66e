// Boot images: reading files, loading ELF or raw images into guest memory, and resolving the
// config's `boot.firmware` keywords to Debian's firmware files.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hw::boot {

// Where loaded bytes go: guest RAM and any RAM-backed windows (the HTIF page). Returns false if a
// byte of [gpa, gpa+size) has no home; the loader reports that as an error naming the image.
using PhysWriter = std::function<bool(uint64_t gpa, std::span<const uint8_t> bytes)>;

// Reads a whole file (at most `max_size` bytes; boot images are small next to guest RAM).
base::ErrorOr<std::vector<uint8_t>> read_file(const std::string& path, uint64_t max_size = uint64_t{1} << 32);

struct LoadedImage {
  bool elf = false;
  uint64_t entry = 0;  // ELF entry, or the raw image's load address
  uint64_t start = 0;  // lowest and one past the highest byte written
  uint64_t end = 0;
};

// An ELF file is loaded by its PT_LOAD physical addresses (zero-filling .bss); anything else is a
// raw image copied to `raw_address`. `what` names the image in errors ("kernel", "firmware").
base::ErrorOr<LoadedImage> load_image(std::span<const uint8_t> bytes, uint64_t raw_address,
                                      const PhysWriter& writer, std::string_view what);

// What `boot.firmware` means on riscv64.
struct Firmware {
  enum class Kind {
    None,     // no firmware: the kernel (or bare-metal program) starts in M-mode at its entry
    Jump,     // OpenSBI fw_jump (or any firmware that jumps to a fixed next address)
    Dynamic,  // OpenSBI fw_dynamic: wants a fw_dynamic_info struct in a2
  };
  Kind kind = Kind::None;
  std::string path;          // the firmware file (empty for None)
  std::string payload_path;  // a payload the keyword implies (U-Boot for "u-boot"), else empty
};

// Directory of Debian's OpenSBI build for QEMU virt; overridable for tests.
inline constexpr const char* kOpensbiDir = "/usr/lib/riscv64-linux-gnu/opensbi/generic";
inline constexpr const char* kUbootSmode = "/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin";

// "" / "none" -> None; "opensbi" -> fw_jump.bin; "opensbi-dynamic" -> fw_dynamic.bin;
// "u-boot" -> fw_jump.bin with U-Boot (S-mode) as payload; anything else is a path whose file name
// decides Jump vs Dynamic ("fw_dynamic*" is Dynamic). Missing files are errors with the package name.
base::ErrorOr<Firmware> resolve_firmware(std::string_view spec);

// OpenSBI's struct fw_dynamic_info (include/sbi/fw_dynamic.h), version 2, as bytes to place in RAM.
std::vector<uint8_t> fw_dynamic_info(uint64_t next_addr, uint64_t boot_hart = 0);

}  // namespace hw::boot
