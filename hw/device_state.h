// DeviceState: how a device's state gets into a snapshot and back, keyed by the graph's device id
// (after Firecracker's per-device `persist.rs` and cloud-hypervisor's Snapshottable). Each device
// writes and reads its own fields, in its own file, as a versioned little-endian byte string;
// nothing global knows a device's fields. The machine lists its parts (Machine::snapshot_access);
// a part without a DeviceState, or one whose cannot_save() says why, makes the snapshot refuse,
// naming it: nothing is left out silently.
//
// Order of calls (snapshot/): every vCPU parked -> quiesce() on all -> save_state() on all ->
// unquiesce() on all (unless the machine stops). Restore: a freshly built machine, vCPUs not yet
// started -> load_state() on all; a device re-drives its output lines from the loaded state.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace hw {

// Appends fixed-width little-endian fields.
class StateWriter {
 public:
  void u8(uint8_t v) { m_bytes.push_back(v); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  // A length-prefixed byte string.
  void bytes(std::span<const uint8_t> data) {
    u32(static_cast<uint32_t>(data.size()));
    m_bytes.insert(m_bytes.end(), data.begin(), data.end());
  }
  void u32s(const std::vector<uint32_t>& values) {
    u32(static_cast<uint32_t>(values.size()));
    for (uint32_t v : values) u32(v);
  }
  void u64s(const std::vector<uint64_t>& values) {
    u32(static_cast<uint32_t>(values.size()));
    for (uint64_t v : values) u64(v);
  }
  const std::vector<uint8_t>& data() const { return m_bytes; }
  std::vector<uint8_t> take() { return std::move(m_bytes); }

 private:
  void put(uint64_t v, unsigned width) {
    for (unsigned i = 0; i < width; ++i) m_bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> m_bytes;
};

// Reads what a StateWriter wrote. The bytes come from a file on disk: a short read does not throw or
// crash, it yields zeros and marks the reader failed, and load_state turns that into an error.
// Counts are checked against what the device expects (`expect`), never trusted for allocation.
class StateReader {
 public:
  explicit StateReader(std::span<const uint8_t> data) : m_data(data) {}
  uint8_t u8() { return static_cast<uint8_t>(get(1)); }
  bool boolean() { return u8() != 0; }
  uint16_t u16() { return static_cast<uint16_t>(get(2)); }
  uint32_t u32() { return static_cast<uint32_t>(get(4)); }
  uint64_t u64() { return get(8); }
  std::vector<uint8_t> bytes(size_t max) {
    uint32_t n = u32();
    if (n > max || n > m_data.size() - m_pos) {
      m_failed = true;
      return {};
    }
    std::vector<uint8_t> out(m_data.begin() + m_pos, m_data.begin() + m_pos + n);
    m_pos += n;
    return out;
  }
  // A list that must have exactly `expect` entries (it was sized by the same machine config).
  bool u32s(std::vector<uint32_t>& out, size_t expect) {
    if (u32() != expect) return fail();
    for (size_t i = 0; i < expect; ++i) out[i] = u32();
    return !m_failed;
  }
  bool u64s(std::vector<uint64_t>& out, size_t expect) {
    if (u32() != expect) return fail();
    for (size_t i = 0; i < expect; ++i) out[i] = u64();
    return !m_failed;
  }
  bool fail() {
    m_failed = true;
    return false;
  }
  bool ok() const { return !m_failed; }
  bool at_end() const { return m_pos == m_data.size(); }
  // The load's verdict: every field was there and nothing is left over.
  base::ErrorOr<void> finish(const std::string& what) const {
    if (m_failed)
      return base::fail(base::Error(what + ": saved state is short or does not match this machine"));
    if (!at_end())
      return base::fail(base::Error(what + ": saved state has " + std::to_string(m_data.size() - m_pos) +
                                    " unexpected bytes"));
    return {};
  }

 private:
  uint64_t get(unsigned width) {
    if (m_failed || m_data.size() - m_pos < width) {
      m_failed = true;
      return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < width; ++i) v |= uint64_t{m_data[m_pos + i]} << (8 * i);
    m_pos += width;
    return v;
  }
  std::span<const uint8_t> m_data;
  size_t m_pos = 0;
  bool m_failed = false;
};

class DeviceState {
 public:
  virtual ~DeviceState() = default;
  // Bumped whenever the saved layout changes; load_state gets the version that was saved and
  // refuses versions it cannot read.
  virtual uint32_t state_version() const = 0;
  // Why this device cannot be saved right now (a part inside it without state support), or nullopt.
  virtual std::optional<std::string> cannot_save() const { return std::nullopt; }
  // Stops background work that changes guest-visible state (in-flight requests complete first) and
  // starts it again. Called with every vCPU parked.
  virtual void quiesce() {}
  virtual void unquiesce() {}
  // Called with every vCPU parked and the device quiesced.
  virtual void save_state(StateWriter& out) = 0;
  // Into a freshly built device before any vCPU runs; re-drives the device's interrupt outputs.
  virtual base::ErrorOr<void> load_state(StateReader& in, uint32_t version) = 0;

 protected:
  static base::ErrorOr<void> check_version(uint32_t version, uint32_t known, std::string_view what) {
    if (version == known) return {};
    return base::fail(base::Error(std::string(what) + ": saved state version " + std::to_string(version) +
                                  ", this vmlaunch reads version " + std::to_string(known)));
  }
};

}  // namespace hw
