#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "security/thread_role.h"

namespace hw::virtio {

// The I/O threads of a device whose requests must not run on the vCPU thread that kicked them
// (blk, scsi): notify() calls kick(), which wakes one thread; a woken thread runs `service` once.
// `service` drains the device's queues: kicks that arrive while it runs move the counter, so the
// thread runs it again instead of sleeping on a kick it already missed.
class KickWorkers {
 public:
  KickWorkers() = default;
  KickWorkers(const KickWorkers&) = delete;
  KickWorkers& operator=(const KickWorkers&) = delete;
  ~KickWorkers() { stop(); }

  // Starts `count` threads of `role` (security/thread_role.h; none when 0). Call only while stopped.
  void start(unsigned count, security::Role role, std::function<void()> service);
  void kick();
  // Tells the threads to end and joins them; each finishes the `service` call it is in, which can
  // look at stopping() between requests to end sooner. Idempotent.
  void stop();
  bool stopping() const { return m_stop.load(std::memory_order_relaxed); }

 private:
  void run();

  std::function<void()> m_service;
  std::mutex m_lock;
  std::condition_variable m_wake;
  std::atomic<bool> m_stop{false};
  uint64_t m_kicks = 0;  // guarded by m_lock
  std::vector<std::thread> m_threads;
};

}  // namespace hw::virtio
