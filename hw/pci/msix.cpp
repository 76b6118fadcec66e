#include "hw/pci/msix.h"

#include <cstring>

namespace hw::pci {
namespace {

constexpr uint16_t kCapabilityPointer = 0x34, kStatus = 0x06, kStatusCapabilities = 0x10;
// Offsets inside the capability: message control, table offset/BIR, PBA offset/BIR.
constexpr unsigned kControl = 2, kTable = 4, kPba = 8;

uint32_t le(std::span<const uint8_t> bytes, size_t at, unsigned size) {
  uint32_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= static_cast<uint32_t>(bytes[at + i]) << (8 * i);
  return value;
}

bool aligned_access(uint64_t offset, size_t size) {
  return (size == 4 || size == 8) && offset % size == 0;
}

}  // namespace

MsixFound find_msix(std::span<const uint8_t> config, std::span<const uint64_t, 6> bar_sizes) {
  MsixFound found;
  if (config.size() < 256 || !(le(config, kStatus, 2) & kStatusCapabilities)) return found;
  unsigned at = config[kCapabilityPointer] & 0xfc;
  // At most 48 capabilities fit in 0x40..0xff: more is a loop.
  // `at` is at most 0xfc: its id and next bytes are always inside; an MSI-X capability needs 12.
  for (unsigned steps = 0; at >= 0x40 && steps < 48; ++steps) {
    if (config[at] == kCapMsix && at + 12 <= 256) {
      MsixLayout l;
      l.offset = static_cast<uint8_t>(at);
      l.vectors = (le(config, at + kControl, 2) & kMsixTableSizeMask) + 1;
      uint32_t table = le(config, at + kTable, 4), pba = le(config, at + kPba, 4);
      l.table_bar = table & 7;
      l.table_offset = table & ~7u;
      l.pba_bar = pba & 7;
      l.pba_offset = pba & ~7u;
      if (l.table_bar > 5 || l.pba_bar > 5) {
        found.problem = "its table or PBA is in a BAR that does not exist (BIR > 5)";
        return found;
      }
      const uint64_t table_bar = bar_sizes[l.table_bar], pba_bar = bar_sizes[l.pba_bar];
      if (table_bar == 0 || l.table_offset > table_bar || l.table_size() > table_bar - l.table_offset ||
          pba_bar == 0 || l.pba_offset > pba_bar || l.pba_size() > pba_bar - l.pba_offset) {
        found.problem = "its table or PBA lies outside its BAR";
        return found;
      }
      if (l.table_bar == l.pba_bar && l.table_offset < l.pba_offset + l.pba_size() &&
          l.pba_offset < l.table_offset + l.table_size()) {
        found.problem = "its table and PBA overlap";
        return found;
      }
      found.layout = l;
      return found;
    }
    at = config[at + 1] & 0xfc;
  }
  return found;
}

MsixTable::MsixTable(unsigned vectors)
    : m_vectors(vectors == 0                ? 1
                : vectors > kMsixMaxVectors ? kMsixMaxVectors
                                            : vectors),
      m_entries(m_vectors),
      m_pending((m_vectors + 63) / 64) {}

void MsixTable::read_table(uint64_t offset, std::span<uint8_t> data) const {
  std::memset(data.data(), 0xff, data.size());
  if (!aligned_access(offset, data.size()) || offset >= uint64_t{m_vectors} * kMsixEntrySize) return;
  std::lock_guard guard(m_lock);
  const Entry& e = m_entries[offset / kMsixEntrySize];
  const uint32_t words[4] = {e.address_low, e.address_high, e.data, e.control};
  // An aligned 8-byte access covers words 0-1 or 2-3 of one entry: it never crosses an entry.
  const unsigned word = (offset % kMsixEntrySize) / 4;
  std::memcpy(data.data(), &words[word], data.size());
}

std::optional<unsigned> MsixTable::write_table(uint64_t offset, std::span<const uint8_t> data) {
  if (!aligned_access(offset, data.size()) || offset >= uint64_t{m_vectors} * kMsixEntrySize)
    return std::nullopt;
  std::lock_guard guard(m_lock);
  const unsigned vector = static_cast<unsigned>(offset / kMsixEntrySize);
  Entry& e = m_entries[vector];
  const Entry before = e;
  uint32_t* words[4] = {&e.address_low, &e.address_high, &e.data, &e.control};
  for (unsigned i = 0; i < data.size() / 4; ++i) {
    const unsigned word = static_cast<unsigned>((offset % kMsixEntrySize) / 4) + i;
    uint32_t value = 0;
    std::memcpy(&value, data.data() + 4 * i, 4);
    // The message address is dword-aligned; vector control has only its mask bit (the rest reserved).
    if (word == 0) value &= ~3u;
    if (word == 3) value &= 1u;
    *words[word] = value;
  }
  if (std::memcmp(&before, &e, sizeof e) == 0) return std::nullopt;
  return vector;
}

void MsixTable::read_pba(uint64_t offset, std::span<uint8_t> data) const {
  std::memset(data.data(), 0xff, data.size());
  if (!aligned_access(offset, data.size()) || offset >= m_pending.size() * 8) return;
  std::lock_guard guard(m_lock);
  const uint64_t qword = m_pending[offset / 8];
  std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&qword) + offset % 8, data.size());
}

