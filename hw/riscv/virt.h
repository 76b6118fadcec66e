// The riscv64 `virt` machine: QEMU's virt memory map (so Debian's OpenSBI, U-Boot and Linux run
// unmodified), devices from the resolved graph, a generated device tree, and the boot images of
// `boot:` placed as QEMU places them. Registered as machine type "riscv64/virt".
//
// Boot layout (RAM at 0x80000000):
//   firmware (OpenSBI)          ram_base
//   kernel / payload            ram_base + 2 MiB (fw_jump's FW_JUMP_ADDR); ELF: its own addresses
//   initrd                      kernel start + min(RAM/2, 128 MiB), page aligned
//   fw_dynamic info             just below the device tree
//   device tree                 top of RAM (first 3 GiB), 2 MiB aligned, as QEMU
// Without firmware the kernel (a bare-metal program, usually an ELF) starts in M-mode at its entry;
// if its symbol table names `tohost`, the page(s) holding tohost/fromhost become the HTIF device.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "hw/riscv/fdt.h"

namespace graph {
struct Graph;
}

namespace hw::riscv {

// Where each boot image goes, computed before anything is written (tests check it directly).
struct BootPlan {
  uint64_t firmware_address = 0;  // when there is firmware
  uint64_t kernel_address = 0;    // raw kernel / payload load address
  uint64_t initrd_address = 0;    // when there is an initrd
  uint64_t fdt_address = 0;
  uint64_t info_address = 0;  // fw_dynamic_info
};

// `kernel_end`: one past the kernel's last byte (for initrd placement). Fails when things overlap
// or leave RAM.
// `firmware_fdt_copy`: where the firmware itself copies the device tree before it jumps (OpenSBI's
// fw_jump: FW_JUMP_FDT_ADDR, ram base + 0x2200000 in Debian's generic build), 0 for none; the initrd
// is kept clear of that copy (on 64 MiB QEMU's initrd spot is exactly there).
base::ErrorOr<BootPlan> plan_boot(uint64_t ram_base, uint64_t ram_size, bool has_firmware,
                                  uint64_t kernel_size, uint64_t initrd_size, uint64_t fdt_size,
                                  uint64_t firmware_fdt_copy = 0);

// OpenSBI fw_jump's FW_JUMP_FDT_ADDR for the generic platform: FW_TEXT_START + 0x2200000.
constexpr uint64_t kFwJumpFdtOffset = 0x2200000;

// The ISA the device tree advertises for the graph's cpu model and features ("+sstc", "-sstc",
// "-sv48"): fills isa, isa_extensions and mmu_type of `layout`.
base::Result<void, base::Error> apply_cpu_model(const std::string& model,
                                                const std::vector<std::string>& features, FdtLayout& layout);

}  // namespace hw::riscv
