// The chardevs without a reader thread: `null` (discards output, never any input), `file`
// (appends guest output to a file) and `ringbuf` (keeps the last N bytes for `vmlaunch logs`).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/chardev.h"
#include "base/result.h"

namespace backends::chardev {

class NullBackend : public CharBackend {
 public:
  void write(std::span<const uint8_t>) override {}
  void attach(CharReceiver*) override {}
};

class FileBackend : public CharBackend {
 public:
  // Opens (creating, mode 0644) `path` for appending: earlier runs' output is kept.
  static base::ErrorOr<std::unique_ptr<FileBackend>> open(const std::string& path);
  ~FileBackend() override;
  void write(std::span<const uint8_t> data) override;
  void attach(CharReceiver*) override {}
  uint64_t dropped() const { return m_dropped.load(); }

 private:
  explicit FileBackend(int fd) : m_fd(fd) {}
  int m_fd;
  std::mutex m_lock;
  std::atomic<uint64_t> m_dropped{0};
};

class RingbufBackend : public CharBackend {
 public:
  explicit RingbufBackend(size_t capacity);
  void write(std::span<const uint8_t> data) override;
  void attach(CharReceiver*) override {}
  // The last capacity() bytes written, oldest first.
  std::vector<uint8_t> contents() const;
  size_t capacity() const { return m_buffer.size(); }
  uint64_t total_written() const;

 private:
  mutable std::mutex m_lock;
  std::vector<uint8_t> m_buffer;
  size_t m_head = 0;  // next write position
  uint64_t m_total = 0;
};

}  // namespace backends::chardev
