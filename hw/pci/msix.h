// MSI-X as the guest sees it (PCI Local Bus 3.0, 6.8.2): the vector table (16 bytes a vector:
// message address low/high, data, vector control whose bit 0 masks the vector) and the pending bit
// array (one bit a vector, read-only), plus the capability's enable and function-mask bits.
//
// Used by vfio-pci (hw/pci/vfio_pci.cpp), where the host function's table must never be the
// guest's: the guest's messages are guest addresses, the host's are the host's. The guest's writes
// are kept here; the owner learns which vector changed and re-programs its delivery. A vector that
// fires while masked (or while the function is masked) sets its pending bit instead, and is sent
// when it is unmasked, as the spec asks.
//
// Every guest access is bounds-checked: the table and PBA take aligned 4- and 8-byte accesses
// inside them; anything else reads as all-ones and is dropped on writes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hw/device.h"

namespace hw::pci {

inline constexpr uint8_t kCapMsix = 0x11;
// The capability's message control: table size - 1 (bits 0..10), function mask, enable.
inline constexpr uint16_t kMsixTableSizeMask = 0x07ff, kMsixFunctionMask = 0x4000, kMsixEnable = 0x8000;
inline constexpr unsigned kMsixEntrySize = 16, kMsixMaxVectors = 2048;

// Where a function's MSI-X structures are (the capability's table and PBA offset/BIR registers).
struct MsixLayout {
  uint8_t offset = 0;  // of the capability in config space
  unsigned vectors = 0;
  unsigned table_bar = 0, pba_bar = 0;
  uint32_t table_offset = 0, pba_offset = 0;  // 8-byte aligned
  uint64_t table_size() const { return uint64_t{vectors} * kMsixEntrySize; }
  uint64_t pba_size() const { return (uint64_t{vectors} + 63) / 64 * 8; }
};

// Finds the MSI-X capability in a function's config space (at least the first 256 bytes), walking
// the capability list with a bound on its length (a looping list ends the walk). Checks the BIRs
// (0..5) and, where the BAR sizes are known (0 = absent), that the table and PBA lie inside their
// BARs. nullopt: none, or one we cannot use (the message says why).
struct MsixFound {
  std::optional<MsixLayout> layout;
  std::string problem;  // set when a capability is there but unusable
};
MsixFound find_msix(std::span<const uint8_t> config, std::span<const uint64_t, 6> bar_sizes);

class MsixTable {
 public:
  struct Message {
    uint64_t address = 0;
    uint32_t data = 0;
  };

  explicit MsixTable(unsigned vectors);  // 1..kMsixMaxVectors; all vectors masked, as after reset
  unsigned vectors() const { return m_vectors; }

  // Guest accesses at `offset` into the table / the PBA.
  void read_table(uint64_t offset, std::span<uint8_t> data) const;
  // The vector whose entry changed (message or mask), or nullopt when nothing did.
  std::optional<unsigned> write_table(uint64_t offset, std::span<const uint8_t> data);
  void read_pba(uint64_t offset, std::span<uint8_t> data) const;

  // The capability's control bits, as the guest wrote them.
  void set_control(bool enabled, bool function_masked);
  bool enabled() const;
  bool function_masked() const;

  Message message(unsigned vector) const;     // {0, 0} out of range
  bool vector_masked(unsigned vector) const;  // its own mask bit (true out of range)
  // Enabled, neither the function nor the vector masked: a signal goes out now.
  bool deliverable(unsigned vector) const;
  bool pending(unsigned vector) const;

  // The device signalled `vector`: its message when deliverable; else the pending bit is set
  // (while enabled) and nothing is sent.
  std::optional<Message> fire(unsigned vector);
  // Vectors pending and deliverable now (after an unmask): their bits cleared, the messages to send.
  std::vector<std::pair<unsigned, Message>> take_deliverable();

 private:
  struct Entry {
    uint32_t address_low = 0, address_high = 0, data = 0, control = 1;  // masked after reset
  };
  bool deliverable_locked(unsigned vector) const;
  mutable std::mutex m_lock;
  unsigned m_vectors;
  std::vector<Entry> m_entries;
  std::vector<uint64_t> m_pending;
  bool m_enabled = false, m_function_masked = false;
};

// One BAR holding an MSI-X table and/or PBA: accesses inside them go to the MsixTable, the rest to
// `rest` (the host BAR). `table_written` is called (without locks held) with the vector whose
// entry the guest changed.
class MsixBarWindow : public Device {
 public:
  MsixBarWindow(std::string name, std::shared_ptr<Device> rest, std::shared_ptr<MsixTable> table,
                std::optional<uint64_t> table_offset, std::optional<uint64_t> pba_offset,
                std::function<void(unsigned)> table_written);
  std::string_view name() const override { return m_name; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  // Which structure [offset, offset+size) touches: the table, the PBA, or neither (the rest). An
  // access straddling one of them touches it (and is refused by it).
  enum class Part { Table, Pba, Rest };
  Part part(uint64_t offset, uint64_t size, uint64_t& inner) const;
  std::string m_name;
  std::shared_ptr<Device> m_rest;
  std::shared_ptr<MsixTable> m_table;
  std::optional<uint64_t> m_table_offset, m_pba_offset;
  std::function<void(unsigned)> m_table_written;
};

}  // namespace hw::pci
