// The console log every running machine keeps, whatever its console backend: a file capped in size
// with one rotation (PATH.1), so a chatty guest can neither fill the disk nor lose its latest output.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
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
  ConsoleLog(std::filesystem::path path, int fd, int previous_fd, uint64_t size, uint64_t cap)
      : m_path(std::move(path)), m_fd(fd), m_previous_fd(previous_fd), m_size(size), m_cap(cap) {}
  std::filesystem::path m_path;
  std::mutex m_lock;
  int m_fd;
  int m_previous_fd;  // PATH.1, opened up front: rotating opens nothing (the VMM runs under seccomp)
  uint64_t m_size;
  uint64_t m_cap;
  std::atomic<uint64_t> m_written{0};
  std::atomic<uint64_t> m_rotations{0};
};

// A chardev that forwards everything to the real backend, copies guest output to the log (when there
// is one) and to an output listener (the attached `vmlaunch console` client), and lets the host type
// into the guest's front end as if the backend had received the bytes.
class TeeCharBackend : public backends::CharBackend {
 public:
  using Listener = std::function<void(std::span<const uint8_t>)>;
  TeeCharBackend(std::shared_ptr<backends::CharBackend> inner, std::shared_ptr<ConsoleLog> log)
      : m_inner(std::move(inner)), m_log(std::move(log)) {}
  void write(std::span<const uint8_t> data) override {
    if (m_log) m_log->append(data);
    {
      std::lock_guard guard(m_listener_lock);
      if (m_listener) m_listener(data);
    }
    m_inner->write(data);
  }
  void attach(backends::CharReceiver* receiver) override {
    {
      // Waits for an inject() in progress: a front end that detaches is never called afterwards.
      std::lock_guard guard(m_receiver_lock);
      m_receiver = receiver;
    }
    m_inner->attach(receiver);
  }
  // Guest output goes to `listener` too (called on vCPU threads; it must not block). nullptr removes.
  void set_listener(Listener listener) {
    std::lock_guard guard(m_listener_lock);
    m_listener = std::move(listener);
  }
  // Host -> guest: hands the front end what its FIFO takes now; returns how many bytes it took.
  size_t inject(std::span<const uint8_t> data) {
    std::lock_guard guard(m_receiver_lock);
    if (!m_receiver) return 0;
    size_t n = std::min(data.size(), m_receiver->can_receive());
    if (n > 0) m_receiver->receive(data.first(n));
    return n;
  }

 private:
  std::shared_ptr<backends::CharBackend> m_inner;
  std::shared_ptr<ConsoleLog> m_log;
  std::mutex m_listener_lock;
  Listener m_listener;
  std::mutex m_receiver_lock;
  backends::CharReceiver* m_receiver = nullptr;
};

}  // namespace vmm
