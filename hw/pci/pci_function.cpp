#include "hw/pci/pci_function.h"

#include <cstdio>
#include <cstring>

namespace hw::pci {

std::string Bdf::to_string() const {
  char text[16];
  std::snprintf(text, sizeof text, "%02x:%02x.%x", bus, device, function);
  return text;
}

PciFunction::PciFunction(std::string name, const FunctionIds& ids, bool bridge)
    : m_name(std::move(name)), m_bridge(bridge) {
  set_config_u16(kVendorId, ids.vendor);
  set_config_u16(kDeviceId, ids.device);
  set_config_u8(kRevision, ids.revision);
  set_config_u8(kClassProg, ids.class_code & 0xff);
  set_config_u16(kClassProg + 1, static_cast<uint16_t>(ids.class_code >> 8));
  set_config_u8(kHeaderType, bridge ? 1 : 0);
  // Command: I/O, memory, bus master, SERR, INTx disable are the guest's to set.
  const uint8_t command_mask[2] = {0x47, 0x05};
  set_writable(kCommand, command_mask);
  // Status: error bits are write-1-to-clear.
  m_w1c[kStatus + 1] = 0xf9;
  m_wmask[kInterruptLine] = 0xff;
  if (!bridge) {
    set_config_u16(kSubsystemVendorId, ids.subsystem_vendor);
    set_config_u16(kSubsystemId, ids.subsystem);
  } else {
    // Type 1: bus numbers, secondary latency, I/O, memory and prefetchable windows, bridge control.
    const uint8_t buses[4] = {0xff, 0xff, 0xff, 0xff};
    set_writable(0x18, buses);
    const uint8_t io[2] = {0xf0, 0xf0};
    set_writable(0x1c, io);
    const uint8_t mem[8] = {0xf0, 0xff, 0xf0, 0xff, 0xf0, 0xff, 0xf0, 0xff};
    set_writable(0x20, mem);
    const uint8_t upper[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    set_writable(0x28, upper);
    const uint8_t control[2] = {0xff, 0x0f};
    set_writable(0x3e, control);
    set_config_u8(0x1c, 0x01);  // 32-bit I/O addressing
    set_config_u8(0x1d, 0x01);
    set_config_u16(0x24, 0x0001);  // 64-bit prefetchable window
    set_config_u16(0x26, 0x0001);
  }
}

// No detach here: a function dies with its machine, usually while the machine's address spaces are
// being destroyed themselves (they hold the host device that owns us), so touching them would be
// use-after-destruction. The BAR devices are shared_ptrs in those spaces and go with them.
PciFunction::~PciFunction() = default;

void PciFunction::set_config(uint16_t offset, std::span<const uint8_t> bytes) {
  if (offset + bytes.size() > kConfigSize) return;
  std::memcpy(m_config.data() + offset, bytes.data(), bytes.size());
}
void PciFunction::set_config_u8(uint16_t offset, uint8_t value) {
  set_config(offset, {&value, 1});
}
void PciFunction::set_config_u16(uint16_t offset, uint16_t value) {
  uint8_t b[2] = {uint8_t(value), uint8_t(value >> 8)};
  set_config(offset, b);
}
void PciFunction::set_config_u32(uint16_t offset, uint32_t value) {
  uint8_t b[4] = {uint8_t(value), uint8_t(value >> 8), uint8_t(value >> 16), uint8_t(value >> 24)};
  set_config(offset, b);
}
void PciFunction::set_writable(uint16_t offset, std::span<const uint8_t> mask) {
  if (offset + mask.size() > kConfigSize) return;
  std::memcpy(m_wmask.data() + offset, mask.data(), mask.size());
}

uint32_t PciFunction::read_raw(uint16_t offset, unsigned size) {
  uint32_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= uint32_t{m_config[offset + i]} << (8 * i);
  return value;
}

uint32_t PciFunction::config_read(uint16_t offset, unsigned size) {
  if ((size != 1 && size != 2 && size != 4) || offset + size > kConfigSize) return 0xffffffff;
  if (auto value = config_read_override(offset, size)) return *value;
  std::lock_guard guard(m_lock);
  uint32_t value = read_raw(offset, size);
  return value;
}

void PciFunction::config_write(uint16_t offset, unsigned size, uint32_t value) {
  if ((size != 1 && size != 2 && size != 4) || offset + size > kConfigSize) return;
  bool remap = false;
  {
    std::lock_guard guard(m_lock);
    for (unsigned i = 0; i < size; ++i) {
      uint16_t at = offset + i;
      uint8_t byte = uint8_t(value >> (8 * i));
      m_config[at] = (m_config[at] & ~m_wmask[at]) | (byte & m_wmask[at]);
      m_config[at] &= ~(byte & m_w1c[at]);
    }
    const uint16_t bar_end = m_bridge ? kBar0 + 8 : kBar0 + 24;
    remap = (offset < kCommand + 2 && offset + size > kCommand) ||
            (offset < bar_end && offset + size > kBar0) ||
            (m_rom && offset < kExpansionRom + 4 && offset + size > kExpansionRom);
    if (offset < kCommand + 2 && offset + size > kCommand) update_intx_locked();
  }
  if (remap) update_mappings();
  config_written(offset, size);
}

void PciFunction::define_bar(unsigned index, uint64_t size, BarKind kind, std::shared_ptr<Device> device,
                             bool prefetchable) {
  const unsigned bar_count = m_bridge ? 2 : 6;
  if (index >= bar_count || (kind == BarKind::Memory64 && index + 1 >= bar_count) || size == 0 ||
      (size & (size - 1)) != 0) {
    std::fprintf(stderr, "vmlaunch: internal error: %s: bad BAR %u definition\n", m_name.c_str(), index);
    std::abort();
  }
  if (kind != BarKind::Io && size < 16) size = 16;
  if (kind == BarKind::Io && size < 4) size = 4;
  m_bars[index] = {size, kind, prefetchable, std::move(device), std::nullopt};
  uint32_t low_flags =
      kind == BarKind::Io ? 1u : (kind == BarKind::Memory64 ? 4u : 0u) | (prefetchable ? 8u : 0u);
  uint64_t mask = ~(size - 1);
  uint32_t low_mask = static_cast<uint32_t>(mask) & (kind == BarKind::Io ? ~3u : ~15u);
  uint16_t at = kBar0 + 4 * index;
  set_config_u32(at, low_flags);
  uint8_t wm[4] = {uint8_t(low_mask), uint8_t(low_mask >> 8), uint8_t(low_mask >> 16),
                   uint8_t(low_mask >> 24)};
  set_writable(at, wm);
  if (kind == BarKind::Memory64) {
    uint32_t high_mask = static_cast<uint32_t>(mask >> 32);
    uint8_t wh[4] = {uint8_t(high_mask), uint8_t(high_mask >> 8), uint8_t(high_mask >> 16),
                     uint8_t(high_mask >> 24)};
    set_config_u32(at + 4, 0);
    set_writable(at + 4, wh);
  }
}

void PciFunction::define_rom(uint64_t size, std::shared_ptr<Device> device) {
  if (m_bridge || size < 2048 || size > (1ull << 31) || (size & (size - 1)) != 0 || !device) {
    std::fprintf(stderr, "vmlaunch: internal error: %s: bad ROM definition\n", m_name.c_str());
    std::abort();
  }
  m_rom_size = size;
  m_rom = std::move(device);
  const uint32_t mask = static_cast<uint32_t>(~(size - 1)) | 1u;  // address bits and the enable bit
  const uint8_t wm[4] = {uint8_t(mask), uint8_t(mask >> 8), uint8_t(mask >> 16), uint8_t(mask >> 24)};
  set_config_u32(kExpansionRom, 0);
  set_writable(kExpansionRom, wm);
}

std::optional<uint64_t> PciFunction::bar_address(unsigned index) {
  if (index >= 6 || m_bars[index].size == 0) return std::nullopt;
  std::lock_guard guard(m_lock);
  uint16_t at = kBar0 + 4 * index;
  uint64_t low = read_raw(at, 4);
  if (m_bars[index].kind == BarKind::Io) return low & ~3ull;
  uint64_t address = low & ~15ull;
  if (m_bars[index].kind == BarKind::Memory64) address |= uint64_t{read_raw(at + 4, 4)} << 32;
  return address;
}

void PciFunction::program_bar(unsigned index, uint64_t address) {
  if (index >= 6 || m_bars[index].size == 0) return;
  config_write(kBar0 + 4 * index, 4, static_cast<uint32_t>(address));
  if (m_bars[index].kind == BarKind::Memory64) config_write(kBar0 + 4 * index + 4, 4, address >> 32);
}

void PciFunction::set_command(uint16_t bits) {
  config_write(kCommand, 2, bits);
}

uint8_t PciFunction::add_capability(uint8_t id, std::span<const uint8_t> body,
                                    std::span<const uint8_t> writable) {
  std::lock_guard guard(m_lock);
  uint16_t length = 2 + body.size();
  uint16_t at = (m_next_capability + 3) & ~3;
  if (at + length > 256) {
    std::fprintf(stderr, "vmlaunch: internal error: %s: capabilities do not fit\n", m_name.c_str());
    std::abort();
  }
  m_config[at] = id;
  m_config[at + 1] = 0;
  std::memcpy(m_config.data() + at + 2, body.data(), body.size());
  if (!writable.empty())
    std::memcpy(m_wmask.data() + at + 2, writable.data(), std::min(writable.size(), body.size()));
  if (m_last_capability)
    m_config[m_last_capability + 1] = static_cast<uint8_t>(at);
  else
    m_config[kCapabilityPointer] = static_cast<uint8_t>(at);
  m_config[kStatus] |= kStatusCapabilities;
  m_last_capability = static_cast<uint8_t>(at);
  m_next_capability = static_cast<uint8_t>(at + length);
  return static_cast<uint8_t>(at);
}

void PciFunction::set_interrupt(uint8_t pin, uint8_t line) {
  std::lock_guard guard(m_lock);
  m_config[kInterruptPin] = pin;
  m_config[kInterruptLine] = line;
}

void PciFunction::set_intx(bool level) {
  std::lock_guard guard(m_lock);
  m_intx_level = level;
  update_intx_locked();
}

void PciFunction::update_intx_locked() {
  uint16_t command = static_cast<uint16_t>(read_raw(kCommand, 2));
  bool asserted = m_intx_level && !(command & kCommandIntxDisable);
  if (asserted)
    m_config[kStatus] |= kStatusInterrupt;
  else
    m_config[kStatus] &= ~kStatusInterrupt;
  if (m_irq) m_irq->set_level(asserted);
}

void PciFunction::attach(const PciResources& resources) {
  {
    std::lock_guard guard(m_lock);
    m_resources = resources;
    m_attached = true;
  }
  update_mappings();
}

void PciFunction::detach() {
  std::lock_guard guard(m_lock);
  for (Bar& bar : m_bars) {
    if (!bar.mapped) continue;
    AddressSpace* space =
        bar.kind == BarKind::Io && !m_resources.io_in_mmio ? m_resources.pio : m_resources.mmio;
    uint64_t base =
        *bar.mapped + (bar.kind == BarKind::Io && m_resources.io_in_mmio ? *m_resources.io_in_mmio : 0);
    if (space) (void)space->remove(base);
    bar.mapped.reset();
    bar_moved(static_cast<unsigned>(&bar - m_bars.data()), std::nullopt);
  }
  if (m_rom_mapped && m_resources.mmio) (void)m_resources.mmio->remove(*m_rom_mapped);
  m_rom_mapped.reset();
  m_attached = false;
}

void PciFunction::update_mappings() {
  std::lock_guard guard(m_lock);
  if (!m_attached) return;
  uint16_t command = static_cast<uint16_t>(read_raw(kCommand, 2));
  for (unsigned i = 0; i < 6; ++i) {
    Bar& bar = m_bars[i];
    if (bar.size == 0 || !bar.device) continue;
    uint16_t at = kBar0 + 4 * i;
    bool io = bar.kind == BarKind::Io;
    uint64_t address = read_raw(at, 4) & (io ? ~3ull : ~15ull);
    if (bar.kind == BarKind::Memory64) address |= uint64_t{read_raw(at + 4, 4)} << 32;
    bool enabled = io ? (command & kCommandIo) : (command & kCommandMemory);
    std::optional<uint64_t> wanted;
    // Address 0 means "not assigned" by convention; a BAR still holding the sizing pattern is skipped.
    if (enabled && address != 0 && address + bar.size - 1 >= address) wanted = address;
    if (io && wanted && *wanted + bar.size > 0x10000 && !m_resources.io_in_mmio) wanted.reset();
    if (wanted == bar.mapped) continue;
    AddressSpace* space = io && !m_resources.io_in_mmio ? m_resources.pio : m_resources.mmio;
    if (!space) continue;
    uint64_t offset = io && m_resources.io_in_mmio ? *m_resources.io_in_mmio : 0;
    if (bar.mapped) (void)space->remove(*bar.mapped + offset);
    bar.mapped.reset();
    if (wanted) {
      auto inserted = space->insert(*wanted + offset, bar.size, bar.device);
      if (inserted.ok()) {
        bar.mapped = wanted;
      } else if (!m_warned_map) {
        // A guest placing a BAR over something else breaks only this BAR.
        m_warned_map = true;
        std::fprintf(stderr, "vmlaunch: %s: BAR%u not mapped: %s\n", m_name.c_str(), i,
                     inserted.error().message().c_str());
      }
    }
    bar_moved(i, bar.mapped);
  }
  if (m_rom && m_resources.mmio) {
    // The ROM decodes with its enable bit and memory decoding both on; at a guest address that
    // overlaps something else it stays unmapped, like a BAR.
    uint32_t rom = read_raw(kExpansionRom, 4);
    uint64_t address = rom & ~uint64_t{0x7ff};
    std::optional<uint64_t> wanted;
    if ((command & kCommandMemory) && (rom & 1) && address != 0) wanted = address;
    if (wanted != m_rom_mapped) {
      if (m_rom_mapped) (void)m_resources.mmio->remove(*m_rom_mapped);
      m_rom_mapped.reset();
      if (wanted && m_resources.mmio->insert(*wanted, m_rom_size, m_rom).ok()) m_rom_mapped = wanted;
    }
  }
}

}  // namespace hw::pci
