#include "graph/graph.h"

#include <cstdio>

namespace graph {

namespace {
constexpr std::string_view kBusKindNames[] = {"system", "virtio-mmio",   "pci", "isa",
                                              "scsi",   "virtio-serial", "usb", "acpi"};
constexpr std::string_view kBackendKindNames[] = {"chardev", "block", "net", "rng", "passthrough", "fs"};
constexpr std::string_view kMemoryKindNames[] = {"ram", "rom", "mmio", "pci-window", "pci-config"};
}  // namespace

std::string_view bus_kind_name(BusKind kind) {
  return kBusKindNames[static_cast<size_t>(kind)];
}

std::optional<BusKind> parse_bus_kind(std::string_view name) {
  for (size_t i = 0; i < std::size(kBusKindNames); ++i)
    if (kBusKindNames[i] == name) return static_cast<BusKind>(i);
  return std::nullopt;
}

std::string_view backend_kind_name(BackendKind kind) {
  return kBackendKindNames[static_cast<size_t>(kind)];
}

std::optional<BackendKind> parse_backend_kind(std::string_view name) {
  for (size_t i = 0; i < std::size(kBackendKindNames); ++i)
    if (kBackendKindNames[i] == name) return static_cast<BackendKind>(i);
  return std::nullopt;
}

std::string_view memory_kind_name(MemoryRegion::Kind kind) {
  return kMemoryKindNames[static_cast<size_t>(kind)];
}

std::string value_to_string(const Value& value) {
  if (const bool* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  if (const int64_t* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
  return std::get<std::string>(value);
}

std::string Address::to_string() const {
  char text[32];
  switch (kind) {
    case Kind::None:
      return "-";
    case Kind::Pci:
      std::snprintf(text, sizeof text, "%02x.%x", slot, function);
      return text;
    case Kind::Slot:  // a SCSI target's logical unit other than 0 follows its target: "1.2"
      return function ? std::to_string(slot) + "." + std::to_string(function) : std::to_string(slot);
  }
  return "?";
}

const Property* Device::property(std::string_view name) const {
  for (const Property& p : properties)
    if (p.name == name) return &p;
  return nullptr;
}

bool Device::bool_property(std::string_view name, bool fallback) const {
  const Property* p = property(name);
  if (!p || !std::holds_alternative<bool>(p->value)) return fallback;
  return std::get<bool>(p->value);
}

int64_t Device::int_property(std::string_view name, int64_t fallback) const {
  const Property* p = property(name);
  if (!p || !std::holds_alternative<int64_t>(p->value)) return fallback;
  return std::get<int64_t>(p->value);
}

std::string Device::string_property(std::string_view name, std::string fallback) const {
  const Property* p = property(name);
  if (!p || !std::holds_alternative<std::string>(p->value)) return fallback;
  return std::get<std::string>(p->value);
}

const BackendRef* Device::backend(std::string_view property) const {
  for (const BackendRef& ref : backends)
    if (ref.property == property) return &ref;
  return nullptr;
}

const Device* Graph::find_device(std::string_view id) const {
  for (const Device& d : devices)
    if (d.id == id) return &d;
  return nullptr;
}

const Bus* Graph::find_bus(std::string_view name) const {
  for (const Bus& b : buses)
    if (b.name == name) return &b;
  return nullptr;
}

const Backend* Graph::find_backend(std::string_view name) const {
  for (const Backend& b : backends)
    if (b.name == name) return &b;
  return nullptr;
}

std::vector<const Device*> Graph::devices_on(std::string_view bus) const {
  std::vector<const Device*> out;
  if (const Bus* b = find_bus(bus))
    for (size_t index : b->devices) out.push_back(&devices[index]);
  return out;
}

std::vector<size_t> Graph::topological_order() const {
  // Builtins and root-bus devices first, then breadth-first down the provided buses: a provider is
  // always emitted before the bus it provides is walked.
  std::vector<size_t> order;
  std::vector<bool> emitted(devices.size(), false);
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].bus.empty()) {
      order.push_back(i);
      emitted[i] = true;
    }
  }
  for (const Bus& bus : buses) {
    if (!bus.provided_by.empty()) continue;
    for (size_t index : bus.devices) {
      if (!emitted[index]) {
        order.push_back(index);
        emitted[index] = true;
      }
    }
  }
  for (size_t next = 0; next < order.size(); ++next) {
    for (const std::string& provided : devices[order[next]].provides) {
      const Bus* bus = find_bus(provided);
      if (!bus) continue;
      for (size_t index : bus->devices) {
        if (!emitted[index]) {
          order.push_back(index);
          emitted[index] = true;
        }
      }
    }
  }
  return order;
}

}  // namespace graph
