// The resolved device graph: what a machine file means once every check has passed, every
// reference is resolved and every address is decided. Machine builders in hw/ walk this and nothing
// else (they never read the config again), `vmlaunch plan` prints it, the device tree and ACPI/MP
// tables are generated from it.
//
// Contract for consumers:
// - Everything here is plain data, fully resolved: no defaults left to apply, no names left to look
//   up except by the indices and names given here.
// - Order is deterministic: the same file (and lock file) always yields the same Graph, field by field.
// - `devices` lists the machine's builtin devices first (interrupt controllers, host bridges, ...;
//   `builtin == true`), then the config's devices in declaration order. Parents are not necessarily
//   before children: use `Bus::devices` (address order) to walk a bus, or `Graph::topological_order()`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "config/location.h"
#include "config/node.h"

namespace graph {

enum class BusKind {
  System,        // fixed MMIO slots on the system bus (the riscv virt UART, ...)
  VirtioMmio,    // virtio-mmio transport slots: each slot has an MMIO window and an IRQ
  Pci,           // conventional PCI or PCIe bus: 32 slots x 8 functions
  Isa,           // x86 ISA: fixed port/IRQ slots (COM1..COM4)
  Scsi,          // a SCSI bus provided by an HBA (virtio-scsi-pci); slot = SCSI target id
  VirtioSerial,  // ports of a virtio-serial device; slot = port number
  Usb,           // root ports of a USB host controller (qemu-xhci); slot = port number
  Acpi,          // x86 devices that exist only in the DSDT (vmgenid): no registers, a GED interrupt per slot
};
std::string_view bus_kind_name(BusKind kind);  // "system", "virtio-mmio", "pci", "isa", "scsi",
                                               // "virtio-serial", "usb", "acpi"
std::optional<BusKind> parse_bus_kind(std::string_view name);

enum class BackendKind { Chardev, Block, Net, Rng, Passthrough, Fs };
std::string_view backend_kind_name(
    BackendKind kind);  // "chardev", "block", "net", "rng", "passthrough", "fs"
std::optional<BackendKind> parse_backend_kind(std::string_view name);

// A typed property value. Sizes are stored as integers (bytes); MAC addresses as strings.
using Value = std::variant<bool, int64_t, std::string>;
std::string value_to_string(const Value& value);

struct Machine {
  std::string name;       // the config's `name`
  std::string arch;       // "riscv64", "x86_64"
  std::string type;       // "virt", "microvm", "pc"
  uint64_t ram_size = 0;  // bytes
  uint64_t ram_base = 0;  // guest-physical address of the first RAM byte
  // x86: the 8254 PIT and 8259 PIC pair are there (pc always; microvm with `machine.pit: true`).
  bool pit = false;

  struct Cpu {
    unsigned count = 1;
    std::string model;                             // "rv64gc", "host", ...
    std::vector<std::string> features;             // "+x2apic", "-cx16" in config order
    unsigned sockets = 1, cores = 1, threads = 1;  // sockets * cores * threads >= count
  } cpu;
};

// Which accelerator the file prefers for this machine (shown by `plan`). Decided from the file alone:
// whether this host can run it is asked only by `up` (and noted by `plan` on stderr).
struct AccelChoice {
  std::string name;                     // first candidate: "kvm", "jit"; empty when none can run the arch
  std::vector<std::string> candidates;  // the file's accelerators that run this arch, in its order
  std::string reason;                   // "first of [kvm, jit] that runs riscv64 guests"
  struct Rejected {
    std::string name;
    std::string reason;  // "runs only x86_64 guests", "unknown accelerator (known: ...)"
  };
  std::vector<Rejected> rejected;  // the file's accelerators that can never run this arch
  // Settings of object entries (`{type: jit, tier: llvm}`), by accelerator name, as written (numbers
  // as decimal text); the accelerator that runs the machine interprets its own (accel::VmSpec).
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> settings;
};

struct Boot {
  // Strings as the config wrote them after interpolation; relative paths already resolved against the
  // file that wrote them. `firmware` may be a keyword ("opensbi", "none") or a path; empty = not set.
  std::string firmware;
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  std::string dtb;  // a device tree file to use instead of the generated one; empty = generate
};

// A slot of a bus that has fixed per-slot resources (virtio-mmio, ISA serial ports, system UART).
struct SlotResource {
  uint64_t base = 0;  // MMIO address, or I/O port number when `port_io`
  uint64_t size = 0;
  std::optional<uint32_t> irq;
  bool port_io = false;
};

struct Bus {
  std::string name;  // "pcie.0", "pci.0", "br1", "scsi0.0", "virtio-mmio", "isa"
  BusKind kind = BusKind::Pci;
  std::string provided_by;  // id of the device providing it; empty for the machine's root buses
  uint32_t first_slot = 0;  // usable slot range, inclusive
  uint32_t last_slot = 0;
  std::vector<uint32_t> reserved_slots;      // never inferred (may hold builtin devices), ascending
  std::vector<SlotResource> slot_resources;  // per slot from first_slot, for fixed-resource buses
  // PCI only: INTx pin p (0 = A .. 3 = D) of the device in slot s on this bus reaches root interrupt
  // line pci_irqs[(s + p) % 4]. For a bridge's bus the entries are already rotated by the standard
  // swizzle through every bridge above it; Device::irq holds the result for pin A. Kept for generating
  // interrupt maps (device tree interrupt-map, MP table, ACPI _PRT).
  std::vector<uint32_t> pci_irqs;
  std::vector<size_t> devices;  // indices into Graph::devices, by address
};

struct Address {
  enum class Kind {
    None,  // not addressable on its bus (unused today)
    Pci,   // slot.function on a PCI bus
    Slot,  // index on a slotted bus (virtio-mmio, isa, system, scsi target, virtio-serial port)
  };
  Kind kind = Kind::None;
  uint32_t slot = 0;
  uint32_t function = 0;  // PCI: the function; SCSI: the logical unit on the target (slot)
  // For slots with fixed resources (virtio-mmio window, UART): where the device's registers are.
  std::optional<SlotResource> resource;

