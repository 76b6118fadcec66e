// Block backend interface: what a virtio-blk front end reads and writes. Offsets and lengths are
// in bytes; the front end has already checked them against size() and read_only().
// Calls may block (they run on the device's I/O thread, never on a vCPU thread).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"

namespace backends {

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;
  virtual uint64_t size() const = 0;
  virtual bool read_only() const = 0;
  virtual base::ErrorOr<void> read(uint64_t offset, std::span<uint8_t> out) = 0;
  virtual base::ErrorOr<void> write(uint64_t offset, std::span<const uint8_t> in) = 0;
  virtual base::ErrorOr<void> flush() = 0;
  virtual base::ErrorOr<void> discard(uint64_t offset, uint64_t length) = 0;
  virtual base::ErrorOr<void> write_zeroes(uint64_t offset, uint64_t length) = 0;
  // Optional (added by backends): when disk byte N is byte N of one host file opened without
  // O_DIRECT (plain raw images), that file's descriptor, so a front end may run its reads, writes
  // and fdatasync asynchronously (io_uring) instead of calling read/write/flush. -1 otherwise.
  // The descriptor stays owned by the backend and valid for its lifetime.
  virtual int direct_fd() const { return -1; }
};

}  // namespace backends
