// Frames on their way to a NetReceiver that may have no receive buffer right now: delivered at
// once when possible, otherwise held (bounded, oldest first) and retried by the backend's thread.
// Thread-safe.
#pragma once

#include <atomic>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

#include "backends/net.h"

namespace backends::net {

class FrameQueue {
 public:
  explicit FrameQueue(size_t limit = 512) : m_limit(limit) {}
  void attach(NetReceiver* receiver) {
    std::lock_guard lock(m_lock);
    m_receiver = receiver;
  }
  // Delivers or queues; drops (and counts) when the queue is full.
  void deliver(std::span<const uint8_t> frame) {
    std::lock_guard lock(m_lock);
    if (m_queue.empty() && m_receiver && m_receiver->receive_frame(frame)) return;
    if (m_queue.size() >= m_limit) {
      m_dropped++;
      return;
    }
    m_queue.emplace_back(frame.begin(), frame.end());
  }
  // Retries queued frames; returns whether some are still waiting.
  bool flush() {
    std::lock_guard lock(m_lock);
    while (!m_queue.empty() && m_receiver && m_receiver->receive_frame(m_queue.front())) m_queue.pop_front();
    return !m_queue.empty();
  }
  bool full() {
    std::lock_guard lock(m_lock);
    return m_queue.size() >= m_limit;
  }
  uint64_t dropped() const { return m_dropped.load(); }

 private:
  std::mutex m_lock;
  NetReceiver* m_receiver = nullptr;
  std::deque<std::vector<uint8_t>> m_queue;
  size_t m_limit;
  std::atomic<uint64_t> m_dropped{0};
};

}  // namespace backends::net
