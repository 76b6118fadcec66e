// The device tree blob for the riscv64 virt machine, laid out like QEMU's (hw/riscv/virt.c) so
// Debian's OpenSBI, U-Boot and Linux find everything where they expect it. The machine builder
// fills FdtLayout from the resolved graph with what it actually instantiated; this file only turns
// that into nodes (libfdt's sequential-write API), so it is testable without a machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace hw::riscv {

struct FdtRange {
  uint64_t base = 0;
  uint64_t size = 0;
};

struct FdtLayout {
  // cpus
  unsigned hart_count = 1;
  // cpu.topology: harts are numbered socket-major, then core, then thread (as QEMU numbers them);
  // /cpus/cpu-map has a cluster per socket (Linux reports it as physical_package_id).
  unsigned sockets = 1, cores_per_socket = 1, threads_per_core = 1;
  std::string isa = "rv64imafdc";                                   // riscv,isa base letters
  std::vector<std::string> isa_extensions = {"zicsr", "zifencei"};  // multi-letter, lower case
  std::string mmu_type = "riscv,sv48";
  uint64_t timebase_frequency = 10'000'000;

  std::vector<FdtRange> memory;  // RAM as the guest should see it (whole RAM, HTIF page included)

  // chosen
  std::string bootargs;
  std::optional<FdtRange> initrd;  // start, size
  std::vector<uint8_t> rng_seed;   // /chosen/rng-seed when not empty

  // soc
  FdtRange syscon{0x100000, 0x1000};
  FdtRange clint{0x2000000, 0x10000};
  FdtRange plic{0xc000000, 0x600000};
  uint32_t plic_ndev = 96;
  struct Irq {
    FdtRange reg;
    uint32_t irq = 0;
  };
  std::vector<Irq> uarts;         // ns16550a; the first is stdout-path
  uint32_t uart_clock = 3686400;  // what QEMU advertises; only used to compute divisors
  std::vector<Irq> virtio_mmio;   // populated slots only: an empty slot would fault on probe
  struct PciHost {
    FdtRange ecam;
    FdtRange pio;                     // I/O window (CPU address); PCI I/O address 0
    FdtRange mmio32;                  // identity-mapped memory window
    std::vector<uint32_t> intx_irqs;  // PLIC sources of INTA..D at slot 0 (rotated per slot)
  };
  std::optional<PciHost> pci;
  // The power button: a SiFive GPIO controller with one input pin (its interrupt line) and a
  // gpio-keys node that maps pin 0 to KEY_POWER.
  std::optional<Irq> power_gpio;
  std::optional<FdtRange> pvpanic;  // qemu,pvpanic-mmio
};

// Path of the first UART node ("/soc/serial@10000000"), for stdout-path.
std::string uart_node_path(const FdtLayout& layout);

base::ErrorOr<std::vector<uint8_t>> build_fdt(const FdtLayout& layout);

// A device tree the file gives (boot.dtb, QEMU's -dtb): used instead of the generated one, with
// /chosen's bootargs and initrd range set from the file as QEMU does. The blob is checked (header,
// sizes, structure) before anything reads it; it comes from the user, not from us.
base::ErrorOr<std::vector<uint8_t>> patch_user_fdt(std::vector<uint8_t> blob, const std::string& bootargs,
                                                   const std::optional<FdtRange>& initrd);

}  // namespace hw::riscv
