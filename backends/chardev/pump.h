// Shared plumbing for the fd-based character backends (stdio, pty, socket): a receiver slot that
// hands bytes to the front end no faster than its can_receive() allows, and a read loop that
// polls an fd plus a wake-up fd so the backend's thread stops promptly.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "backends/chardev.h"

namespace backends::chardev {

// Holds the attached receiver. deliver() is called only from the backend's reader thread; attach()
// from any thread. The receiver is called with the slot's lock held, so a receiver must not call
// attach() on the same backend from inside receive() or can_receive().
class ReceiverSlot {
 public:
  void attach(CharReceiver* receiver);
  // Delivers all of `data` in pieces of at most can_receive() bytes, waiting (without spinning
  // hard) while there is no receiver or it has no room. Returns false if `stop` was raised first.
  bool deliver(std::span<const uint8_t> data, const std::atomic<bool>& stop);
  // Wakes a deliver() that waits for room, e.g. to notice `stop`.
  void wake();

 private:
  std::mutex m_lock;
  std::condition_variable m_changed;
  CharReceiver* m_receiver = nullptr;
};

// An eventfd that makes poll() in read_loop return: the stop signal for reader threads.
class Waker {
 public:
  Waker();
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;
  int fd() const { return m_fd; }
  void wake();

 private:
  int m_fd = -1;
};

enum class LoopEnd { Stopped, Eof, Error };

// Transforms raw input before delivery (stdio's Ctrl-a escapes); appends to `out`.
using InputFilter = std::function<void(std::span<const uint8_t> in, std::vector<uint8_t>& out)>;

// Reads `fd` until EOF, an error, or `stop` (signalled through `waker`). Reads at most 4 KiB at a
// time and delivers it before reading more, so a slow guest slows the reader instead of growing a
// buffer. EAGAIN on a non-blocking fd is not an error.
LoopEnd read_loop(int fd, const Waker& waker, const std::atomic<bool>& stop, ReceiverSlot& slot,
                  const InputFilter& filter = {});

}  // namespace backends::chardev
