// The console log every running machine keeps, whatever its console backend: a file capped in size
// with one rotation (PATH.1), so a chatty guest can neither fill the disk nor lose its latest output.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>

#include "backends/chardev.h"
#include "base/result.h"

namespace vmm {

class ConsoleLog {
 public:
  static base::ErrorOr<std::shared_ptr<ConsoleLog>> open(const std::filesystem::path& path, uint64_t cap);
  ~ConsoleLog();
  // Called from vCPU threads: one write(2), never blocks on anything but the file system.
  void append(std::span<const uint8_t> data);
  uint64_t written() const { return m_written.load(); }
  uint64_t rotations() const { return m_rotations.load(); }

 private:
  ConsoleLog(std::filesystem::path path, int fd, uint64_t size, uint64_t cap)
      : m_path(std::move(path)), m_fd(fd), m_size(size), m_cap(cap) {}
  std::filesystem::path m_path;
  std::mutex m_lock;
  int m_fd;
  uint64_t m_size;
  uint64_t m_cap;
  std::atomic<uint64_t> m_written{0};
  std::atomic<uint64_t> m_rotations{0};
};

// A chardev that forwards everything to the real backend and copies guest output to the log.
class TeeCharBackend : public backends::CharBackend {
 public:
  TeeCharBackend(std::shared_ptr<backends::CharBackend> inner, std::shared_ptr<ConsoleLog> log)
      : m_inner(std::move(inner)), m_log(std::move(log)) {}
  void write(std::span<const uint8_t> data) override {
    m_log->append(data);
    m_inner->write(data);
  }
  void attach(backends::CharReceiver* receiver) override { m_inner->attach(receiver); }

 private:
  std::shared_ptr<backends::CharBackend> m_inner;
  std::shared_ptr<ConsoleLog> m_log;
};

}  // namespace vmm
