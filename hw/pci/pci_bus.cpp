#include "hw/pci/pci_bus.h"

#include <algorithm>
#include <cstdio>

namespace hw::pci {
namespace {

constexpr uint64_t kMiB = 1 << 20;

uint64_t align_up(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

std::string hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", (unsigned long long)v);
  return text;
}

}  // namespace

base::Result<void, base::Error> PciBus::plug(uint8_t device, uint8_t function,
                                             std::shared_ptr<PciFunction> fn) {
  if (device >= 32 || function >= 8)
    return base::fail(base::Error("PCI address " + std::to_string(device) + "." + std::to_string(function) +
                                  " is out of range on bus " + m_name));
  auto& slot = m_slots[device * 8 + function];
  if (slot)
    return base::fail(base::Error("PCI slot " + std::to_string(device) + "." + std::to_string(function) +
                                  " of bus " + m_name + " is taken by " + slot->name()));
  slot = std::move(fn);
  return {};
}

PciFunction* PciBus::function(uint8_t device, uint8_t function) const {
  if (device >= 32 || function >= 8) return nullptr;
  return m_slots[device * 8 + function].get();
}

std::vector<std::pair<uint8_t, uint8_t>> PciBus::occupied() const {
  std::vector<std::pair<uint8_t, uint8_t>> out;
  for (unsigned i = 0; i < m_slots.size(); ++i)
    if (m_slots[i]) out.push_back({uint8_t(i / 8), uint8_t(i % 8)});
  return out;
}

PciBridge::PciBridge(std::string name, uint8_t chassis)
    : PciFunction(name, {0x1b36, 0x0001, 0x060400, 0, 0, 0}, /*bridge=*/true), m_bus(std::move(name), this) {
  if (chassis) {
    // PCI Bridge spec 1.2, 13.4: Slot Numbering capability (id 0x04). Expansion slots 0 with First In
    // Chassis set (QEMU's slotid_cap_init(dev, 0, chassis_nr, 0)), then the chassis number; read-only.
    constexpr uint8_t kSlotIdCapability = 0x04, kFirstInChassis = 0x20;
    const uint8_t body[2] = {kFirstInChassis, chassis};
    add_capability(kSlotIdCapability, body);
  }
}

PciHost::PciHost(std::string root_name, PciResources resources)
    : m_root(std::move(root_name)), m_resources(resources) {
  m_buses[m_root.name()] = &m_root;
}

PciHost::~PciHost() = default;  // see ~PciFunction: mappings go with the address spaces

PciBus* PciHost::find_bus(const std::string& name) {
  auto it = m_buses.find(name);
  return it == m_buses.end() ? nullptr : it->second;
}

base::Result<void, base::Error> PciHost::plug(const std::string& bus_name, uint8_t device, uint8_t function,
                                              std::shared_ptr<PciFunction> fn) {
  PciBus* bus = find_bus(bus_name);
  if (!bus) return base::fail(base::Error("no PCI bus named \"" + bus_name + "\""));
  TRY(bus->plug(device, function, fn));
  if (fn->is_bridge()) {
    auto* bridge = static_cast<PciBridge*>(fn.get());
    if (m_buses.count(fn->name()))
      return base::fail(base::Error("PCI bus name \"" + fn->name() + "\" is used twice"));
    m_buses[fn->name()] = &bridge->secondary();
  }
  fn->attach(m_resources);
  m_functions.push_back(std::move(fn));
  return {};
}

PciFunction* PciHost::route_on(PciBus& bus, uint8_t number, uint8_t target, uint8_t device,
                               uint8_t function) {
  if (number == target) return bus.function(device, function);
  for (auto [d, f] : bus.occupied()) {
    PciFunction* fn = bus.function(d, f);
    if (!fn->is_bridge()) continue;
    auto* bridge = static_cast<PciBridge*>(fn);
    uint8_t secondary = bridge->secondary_number(), subordinate = bridge->subordinate_number();
    if (secondary == 0 || secondary <= number) continue;  // unconfigured (or looping) bridge
    if (target >= secondary && target <= subordinate)
      return route_on(bridge->secondary(), secondary, target, device, function);
  }
  return nullptr;
}

PciFunction* PciHost::route(uint8_t bus, uint8_t device, uint8_t function) {
  // Multi-function discovery: functions 1..7 are only seen when function 0 exists.
  if (function != 0 && !route_on(m_root, 0, bus, device, 0)) return nullptr;
  return route_on(m_root, 0, bus, device, function);
}

uint32_t PciHost::config_read(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, unsigned size) {
  PciFunction* fn = route(bus, device, function);
  if (!fn) return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
  uint32_t value = fn->config_read(offset, size);
  if (offset <= kHeaderType && offset + size > kHeaderType && function == 0) {
    // The multi-function bit reflects what is plugged, not what the model declared.
    bool multi = false;
    for (uint8_t f = 1; f < 8; ++f) multi = multi || route_on(m_root, 0, bus, device, f);
    if (multi) value |= 0x80u << (8 * (kHeaderType - offset));
  }
  return value;
}

void PciHost::config_write(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, unsigned size,
                           uint32_t value) {
  if (PciFunction* fn = route(bus, device, function)) fn->config_write(offset, size, value);
}

void PciHost::collect(PciBus& bus, uint8_t number, std::vector<std::pair<Bdf, PciFunction*>>& out) {
  for (auto [d, f] : bus.occupied()) {
    PciFunction* fn = bus.function(d, f);
    out.push_back({{number, d, f}, fn});
    if (fn->is_bridge()) {
      auto* bridge = static_cast<PciBridge*>(fn);
      if (bridge->secondary_number() > number) collect(bridge->secondary(), bridge->secondary_number(), out);
    }
  }
}

std::vector<std::pair<Bdf, PciFunction*>> PciHost::functions() {
  std::vector<std::pair<Bdf, PciFunction*>> out;
  collect(m_root, 0, out);
  return out;
}

base::Result<void, base::Error> PciHost::assign_resources(PciWindow mmio, PciWindow io) {
  // Bus numbers, depth first as firmware does.
  uint8_t next_bus = 1;
  std::function<base::Result<void, base::Error>(PciBus&, uint8_t)> number =
      [&](PciBus& bus, uint8_t own) -> base::Result<void, base::Error> {
    for (auto [d, f] : bus.occupied()) {
      PciFunction* fn = bus.function(d, f);
      if (!fn->is_bridge()) continue;
      auto* bridge = static_cast<PciBridge*>(fn);
      if (next_bus == 0) return base::fail(base::Error("more than 255 PCI buses"));
      uint8_t secondary = next_bus++;
      bridge->config_write(0x18, 1, own);
      bridge->config_write(0x19, 1, secondary);
      bridge->config_write(0x1a, 1, 0xff);
      TRY(number(bridge->secondary(), secondary));
      bridge->config_write(0x1a, 1, static_cast<uint8_t>(next_bus - 1));
    }
    return {};
  };
  TRY(number(m_root, 0));

  uint64_t mem = mmio.base, port = io.base;
  const uint64_t mem_end = mmio.base + mmio.size, port_end = io.base + io.size;
  std::function<base::Result<void, base::Error>(PciBus&)> place =
      [&](PciBus& bus) -> base::Result<void, base::Error> {
    // Bridges first: their 1 MiB-aligned windows pack better before the small BARs.
    for (auto [d, f] : bus.occupied()) {
      PciFunction* fn = bus.function(d, f);
      if (!fn->is_bridge()) continue;
      auto* bridge = static_cast<PciBridge*>(fn);
      mem = align_up(mem, kMiB);
      port = align_up(port, 0x1000);
      uint64_t mem_start = mem, port_start = port;
      TRY(place(bridge->secondary()));
      mem = align_up(mem, kMiB);
      port = align_up(port, 0x1000);
      if (mem > mem_start) {
        bridge->config_write(0x20, 2, static_cast<uint32_t>(mem_start >> 16) & 0xfff0);
        bridge->config_write(0x22, 2, static_cast<uint32_t>((mem - 1) >> 16) & 0xfff0);
      } else {  // empty window: base above limit
        bridge->config_write(0x20, 2, 0xfff0);
        bridge->config_write(0x22, 2, 0);
      }
      if (port > port_start) {
        bridge->config_write(0x1c, 1, static_cast<uint32_t>(port_start >> 8) & 0xf0);
        bridge->config_write(0x1d, 1, static_cast<uint32_t>((port - 1) >> 8) & 0xf0);
        bridge->config_write(0x30, 2, static_cast<uint32_t>(port_start >> 16));
        bridge->config_write(0x32, 2, static_cast<uint32_t>((port - 1) >> 16));
      } else {
        bridge->config_write(0x1c, 1, 0xf0);
        bridge->config_write(0x1d, 1, 0);
      }
      bridge->config_write(0x24, 2, 0xfff0);  // no prefetchable window
      bridge->config_write(0x26, 2, 0);
      bridge->set_command(kCommandIo | kCommandMemory | kCommandBusMaster);
    }
    struct Want {
      PciFunction* fn;
      unsigned index;
      uint64_t size;
      bool io;
    };
    std::vector<Want> wants;
    for (auto [d, f] : bus.occupied()) {
      PciFunction* fn = bus.function(d, f);
      for (unsigned i = 0; i < 6; ++i) {
        const auto& bar = fn->bars()[i];
        if (bar.size) wants.push_back({fn, i, bar.size, bar.kind == BarKind::Io});
      }
    }
    std::stable_sort(wants.begin(), wants.end(),
                     [](const Want& a, const Want& b) { return a.size > b.size; });
    for (const Want& want : wants) {
      uint64_t& cursor = want.io ? port : mem;
      const uint64_t end = want.io ? port_end : mem_end;
      uint64_t at = align_up(cursor, want.size);
      if (at + want.size > end || at + want.size < at)
        return base::fail(base::Error(want.fn->name() + ": BAR" + std::to_string(want.index) + " (" +
                                      hex(want.size) + " bytes) does not fit in the PCI " +
                                      (want.io ? "I/O" : "memory") + " window"));
      want.fn->program_bar(want.index, at);
      cursor = at + want.size;
    }
    for (auto [d, f] : bus.occupied()) {
      PciFunction* fn = bus.function(d, f);
      if (fn->is_bridge()) continue;
      uint16_t command = kCommandBusMaster;
      for (const auto& bar : fn->bars()) {
        if (bar.size && bar.kind == BarKind::Io) command |= kCommandIo;
        if (bar.size && bar.kind != BarKind::Io) command |= kCommandMemory;
      }
      fn->set_command(command);
    }
    return {};
  };
  return place(m_root);
}

void Cf8ConfigDevice::read(uint64_t offset, std::span<uint8_t> data) {
  uint32_t value = 0xffffffff;
  std::lock_guard guard(m_lock);
  if (offset == 0 && data.size() == 4) {
    value = m_address;
  } else if (offset >= 4 && offset + data.size() <= 8 && (m_address & 0x80000000u)) {
    uint8_t bus = (m_address >> 16) & 0xff, device = (m_address >> 11) & 0x1f,
            function = (m_address >> 8) & 7;
    uint16_t reg = (m_address & 0xfc) + (offset - 4);
    value = m_host->config_read(bus, device, function, reg, data.size());
  }
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(value >> (8 * i));
}

void Cf8ConfigDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  uint32_t value = 0;
  for (size_t i = 0; i < data.size() && i < 4; ++i) value |= uint32_t{data[i]} << (8 * i);
  std::lock_guard guard(m_lock);
  if (offset == 0 && data.size() == 4) {
    m_address = value & 0x80fffffcu;
  } else if (offset >= 4 && offset + data.size() <= 8 && (m_address & 0x80000000u)) {
    uint8_t bus = (m_address >> 16) & 0xff, device = (m_address >> 11) & 0x1f,
            function = (m_address >> 8) & 7;
    uint16_t reg = (m_address & 0xfc) + (offset - 4);
    m_host->config_write(bus, device, function, reg, data.size(), value);
  }
  // Other accesses (0xcf9 reset control byte etc.) are not ours: ignored.
}

void EcamDevice::read(uint64_t offset, std::span<uint8_t> data) {
  uint32_t value = 0xffffffff;
  uint16_t reg = offset & 0xfff;
  if ((data.size() == 1 || data.size() == 2 || data.size() == 4) && reg + data.size() <= 0x1000)
    value = m_host->config_read((offset >> 20) & 0xff, (offset >> 15) & 0x1f, (offset >> 12) & 7, reg,
                                data.size());
  for (size_t i = 0; i < data.size(); ++i) data[i] = i < 4 ? uint8_t(value >> (8 * i)) : 0xff;
}

void EcamDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  uint16_t reg = offset & 0xfff;
  if (!(data.size() == 1 || data.size() == 2 || data.size() == 4) || reg + data.size() > 0x1000) return;
  uint32_t value = 0;
  for (size_t i = 0; i < data.size(); ++i) value |= uint32_t{data[i]} << (8 * i);
  m_host->config_write((offset >> 20) & 0xff, (offset >> 15) & 0x1f, (offset >> 12) & 7, reg, data.size(),
                       value);
}

}  // namespace hw::pci