void MsixTable::set_control(bool enabled, bool function_masked) {
  std::lock_guard guard(m_lock);
  m_enabled = enabled;
  m_function_masked = function_masked;
}

bool MsixTable::enabled() const {
  std::lock_guard guard(m_lock);
  return m_enabled;
}

bool MsixTable::function_masked() const {
  std::lock_guard guard(m_lock);
  return m_function_masked;
}

MsixTable::Message MsixTable::message(unsigned vector) const {
  std::lock_guard guard(m_lock);
  if (vector >= m_vectors) return {};
  const Entry& e = m_entries[vector];
  return {uint64_t{e.address_high} << 32 | e.address_low, e.data};
}

bool MsixTable::vector_masked(unsigned vector) const {
  std::lock_guard guard(m_lock);
  return vector >= m_vectors || (m_entries[vector].control & 1);
}

bool MsixTable::deliverable_locked(unsigned vector) const {
  return vector < m_vectors && m_enabled && !m_function_masked && !(m_entries[vector].control & 1);
}

bool MsixTable::deliverable(unsigned vector) const {
  std::lock_guard guard(m_lock);
  return deliverable_locked(vector);
}

bool MsixTable::pending(unsigned vector) const {
  std::lock_guard guard(m_lock);
  return vector < m_vectors && (m_pending[vector / 64] >> (vector % 64) & 1);
}

std::optional<MsixTable::Message> MsixTable::fire(unsigned vector) {
  std::lock_guard guard(m_lock);
  if (vector >= m_vectors || !m_enabled) return std::nullopt;
  if (!deliverable_locked(vector)) {
    m_pending[vector / 64] |= uint64_t{1} << (vector % 64);
    return std::nullopt;
  }
  const Entry& e = m_entries[vector];
  return Message{uint64_t{e.address_high} << 32 | e.address_low, e.data};
}

std::vector<std::pair<unsigned, MsixTable::Message>> MsixTable::take_deliverable() {
  std::lock_guard guard(m_lock);
  std::vector<std::pair<unsigned, Message>> out;
  for (unsigned v = 0; v < m_vectors; ++v) {
    if (!(m_pending[v / 64] >> (v % 64) & 1) || !deliverable_locked(v)) continue;
    m_pending[v / 64] &= ~(uint64_t{1} << (v % 64));
    const Entry& e = m_entries[v];
    out.push_back({v, Message{uint64_t{e.address_high} << 32 | e.address_low, e.data}});
  }
  return out;
}

MsixBarWindow::MsixBarWindow(std::string name, std::shared_ptr<Device> rest, std::shared_ptr<MsixTable> table,
                             std::optional<uint64_t> table_offset, std::optional<uint64_t> pba_offset,
                             std::function<void(unsigned)> table_written)
    : m_name(std::move(name)),
      m_rest(std::move(rest)),
      m_table(std::move(table)),
      m_table_offset(table_offset),
      m_pba_offset(pba_offset),
      m_table_written(std::move(table_written)) {}

MsixBarWindow::Part MsixBarWindow::part(uint64_t offset, uint64_t size, uint64_t& inner) const {
  // Overflow-safe overlap tests: offset + size may wrap for a hostile offset near 2^64.
  auto touches = [&](uint64_t start, uint64_t length) {
    return offset < start + length && (offset >= start || start - offset < size);
  };
  const uint64_t table_size = uint64_t{m_table->vectors()} * kMsixEntrySize;
  const uint64_t pba_size = (uint64_t{m_table->vectors()} + 63) / 64 * 8;
  if (m_table_offset && touches(*m_table_offset, table_size)) {
    // Straddling the start: an offset below the table, which read_table refuses (wraps huge).
    inner = offset - *m_table_offset;
    return Part::Table;
  }
  if (m_pba_offset && touches(*m_pba_offset, pba_size)) {
    inner = offset - *m_pba_offset;
    return Part::Pba;
  }
  return Part::Rest;
}

void MsixBarWindow::read(uint64_t offset, std::span<uint8_t> data) {
  uint64_t inner = 0;
  switch (part(offset, data.size(), inner)) {
    case Part::Table:
      return m_table->read_table(inner, data);
    case Part::Pba:
      return m_table->read_pba(inner, data);
    case Part::Rest:
      return m_rest->read(offset, data);
  }
}

void MsixBarWindow::write(uint64_t offset, std::span<const uint8_t> data) {
  uint64_t inner = 0;
  switch (part(offset, data.size(), inner)) {
    case Part::Table:
      if (auto vector = m_table->write_table(inner, data); vector && m_table_written)
        m_table_written(*vector);
      return;
    case Part::Pba:
      return;  // read-only
    case Part::Rest:
      return m_rest->write(offset, data);
  }
}

}  // namespace hw::pci
