#include "hw/address_space.h"

#include <cstdio>
#include <mutex>

namespace hw {

std::string BusError::message() const {
  char text[256];
  switch (kind) {
    case Kind::ZeroSize:
      std::snprintf(text, sizeof text, "mapping at 0x%llx has zero size", (unsigned long long)base);
      break;
    case Kind::Wraps:
      std::snprintf(text, sizeof text, "mapping 0x%llx+0x%llx wraps the address space",
                    (unsigned long long)base, (unsigned long long)size);
      break;
    case Kind::Overlap:
      std::snprintf(text, sizeof text, "mapping [0x%llx, 0x%llx) overlaps %s at [0x%llx, 0x%llx)",
                    (unsigned long long)base, (unsigned long long)(base + size), other_name.c_str(),
                    (unsigned long long)other_base, (unsigned long long)(other_base + other_size));
      break;
    case Kind::NotMapped:
      std::snprintf(text, sizeof text, "nothing is mapped at 0x%llx", (unsigned long long)base);
      break;
  }
  return text;
}

namespace {
BusError bus_error(BusError::Kind kind, uint64_t base, uint64_t size) {
  BusError error;
  error.kind = kind;
  error.base = base;
  error.size = size;
  return error;
}
BusError overlap_error(uint64_t base, uint64_t size, uint64_t other_base, uint64_t other_size,
                       std::string_view other_name) {
  BusError error = bus_error(BusError::Kind::Overlap, base, size);
  error.other_base = other_base;
  error.other_size = other_size;
  error.other_name = std::string(other_name);
  return error;
}
}  // namespace

base::Result<void, BusError> AddressSpace::insert(uint64_t base, uint64_t size,
                                                  std::shared_ptr<Device> device) {
  if (size == 0) return base::fail(bus_error(BusError::Kind::ZeroSize, base, size));
  if (base + size - 1 < base) return base::fail(bus_error(BusError::Kind::Wraps, base, size));
  std::unique_lock guard(m_lock);
  // The only candidates for overlap are the first entry at or above base and the one before it.
  auto next = m_entries.lower_bound(base);
  if (next != m_entries.end() && next->first <= base + size - 1) {
    return base::fail(overlap_error(base, size, next->first, next->second.size, next->second.device->name()));
  }
  if (next != m_entries.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.size - 1 >= base) {
      return base::fail(
          overlap_error(base, size, prev->first, prev->second.size, prev->second.device->name()));
    }
  }
  m_entries.emplace(base, Entry{size, std::move(device)});
  return {};
}

base::Result<void, BusError> AddressSpace::remove(uint64_t base) {
  std::unique_lock guard(m_lock);
  if (m_entries.erase(base) == 0) return base::fail(bus_error(BusError::Kind::NotMapped, base, 0));
  return {};
}

const std::pair<const uint64_t, AddressSpace::Entry>* AddressSpace::find(uint64_t addr, uint64_t len) const {
  auto it = m_entries.upper_bound(addr);
  if (it == m_entries.begin()) return nullptr;
  --it;
  uint64_t offset = addr - it->first;
  if (offset >= it->second.size || len > it->second.size - offset) return nullptr;
  return &*it;
}

bool AddressSpace::read(uint64_t addr, std::span<uint8_t> data) const {
  std::shared_ptr<Device> device;
  uint64_t offset;
  {
    std::shared_lock guard(m_lock);
    auto entry = find(addr, data.size());
    if (!entry) return false;
    device = entry->second.device;
    offset = addr - entry->first;
  }
  // Called outside the lock so a device may remap BARs from within its own access handler.
  device->read(offset, data);
  return true;
}

bool AddressSpace::write(uint64_t addr, std::span<const uint8_t> data) const {
  std::shared_ptr<Device> device;
  uint64_t offset;
  {
    std::shared_lock guard(m_lock);
    auto entry = find(addr, data.size());
    if (!entry) return false;
    device = entry->second.device;
    offset = addr - entry->first;
  }
  device->write(offset, data);
  return true;
}

std::vector<AddressSpace::Mapping> AddressSpace::mappings() const {
  std::shared_lock guard(m_lock);
  std::vector<Mapping> result;
  for (const auto& [base, entry] : m_entries) result.push_back({base, entry.size, entry.device});
  return result;
}

}  // namespace hw
