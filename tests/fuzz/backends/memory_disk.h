// A block backend over 1 MiB of RAM for the fuzz targets of block front ends (blk_fuzz, scsi_fuzz),
// so their reads and writes reach real data paths. Any access outside the disk, or a write to a
// read-only one, aborts: the front end must have checked it first.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "backends/block.h"

namespace fuzzing {

class MemoryDisk : public backends::BlockBackend {
 public:
  explicit MemoryDisk(bool read_only) : m_data(1 << 20), m_read_only(read_only) {}
  uint64_t size() const override { return m_data.size(); }
  bool read_only() const override { return m_read_only; }
  base::ErrorOr<void> read(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > m_data.size() || out.size() > m_data.size() - offset) std::abort();
    // An empty span may have a null data(); memcpy's arguments must not be null even for 0 bytes.
    if (!out.empty()) std::memcpy(out.data(), m_data.data() + offset, out.size());
    return {};
  }
  base::ErrorOr<void> write(uint64_t offset, std::span<const uint8_t> in) override {
    if (m_read_only || offset > m_data.size() || in.size() > m_data.size() - offset) std::abort();
    if (!in.empty()) std::memcpy(m_data.data() + offset, in.data(), in.size());
    return {};
  }
  base::ErrorOr<void> flush() override { return {}; }
  base::ErrorOr<void> discard(uint64_t offset, uint64_t length) override {
    return write_zeroes(offset, length);
  }
  base::ErrorOr<void> write_zeroes(uint64_t offset, uint64_t length) override {
    if (m_read_only || offset > m_data.size() || length > m_data.size() - offset) std::abort();
    std::memset(m_data.data() + offset, 0, length);
    return {};
  }

 private:
  std::vector<uint8_t> m_data;
  bool m_read_only;
};

}  // namespace fuzzing
