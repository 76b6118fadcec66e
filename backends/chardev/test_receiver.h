// A CharReceiver for tests: a FIFO of bounded room the test drains, recording the largest
// delivery so tests can check that backends respect can_receive().
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "backends/chardev.h"

namespace backends::chardev {

class TestReceiver : public CharReceiver {
 public:
  explicit TestReceiver(size_t room = 1 << 20) : m_room(room) {}
  size_t can_receive() override {
    std::lock_guard lock(m_lock);
    return m_room > m_fifo.size() ? m_room - m_fifo.size() : 0;
  }
  void receive(std::span<const uint8_t> data) override {
    std::lock_guard lock(m_lock);
    if (data.size() > m_room - m_fifo.size()) m_overflowed = true;
    m_largest = std::max(m_largest, data.size());
    m_fifo.append(data.begin(), data.end());
    m_all.append(data.begin(), data.end());
    m_changed.notify_all();
  }
  // Waits up to 5 s until `n` bytes arrived in total; returns everything received so far.
  std::string wait_for(size_t n) {
    std::unique_lock lock(m_lock);
    m_changed.wait_for(lock, std::chrono::seconds(5), [&] { return m_all.size() >= n; });
    return m_all;
  }
  // Empties the FIFO like a guest reading its UART.
  void drain() {
    std::lock_guard lock(m_lock);
    m_fifo.clear();
  }
  bool overflowed() {
    std::lock_guard lock(m_lock);
    return m_overflowed;
  }
  size_t largest() {
    std::lock_guard lock(m_lock);
    return m_largest;
  }
  size_t fifo_size() {
    std::lock_guard lock(m_lock);
    return m_fifo.size();
  }

 private:
  std::mutex m_lock;
  std::condition_variable m_changed;
  size_t m_room;
  std::string m_fifo;
  std::string m_all;
  size_t m_largest = 0;
  bool m_overflowed = false;
};

}  // namespace backends::chardev
