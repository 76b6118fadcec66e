// `stdio` chardev: the guest console on the launcher's terminal.
// When the input fd is a terminal it is switched to raw mode (Ctrl-C goes to the guest) and
// restored on destruction, at exit, and on fatal signals. `Ctrl-a x` calls the quit callback,
// `Ctrl-a Ctrl-a` sends one Ctrl-a, `Ctrl-a h` prints help; any other byte after Ctrl-a is sent
// with its Ctrl-a. Works with pipes and files too (tests, `vmlaunch up < script`).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "backends/chardev.h"
#include "backends/chardev/pump.h"

namespace backends::chardev {

// The Ctrl-a state machine, separate so it can be tested byte by byte.
class EscapeFilter {
 public:
  static constexpr uint8_t kEscape = 0x01;  // Ctrl-a
  // `quit` runs on the reader thread; `help` receives the help text to show the user.
  EscapeFilter(std::function<void()> quit, std::function<void(std::string_view)> help)
      : m_quit(std::move(quit)), m_help(std::move(help)) {}
  void process(std::span<const uint8_t> in, std::vector<uint8_t>& out);

 private:
  std::function<void()> m_quit;
  std::function<void(std::string_view)> m_help;
  bool m_got_escape = false;
};

class StdioBackend : public CharBackend {
 public:
  struct Options {
    int in_fd = 0;
    int out_fd = 1;
    bool escape = true;   // Ctrl-a handling; off for binary pipes
    bool raw = true;      // raw mode when in_fd is a terminal
    bool signal = false;  // keep ISIG: Ctrl-C stops vmlaunch instead of reaching the guest
    std::function<void()> quit;
  };
  explicit StdioBackend(Options options);
  ~StdioBackend() override;

  void write(std::span<const uint8_t> data) override;
  void attach(CharReceiver* receiver) override;

  bool terminal_raw() const { return m_raw_active; }
  uint64_t dropped() const { return m_dropped.load(); }

 private:
  void run();

  Options m_options;
  bool m_raw_active = false;
  EscapeFilter m_filter;
  std::mutex m_write_lock;
  std::atomic<uint64_t> m_dropped{0};
  ReceiverSlot m_slot;
  Waker m_waker;
  std::atomic<bool> m_stop{false};
  std::thread m_reader;
};

// Restores every terminal a StdioBackend put in raw mode. Safe to call more than once; also runs
// at exit and from the fatal-signal handlers this module installs.
void restore_terminals();

}  // namespace backends::chardev