  // "03.1" for PCI (hex, as lspci and QEMU write it), "1.2" for SCSI target 1 LUN 2, "2" otherwise
  std::string to_string() const;
};

struct BackendRef {
  std::string property;  // the device key that named it: "chardev", "drive", "netdev", "rng", "host"
  BackendKind kind = BackendKind::Chardev;
  std::string name;      // "disk0"
  std::string driver;    // the backend's driver: "qcow2", "stdio", "user", "vfio-pci"
  config::Node options;  // the backend's whole map as written (driver included), with locations
};

struct Property {
  std::string name;
  Value value;
  bool is_default = true;     // not written in the config
  config::Location location;  // where the config wrote it (unknown for defaults)
};

struct Device {
  std::string id;  // as written, or generated "<driver>.<n>" (n counts unnamed devices per driver)
  bool id_generated = false;
  std::string driver;    // catalogue name: "virtio-net-pci"
  bool builtin = false;  // part of the machine type, not the config (plic, clint, host bridge, ...)
  std::string bus;       // name of the bus it sits on; empty for builtins outside any bus
  Address address;
  bool address_inferred = false;     // bus and/or address chosen by vmlaunch (or taken from the lock file)
  bool address_locked = false;       // the address came from the lock file
  std::vector<Property> properties;  // every property of the type, defaults applied, in catalogue order
  std::vector<BackendRef> backends;
  std::optional<uint32_t> irq;  // root interrupt controller line (PLIC source, IOAPIC/PIC pin)
  // Builtins: where their registers are (syscon, CLINT, PLIC, ECAM, CF8/CFC ports ...).
  std::optional<SlotResource> region;
  std::vector<std::string> provides;  // names of the buses this device provides
  config::Location location;          // the device's map in the config; unknown for builtins
  size_t config_index = 0;            // index in the config's `devices:` list (builtins: 0)

  const Property* property(std::string_view name) const;
  bool bool_property(std::string_view name, bool fallback = false) const;
  int64_t int_property(std::string_view name, int64_t fallback = 0) const;
  std::string string_property(std::string_view name, std::string fallback = {}) const;
  const BackendRef* backend(std::string_view property) const;
};

struct Backend {
  std::string name;
  BackendKind kind = BackendKind::Chardev;
  std::string driver;
  config::Node options;  // the whole map as written, driver included
  config::Location location;
  std::vector<std::string> used_by;  // device ids
};

struct MemoryRegion {
  enum class Kind { Ram, Rom, Mmio, PciWindow, PciConfig };
  std::string name;  // "ram", "uart0", "pcie-ecam", "pci-mmio32"
  uint64_t base = 0;
  uint64_t size = 0;
  Kind kind = Kind::Mmio;
  std::string device;  // device id when the region belongs to one
};
std::string_view memory_kind_name(
    MemoryRegion::Kind kind);  // "ram", "rom", "mmio", "pci-window", "pci-config"

struct IrqLine {
  uint32_t number = 0;               // line of the root interrupt controller
  std::string controller;            // "plic", "ioapic"
  std::vector<std::string> devices;  // device ids driving it (PCI INTx lines are shared)
};

struct Graph {
  Machine machine;
  AccelChoice accel;
  Boot boot;
  std::vector<Bus> buses;         // root buses first (machine order), then provided buses by provider order
  std::vector<Device> devices;    // builtins first, then config order
  std::vector<Backend> backends;  // by kind, then name as written
  std::vector<MemoryRegion> memory_map;  // ascending base
  std::vector<IrqLine> irqs;             // ascending number
  std::string interrupt_controller;      // "plic", "ioapic"

  const Device* find_device(std::string_view id) const;
  const Bus* find_bus(std::string_view name) const;
  const Backend* find_backend(std::string_view name) const;
  // Devices on `bus`, by address.
  std::vector<const Device*> devices_on(std::string_view bus) const;
  // Device indices such that every bus provider comes before the devices on its bus.
  std::vector<size_t> topological_order() const;
};

}  // namespace graph
