// x86 boot: where things go in low memory, the e820 map, and the two ways a kernel is entered:
//   - Linux boot protocol (bzImage setup header, or a vmlinux ELF): boot_params ("zero page") with
//     the e820 table, cmdline and initrd, entered in 64-bit mode with identity page tables and a GDT.
//   - PVH: an ELF with XEN_ELFNOTE_PHYS32_ENTRY, entered in 32-bit protected mode with EBX pointing
//     to hvm_start_info (cmdline, memory map, modules = initrd, RSDP).
// Everything here writes through a bounds-checked GuestMemory; files are hostile input.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "accel/accelerator.h"
#include "base/guest_memory.h"
#include "base/result.h"
#include "hw/boot/elf.h"

namespace hw::x86 {

// Low-memory layout (below 1 MiB, as Firecracker and QEMU's microvm place them).
inline constexpr uint64_t kGdtAddress = 0x500;
inline constexpr uint64_t kStartInfoAddress = 0x6000;   // PVH hvm_start_info + memmap + modlist
inline constexpr uint64_t kBootParamsAddress = 0x7000;  // Linux zero page
inline constexpr uint64_t kStackTop = 0x8ff0;
inline constexpr uint64_t kPml4Address = 0x9000;  // then PDPT 0xa000, PDs 0xb000-0xefff
inline constexpr uint64_t kCmdlineAddress = 0x20000;
inline constexpr uint64_t kCmdlineMax = 0x10000;
inline constexpr uint64_t kEbdaStart = 0x9fc00;  // MP table lives here
inline constexpr uint64_t kAcpiStart = 0xe0000;  // RSDP and tables; Linux scans 0xe0000-0xfffff
inline constexpr uint64_t kHighMemory = 0x100000;

struct E820Entry {
  uint64_t address;
  uint64_t size;
  uint32_t type;  // 1 RAM, 2 reserved
};
// RAM below 640 KiB (minus the EBDA), the BIOS area reserved, RAM from 1 MiB, high RAM above 4 GiB.
std::vector<E820Entry> e820_map(const base::GuestMemory& memory);

// Writes the boot GDT (null, null, code at 0x10, data at 0x18) for 64-bit or 32-bit code.
bool write_gdt(const base::GuestMemory& memory, bool long_mode);
// Identity-maps the first 4 GiB with 2 MiB pages at kPml4Address.
bool write_identity_page_tables(const base::GuestMemory& memory);

struct KernelImage {
  enum class Kind { BzImage, Vmlinux, Pvh };
  Kind kind = Kind::BzImage;
  uint64_t entry = 0;  // 64-bit entry (Linux) or 32-bit PVH entry
  uint64_t end = 0;    // one past the highest byte loaded
};

// Recognises and loads a kernel: a bzImage (needs boot protocol 2.06+ and a 64-bit entry), an ELF64
// or i386 ELF32 with a PVH note (loaded by physical address, entered through PVH), or another x86-64
// ELF (vmlinux, Linux boot protocol). `bytes` is the whole file.
base::ErrorOr<KernelImage> load_kernel(const base::GuestMemory& memory, std::span<const uint8_t> bytes);

// Finds XEN_ELFNOTE_PHYS32_ENTRY in an x86 ELF file's (ELF64 or ELF32) PT_NOTE segments; nullopt
// when absent or when the file is not a loadable x86 ELF.
std::optional<uint64_t> find_pvh_entry(std::span<const uint8_t> elf);
std::optional<uint64_t> find_pvh_entry(const hw::boot::ElfFile& elf);

struct BootInputs {
  const KernelImage* kernel = nullptr;
  std::span<const uint8_t> bzimage;  // the file again, for the setup header (bzImage only)
  std::string cmdline;
  uint64_t initrd_address = 0, initrd_size = 0;
  uint64_t rsdp_address = 0;  // 0 = none
};

// Places initrd high in low RAM (below 896 MiB, page aligned, above the kernel); returns its address.
base::ErrorOr<uint64_t> place_initrd(const base::GuestMemory& memory, const KernelImage& kernel,
                                     uint64_t size);

// Writes cmdline, boot_params or hvm_start_info, GDT and page tables; returns the BSP's boot state.
base::ErrorOr<accel::X86BootState> prepare_boot(const base::GuestMemory& memory, const BootInputs& inputs);

}  // namespace hw::x86
