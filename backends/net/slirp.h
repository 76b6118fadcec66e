// `user` networking through libslirp (QEMU's): the guest gets 10.0.2.15 by DHCP (gateway and host
// at 10.0.2.2, DNS at 10.0.2.3), outgoing TCP/UDP become host sockets, and `hostfwd` rules forward
// host ports to the guest. `restrict: true` cuts the guest off from everything except hostfwd.
//
// libslirp is loaded on first use (slirp_library.h): processes without a user network never map it.
//
// libslirp is not thread-safe: every call into it happens under m_lock, from the backend's poll
// thread or from send_frame() (the virtio-net TX path). Frames for a guest that has no receive
// buffer posted are queued (bounded) and retried every few milliseconds; past the bound they are
// dropped, which TCP recovers from.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/net.h"
#include "base/result.h"
#include "config/hostfwd.h"

struct Slirp;

namespace backends::net {

struct SlirpLibrary;

using HostForward = config::HostForward;

// "tcp:127.0.0.1:2222-:22" -> HostForward (config/hostfwd.h parses it; `validate` checks the same).
base::ErrorOr<HostForward> parse_hostfwd(const std::string& rule);

class SlirpBackend : public NetBackend {
 public:
  struct Options {
    bool restricted = false;
    std::string hostname;  // sent in DHCP
    std::vector<HostForward> forwards;
    size_t queue_limit = 512;  // frames held for a guest without RX buffers
  };
  // Fails, naming the package to install, when libslirp cannot be loaded.
  static base::ErrorOr<std::unique_ptr<SlirpBackend>> create(const Options& options);
  ~SlirpBackend() override;

  void send_frame(std::span<const uint8_t> frame) override;
  void attach(NetReceiver* receiver) override;

  uint64_t dropped() const { return m_dropped.load(); }

  // libslirp's state (slirp_state_save): the DHCP leases and the IP id, prefixed with its state
  // version. Open TCP connections are not in it (libslirp saves only guestfwd sockets, which we do
  // not create): after a restore the guest's connections get a reset and hostfwd listens anew.
  // Frames queued for the guest at the snapshot are dropped (TCP resends).
  std::vector<uint8_t> save_state() override;
  base::ErrorOr<void> load_state(std::span<const uint8_t> bytes) override;

  // libslirp callbacks (public for the C trampolines).
  void deliver(std::span<const uint8_t> frame);
  struct Timer;
  Timer* timer_new(void (*cb)(void*), void* opaque);
  void timer_free(Timer* timer);
  void timer_mod(Timer* timer, int64_t expire_ms);
  void wake();

 private:
  SlirpBackend() = default;
  void run();
  void flush_queue();

  Options m_options;
  const SlirpLibrary* m_lib = nullptr;  // set before m_slirp, outlives it
  Slirp* m_slirp = nullptr;
  std::mutex m_lock;  // guards m_slirp, the queue, the receiver and the timers
  NetReceiver* m_receiver = nullptr;
  std::deque<std::vector<uint8_t>> m_queue;
  std::vector<std::unique_ptr<Timer>> m_timers;
  std::atomic<uint64_t> m_dropped{0};
  int m_wake_fd = -1;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
  std::string m_hostname;
};

}  // namespace backends::net
