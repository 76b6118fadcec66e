// In-memory backends for device tests (the real ones live in backends/ and are not visible here).
#pragma once

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "backends/block.h"
#include "backends/chardev.h"
#include "backends/net.h"
#include "backends/rng.h"

namespace hw::virtio::testing {

class MemoryDisk : public backends::BlockBackend {
 public:
  explicit MemoryDisk(uint64_t size, bool read_only = false) : data(size, 0), m_read_only(read_only) {}
  uint64_t size() const override { return data.size(); }
  bool read_only() const override { return m_read_only; }
  base::ErrorOr<void> read(uint64_t offset, std::span<uint8_t> out) override {
    std::lock_guard lock(m);
    if (offset + out.size() > data.size()) return base::fail(base::Error("out of range"));
    std::memcpy(out.data(), data.data() + offset, out.size());
    return {};
  }
  base::ErrorOr<void> write(uint64_t offset, std::span<const uint8_t> in) override {
    std::lock_guard lock(m);
    if (offset + in.size() > data.size()) return base::fail(base::Error("out of range"));
    std::memcpy(data.data() + offset, in.data(), in.size());
    return {};
  }
  base::ErrorOr<void> flush() override {
    flushes++;
    return {};
  }
  base::ErrorOr<void> discard(uint64_t offset, uint64_t length) override {
    discards++;
    return write_zeroes(offset, length);
  }
  base::ErrorOr<void> write_zeroes(uint64_t offset, uint64_t length) override {
    std::lock_guard lock(m);
    std::memset(data.data() + offset, 0, length);
    return {};
  }
  std::mutex m;
  std::vector<uint8_t> data;
  int flushes = 0;
  int discards = 0;

 private:
  bool m_read_only;
};

class CountingRng : public backends::RngBackend {
 public:
  base::ErrorOr<void> fill(std::span<uint8_t> out) override {
    for (uint8_t& b : out) b = static_cast<uint8_t>(m_next++);
    return {};
  }

 private:
  uint8_t m_next = 1;
};

class RecordingChardev : public backends::CharBackend {
 public:
  void write(std::span<const uint8_t> data) override {
    std::lock_guard lock(m);
    output.append(data.begin(), data.end());
  }
  void attach(backends::CharReceiver* r) override { receiver = r; }
  std::string text() {
    std::lock_guard lock(m);
    return output;
  }
  std::mutex m;
  std::string output;
  backends::CharReceiver* receiver = nullptr;
};

}  // namespace hw::virtio::testing

namespace hw::virtio::testing {

class RecordingNet : public backends::NetBackend {
 public:
  void send_frame(std::span<const uint8_t> frame) override {
    std::lock_guard lock(m);
    sent.emplace_back(frame.begin(), frame.end());
  }
  void attach(backends::NetReceiver* r) override { receiver = r; }
  std::mutex m;
  std::vector<std::vector<uint8_t>> sent;
  backends::NetReceiver* receiver = nullptr;
};

}  // namespace hw::virtio::testing

#include <sys/mman.h>
#include <unistd.h>

namespace hw::virtio::testing {

// A disk in a memfd that offers direct_fd(): virtio-blk drives it through io_uring.
class FdDisk : public backends::BlockBackend {
 public:
  explicit FdDisk(uint64_t size) : m_size(size) {
    m_fd = memfd_create("fd-disk", MFD_CLOEXEC);
    [[maybe_unused]] int rc = ftruncate(m_fd, static_cast<off_t>(size));
  }
  ~FdDisk() override { close(m_fd); }
  uint64_t size() const override { return m_size; }
  bool read_only() const override { return false; }
  base::ErrorOr<void> read(uint64_t offset, std::span<uint8_t> out) override {
    sync_calls++;
    if (pread(m_fd, out.data(), out.size(), static_cast<off_t>(offset)) != static_cast<ssize_t>(out.size()))
      return base::fail(base::Error("short read"));
    return {};
  }
  base::ErrorOr<void> write(uint64_t offset, std::span<const uint8_t> in) override {
    sync_calls++;
    if (pwrite(m_fd, in.data(), in.size(), static_cast<off_t>(offset)) != static_cast<ssize_t>(in.size()))
      return base::fail(base::Error("short write"));
    return {};
  }
  base::ErrorOr<void> flush() override {
    sync_calls++;
    return {};
  }
  base::ErrorOr<void> discard(uint64_t, uint64_t) override { return {}; }
  base::ErrorOr<void> write_zeroes(uint64_t offset, uint64_t length) override {
    std::vector<uint8_t> zeros(length, 0);
    return write(offset, zeros);
  }
  int direct_fd() const override { return m_fd; }
  std::atomic<int> sync_calls{0};

 private:
  int m_fd;
  uint64_t m_size;
};

}  // namespace hw::virtio::testing
