// The catalogue: every device type and machine type vmlaunch knows, as data. The device graph resolver
// checks configs against it, `vmlaunch devices` prints it, and the schema's driver enum must list
// exactly its device type names (tests/graph/schema_drivers_test.cpp checks that).
//
// Machine types own their fixed layout (root buses, builtin devices, memory map, IRQs); the machine
// engineers tune these tables, the resolver only reads them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/graph.h"

namespace hw::catalogue {

enum class PropertyType { Bool, Int, Size, String, Mac };
std::string_view property_type_name(PropertyType type);  // "bool", "int", "size", "string", "mac"

struct PropertySpec {
  std::string name;
  PropertyType type = PropertyType::String;
  graph::Value default_value;  // bool for Bool, int64_t for Int/Size, string for String/Mac
  std::string help;
  int64_t min = 0;  // Int and Size only, inclusive
  int64_t max = INT64_MAX;
};

// A device key that names a backend (or passthrough resource) declared elsewhere in the config.
struct BackendSpec {
  std::string property;  // "chardev", "drive", "netdev", "rng", "host"
  graph::BackendKind kind = graph::BackendKind::Chardev;
  bool required = false;
  bool exclusive = true;  // may only be used by one device
  std::string help;
  std::vector<std::string> aliases;  // other keys accepted for the same reference ("host" for "passthrough")
};

// A bus a device provides. Its name is the device id plus `suffix`: a pci-bridge with id br1 provides
// bus "br1"; a virtio-scsi-pci with id scsi0 provides "scsi0.0" (as QEMU names child buses).
struct ProvidedBus {
  std::string suffix;
  graph::BusKind kind = graph::BusKind::Pci;
  uint32_t first_slot = 0;
  uint32_t last_slot = 0;
  std::vector<uint32_t> reserved_slots;  // not inferred; explicit addresses may still use them
};

struct DeviceType {
  std::string name;
  std::string help;
  std::vector<graph::BusKind> bus_kinds;  // what it plugs into; the first one the machine has wins
  std::vector<PropertySpec> properties;
  std::vector<BackendSpec> backends;
  std::vector<ProvidedBus> provides;

  const PropertySpec* find_property(std::string_view name) const;
  const BackendSpec* find_backend(std::string_view property) const;
};

// Why a known device type or property cannot take effect yet ("" when it can): validate refuses a
// device of such a type, or such a property set to anything, with this reason and the alternative.
// Nothing the file accepts is silently ignored at `up`.
std::string_view device_not_yet(std::string_view type);
std::string_view property_not_yet(std::string_view type, std::string_view property);

// Every device type, sorted by name.
const std::vector<DeviceType>& device_types();
const DeviceType* find_device_type(std::string_view name);
std::vector<std::string> device_type_names();

// A device that is part of a machine type (interrupt controllers, host bridges, syscon, ...).
struct FixedDevice {
  std::string id;
  std::string driver;  // not a catalogue device type: builtins are the machine builder's business
  std::string help;
  std::string bus;  // root bus it occupies a slot of ("pcie.0" for the host bridge), or empty
  uint32_t slot = 0;
  std::optional<graph::SlotResource> region;  // MMIO or port range it decodes
  std::optional<uint32_t> irq;
};

struct MachineType {
  std::string arch;  // "riscv64", "x86_64"
  std::string name;  // "virt", "microvm", "pc"
  std::string help;
  std::string interrupt_controller;  // "plic", "ioapic"
  uint64_t ram_base = 0;
  // RAM at or above this address moves to `high_ram_base` (x86's PCI hole below 4 GiB); 0 = no split.
  uint64_t low_ram_limit = 0;
  uint64_t high_ram_base = 0;
  unsigned max_cpus = 1;
  std::vector<std::string> cpu_models;  // what cpu.model may say on this machine; the first is the default
  // The x86 legacy timer and interrupt controller (8254 PIT, 8259 PIC pair): never there (riscv64),
  // there when the file asks with `machine.pit: true` (microvm), or always there (pc).
  enum class Pit { Absent, Optional, Present } pit = Pit::Absent;
  std::vector<graph::Bus> buses;  // root buses, devices empty
  std::vector<FixedDevice> fixed_devices;
  std::vector<graph::MemoryRegion> memory_map;  // everything but RAM
};

const std::vector<MachineType>& machine_types();
const MachineType* find_machine_type(std::string_view arch, std::string_view name);

}  // namespace hw::catalogue
