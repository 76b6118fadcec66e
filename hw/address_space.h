// AddressSpace: maps non-overlapping [base, base+size) ranges to devices and routes accesses.
// One instance serves MMIO, another x86 port I/O. Mappings may change while vCPUs run (a guest
// reprograms a PCI BAR), so lookups take a shared lock and changes an exclusive one.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "hw/device.h"

namespace hw {

struct BusError {
  enum class Kind { ZeroSize, Wraps, Overlap, NotMapped };
  Kind kind = Kind::ZeroSize;
  uint64_t base = 0;
  uint64_t size = 0;
  // For Overlap: the mapping already there.
  uint64_t other_base = 0;
  uint64_t other_size = 0;
  std::string other_name;

  std::string message() const;
};

class AddressSpace {
 public:
  base::Result<void, BusError> insert(uint64_t base, uint64_t size, std::shared_ptr<Device> device);
  base::Result<void, BusError> remove(uint64_t base);

  // Routes an access to the device covering [addr, addr+data.size()). Returns false when no single
  // device covers it; the caller decides what an unclaimed access means (reads as ~0 on x86 PIO,
  // an access fault on RISC-V).
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

  struct Mapping {
    uint64_t base;
    uint64_t size;
    std::shared_ptr<Device> device;
  };
  // Snapshot of the mappings ordered by base (for `plan`, tests and the device tree).
  std::vector<Mapping> mappings() const;

 private:
  struct Entry {
    uint64_t size;
    std::shared_ptr<Device> device;
  };
  // Finds the entry covering [addr, addr+len); caller holds the lock.
  const std::pair<const uint64_t, Entry>* find(uint64_t addr, uint64_t len) const;

  mutable std::shared_mutex m_lock;
  std::map<uint64_t, Entry> m_entries;  // keyed by base
};

}  // namespace hw
