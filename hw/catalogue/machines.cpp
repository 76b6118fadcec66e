// Machine types: root buses, builtin devices and the fixed part of the memory map. The values follow
// QEMU's machines of the same name (hw/riscv/virt.c, hw/i386/microvm.c, hw/i386/pc.c), so Debian's
// firmware and kernels run unmodified and addresses match what people know from QEMU.
#include "hw/catalogue/catalogue.h"

namespace hw::catalogue {

using graph::Bus;
using graph::BusKind;
using graph::MemoryRegion;
using graph::SlotResource;

namespace {

SlotResource mmio(uint64_t base, uint64_t size) {
  return {base, size, std::nullopt, false};
}
SlotResource pio(uint64_t base, uint64_t size) {
  return {base, size, std::nullopt, true};
}

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

Bus root_bus(std::string name, BusKind kind, uint32_t first, uint32_t last,
             std::vector<uint32_t> reserved = {}) {
  Bus bus;
  bus.name = std::move(name);
  bus.kind = kind;
  bus.first_slot = first;
  bus.last_slot = last;
  bus.reserved_slots = std::move(reserved);
  return bus;
}

// `count` virtio-mmio transports, each with its own window and IRQ line.
Bus virtio_mmio_bus(uint64_t base, uint64_t stride, uint32_t count, uint32_t first_irq) {
  Bus bus = root_bus("virtio-mmio", BusKind::VirtioMmio, 0, count - 1);
  for (uint32_t i = 0; i < count; ++i)
    bus.slot_resources.push_back({base + i * stride, stride, first_irq + i, false});
  return bus;
}

// ISA serial ports as PCs have them: COM1..COM4.
Bus isa_bus() {
  Bus bus = root_bus("isa", BusKind::Isa, 0, 3);
  bus.slot_resources = {{0x3f8, 8, 4, true}, {0x2f8, 8, 3, true}, {0x3e8, 8, 4, true}, {0x2e8, 8, 3, true}};
  return bus;
}

MachineType riscv64_virt() {
  MachineType m;
  m.arch = "riscv64";
  m.name = "virt";
  m.help = "QEMU-compatible RISC-V virt board: PLIC, CLINT, ns16550a, virtio-mmio, PCIe (ECAM)";
  m.interrupt_controller = "plic";
  m.ram_base = 0x80000000;
  m.max_cpus = 8;
  m.cpu_models = {"rv64gc", "rv64imafdc", "max"};

  Bus sysbus = root_bus("sysbus", BusKind::System, 0, 0);
  sysbus.slot_resources = {{0x10000000, 0x100, 10, false}};  // UART0
  m.buses.push_back(std::move(sysbus));
  m.buses.push_back(virtio_mmio_bus(0x10001000, 0x1000, 8, 1));
  Bus pcie = root_bus("pcie.0", BusKind::Pci, 0, 31, {0});
  pcie.pci_irqs = {32, 33, 34, 35};  // PLIC sources for INTA..D at slot 0, rotated by slot (virt.c)
  m.buses.push_back(std::move(pcie));

  m.fixed_devices = {
      {"syscon",
       "sifive-test",
       "poweroff and reboot register (sifive,test)",
       "",
       0,
       mmio(0x100000, 0x1000),
       {}},
      {"clint",
       "riscv-clint",
       "core-local interruptor: mtime, mtimecmp, software interrupts",
       "",
       0,
       mmio(0x2000000, 0x10000),
       {}},
      {"plic", "riscv-plic", "platform-level interrupt controller", "", 0, mmio(0xc000000, 0x600000), {}},
      {"power-button", "sifive-gpio",
       "GPIO controller (sifive,gpio0) whose pin 0 is a gpio-keys power button: `down` asks the guest to "
       "power off",
       "", 0, mmio(0x10060000, 0x1000), 12},
      {"pvpanic",
       "pvpanic-mmio",
       "guest panic notifier (qemu,pvpanic-mmio): lifecycle.on-panic decides what follows",
       "",
       0,
       mmio(0x102000, 0x2),
       {}},
      {"pcie-host",
       "gpex-pcihost",
       "generic PCIe host bridge (ECAM)",
       "pcie.0",
       0,
       mmio(0x30000000, 0x10000000),
       {}},
  };
  m.memory_map = {
      {"syscon", 0x100000, 0x1000, MemoryRegion::Kind::Mmio, "syscon"},
      {"pvpanic", 0x102000, 0x2, MemoryRegion::Kind::Mmio, "pvpanic"},
      {"clint", 0x2000000, 0x10000, MemoryRegion::Kind::Mmio, "clint"},
      {"pcie-pio", 0x3000000, 0x10000, MemoryRegion::Kind::PciWindow, "pcie-host"},
      {"plic", 0xc000000, 0x600000, MemoryRegion::Kind::Mmio, "plic"},
      {"power-button", 0x10060000, 0x1000, MemoryRegion::Kind::Mmio, "power-button"},
      {"pcie-ecam", 0x30000000, 0x10000000, MemoryRegion::Kind::PciConfig, "pcie-host"},
      {"pcie-mmio", 0x40000000, 0x40000000, MemoryRegion::Kind::PciWindow, "pcie-host"},
  };
  return m;
}

// Devices that exist only in the DSDT (vmgenid), each with an interrupt of the ACPI generic event
// device: GSI 16, above the ISA IRQs, apart from the PCI and virtio-mmio ones of both machines.
Bus acpi_bus() {
  Bus bus = root_bus("acpi", BusKind::Acpi, 0, 0);
  bus.slot_resources = {{0, 0, 16, false}};
  return bus;
}

// What both x86 machines share: the PC RAM split below 4 GiB and the APICs.
MachineType x86_common() {
  MachineType m;
  m.arch = "x86_64";
  m.interrupt_controller = "ioapic";
  m.ram_base = 0;
  m.low_ram_limit = 3 * GiB;
  m.high_ram_base = 4 * GiB;
  m.max_cpus = 64;
  m.cpu_models = {"host", "max"};  // KVM runs the host's CPU (features can still be masked)
  m.fixed_devices = {
      {"ioapic", "ioapic", "I/O APIC", "", 0, mmio(0xfec00000, 0x1000), {}},
      {"lapic", "lapic", "local APICs (in-kernel with kvm)", "", 0, mmio(0xfee00000, 0x1000), {}},
      {"pvpanic",
       "pvpanic-isa",
       "guest panic notifier (QEMU's pvpanic, ACPI QEMU0001): lifecycle.on-panic decides what follows",
       "",
       0,
       pio(0x505, 1),
       {}},
  };
  m.memory_map = {
      {"ioapic", 0xfec00000, 0x1000, MemoryRegion::Kind::Mmio, "ioapic"},
      {"lapic", 0xfee00000, 0x1000, MemoryRegion::Kind::Mmio, "lapic"},
  };
  return m;
}

MachineType x86_64_microvm() {
  MachineType m = x86_common();
  m.name = "microvm";
  m.help =
      "minimal x86 machine without PCI: COM1/COM2, virtio-mmio on the kernel command line (as Firecracker); "
      "no PIC or PIT unless machine.pit (Linux uses the LAPIC timer)";
  // kvm keeps only the LAPICs for microvm (split irqchip); hw/x86/ioapic emulates the I/O APIC.
  m.fixed_devices[0].help = "I/O APIC (emulated by vmlaunch; kvm keeps only the LAPICs)";
  m.pit = MachineType::Pit::Optional;
  m.buses.push_back(isa_bus());
  m.buses.push_back(virtio_mmio_bus(0xfeb00000, 0x200, 8, 5));
  m.buses.push_back(acpi_bus());
  m.fixed_devices.push_back({"i8042", "i8042",
                             "keyboard controller: reset, and Ctrl-Alt-Del from the host (`down` asks the "
                             "guest to power off, as Firecracker)",
                             "", 0, pio(0x60, 5), 1});
  return m;
}

MachineType x86_64_pc() {
  MachineType m = x86_common();
  m.name = "pc";
  m.help = "conventional PC: PCI bus pci.0 through a CF8/CFC host bridge, ISA serial ports";
  m.fixed_devices[0].help = "I/O APIC (in-kernel with kvm, with the PIC pair and the PIT)";
  m.pit = MachineType::Pit::Present;
  Bus pci = root_bus("pci.0", BusKind::Pci, 0, 31, {0});
  pci.pci_irqs = {10, 10, 11, 11};  // PIRQ A..D as SeaBIOS routes them on QEMU's pc
  m.buses.push_back(std::move(pci));
  m.buses.push_back(isa_bus());
  m.buses.push_back(acpi_bus());
  m.fixed_devices.insert(m.fixed_devices.begin(), {"pci-host",
                                                   "pci-host-bridge",
                                                   "PCI host bridge, configuration through ports CF8/CFC",
                                                   "pci.0",
                                                   0,
                                                   pio(0xcf8, 8),
                                                   {}});
  m.fixed_devices.push_back({"i8042", "i8042", "keyboard controller: reset", "", 0, pio(0x60, 5), 1});
  m.fixed_devices.push_back({"power-button", "acpi-power-button",
                             "ACPI power button: a generic event device (ACPI0013, IRQ 9) notifies PWRB "
                             "(PNP0C0C); `down` asks the guest to power off",
                             "", 0, std::nullopt, 9});
  m.memory_map.insert(m.memory_map.begin(), {"pci-mmio32", 0xc0000000, 0xfec00000 - 0xc0000000,
                                             MemoryRegion::Kind::PciWindow, "pci-host"});
  return m;
}

}  // namespace

const std::vector<MachineType>& machine_types() {
  static const std::vector<MachineType> types = {riscv64_virt(), x86_64_microvm(), x86_64_pc()};
  return types;
}

const MachineType* find_machine_type(std::string_view arch, std::string_view name) {
  for (const MachineType& m : machine_types())
    if (m.arch == arch && m.name == name) return &m;
  return nullptr;
}

}  // namespace hw::catalogue
