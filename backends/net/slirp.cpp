#include "backends/net/slirp.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "backends/net/slirp_library.h"
#include "security/thread_role.h"

namespace backends::net {

struct SlirpBackend::Timer {
  void (*cb)(void*);
  void* opaque;
  int64_t expire_ms = -1;  // -1: not armed
};

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

SlirpBackend* self(void* opaque) {
  return static_cast<SlirpBackend*>(opaque);
}

ssize_t cb_send_packet(const void* buf, size_t len, void* opaque) {
  self(opaque)->deliver({static_cast<const uint8_t*>(buf), len});
  return static_cast<ssize_t>(len);
}
void cb_guest_error(const char* msg, void*) {
  std::fprintf(stderr, "vmlaunch: user network: guest error: %s\n", msg);
}
int64_t cb_clock_get_ns(void*) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
void* cb_timer_new(SlirpTimerCb cb, void* cb_opaque, void* opaque) {
  return self(opaque)->timer_new(cb, cb_opaque);
}
void cb_timer_free(void* timer, void* opaque) {
  self(opaque)->timer_free(static_cast<SlirpBackend::Timer*>(timer));
}
void cb_timer_mod(void* timer, int64_t expire_ms, void* opaque) {
  self(opaque)->timer_mod(static_cast<SlirpBackend::Timer*>(timer), expire_ms);
}
void cb_register_poll_fd(int, void*) {}
void cb_unregister_poll_fd(int, void*) {}
void cb_notify(void* opaque) {
  self(opaque)->wake();
}

struct PollSet {
  std::vector<pollfd> fds;
};
int cb_add_poll(int fd, int events, void* opaque) {
  auto* set = static_cast<PollSet*>(opaque);
  short e = 0;
  if (events & SLIRP_POLL_IN) e |= POLLIN;
  if (events & SLIRP_POLL_OUT) e |= POLLOUT;
  if (events & SLIRP_POLL_PRI) e |= POLLPRI;
  set->fds.push_back({fd, e, 0});
  return static_cast<int>(set->fds.size() - 1);
}
int cb_get_revents(int idx, void* opaque) {
  auto* set = static_cast<PollSet*>(opaque);
  if (idx < 0 || static_cast<size_t>(idx) >= set->fds.size()) return 0;
  short r = set->fds[idx].revents;
  int out = 0;
  if (r & POLLIN) out |= SLIRP_POLL_IN;
  if (r & POLLOUT) out |= SLIRP_POLL_OUT;
  if (r & POLLPRI) out |= SLIRP_POLL_PRI;
  if (r & POLLERR) out |= SLIRP_POLL_ERR;
  if (r & POLLHUP) out |= SLIRP_POLL_HUP;
  return out;
}

const SlirpCb kCallbacks = {
    cb_send_packet,      cb_guest_error,        cb_clock_get_ns, cb_timer_new, cb_timer_free, cb_timer_mod,
    cb_register_poll_fd, cb_unregister_poll_fd, cb_notify,       nullptr,      nullptr};

}  // namespace

base::ErrorOr<HostForward> parse_hostfwd(const std::string& rule) {
  HostForward fwd;
  std::string why;
  if (!config::parse_hostfwd(rule, fwd, why)) return base::fail(base::Error(why));
  return fwd;
}

base::ErrorOr<std::unique_ptr<SlirpBackend>> SlirpBackend::create(const Options& options) {
  auto lib = slirp_library();
  if (!lib) return base::fail(lib.error());
  std::unique_ptr<SlirpBackend> backend(new SlirpBackend());
  backend->m_lib = *lib;
  backend->m_options = options;
  backend->m_hostname = options.hostname;
  backend->m_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (backend->m_wake_fd < 0) return base::fail(base::Error("eventfd failed"));

  SlirpConfig cfg{};
  cfg.version = 1;
  cfg.restricted = options.restricted ? 1 : 0;
  cfg.in_enabled = true;
  inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
  inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
  inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
  inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
  inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
  cfg.in6_enabled = false;
  cfg.vhostname = backend->m_hostname.empty() ? nullptr : backend->m_hostname.c_str();
  cfg.if_mtu = 1500;
  cfg.if_mru = 1500;
  backend->m_slirp = backend->m_lib->slirp_new(&cfg, &kCallbacks, backend.get());
  if (!backend->m_slirp) return base::fail(base::Error("user network: slirp_new failed"));

  for (const HostForward& fwd : options.forwards) {
    in_addr host{}, guest{};
    host.s_addr = INADDR_ANY;
    if (!fwd.host_addr.empty()) inet_pton(AF_INET, fwd.host_addr.c_str(), &host);
    inet_pton(AF_INET, fwd.guest_addr.empty() ? "10.0.2.15" : fwd.guest_addr.c_str(), &guest);
    if (backend->m_lib->slirp_add_hostfwd(backend->m_slirp, fwd.udp ? 1 : 0, host, fwd.host_port, guest,
                                          fwd.guest_port) < 0)
      return base::fail(base::Error("hostfwd " + std::string(fwd.udp ? "udp" : "tcp") + " port " +
                                    std::to_string(fwd.host_port) + ": cannot listen (port in use?)"));
  }
  SlirpBackend* raw = backend.get();
  backend->m_thread = std::thread([raw] {
    security::ThreadRole role(security::Role::Net);
    raw->run();
  });
  return backend;
}

SlirpBackend::~SlirpBackend() {
  m_stop.store(true);
  wake();
  if (m_thread.joinable()) m_thread.join();
  if (m_slirp) m_lib->slirp_cleanup(m_slirp);
  if (m_wake_fd >= 0) close(m_wake_fd);
}

void SlirpBackend::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(m_wake_fd, &one, sizeof(one));
}

SlirpBackend::Timer* SlirpBackend::timer_new(void (*cb)(void*), void* opaque) {
  m_timers.push_back(std::make_unique<Timer>(Timer{cb, opaque, -1}));
  return m_timers.back().get();
}

void SlirpBackend::timer_free(Timer* timer) {
  for (auto it = m_timers.begin(); it != m_timers.end(); ++it)
    if (it->get() == timer) {
      m_timers.erase(it);
      return;
    }
}

void SlirpBackend::timer_mod(Timer* timer, int64_t expire_ms) {
  timer->expire_ms = expire_ms;
}

// Called with m_lock held (from slirp_input or slirp_pollfds_poll).
void SlirpBackend::deliver(std::span<const uint8_t> frame) {
  if (m_queue.empty() && m_receiver && m_receiver->receive_frame(frame)) return;
  if (m_queue.size() >= m_options.queue_limit) {
    m_dropped++;
    return;
  }
  m_queue.emplace_back(frame.begin(), frame.end());
}

void SlirpBackend::flush_queue() {
  while (!m_queue.empty() && m_receiver && m_receiver->receive_frame(m_queue.front())) m_queue.pop_front();
}

void SlirpBackend::send_frame(std::span<const uint8_t> frame) {
  {
    std::lock_guard lock(m_lock);
    m_lib->slirp_input(m_slirp, frame.data(), static_cast<int>(frame.size()));
  }
  // The frame may have opened a socket the poll set does not have yet.
  wake();
}

namespace {
struct StateStream {
  std::vector<uint8_t>* out = nullptr;
  std::span<const uint8_t> in;
  size_t pos = 0;
};
ssize_t state_write(const void* buf, size_t len, void* opaque) {
  auto* stream = static_cast<StateStream*>(opaque);
  const auto* bytes = static_cast<const uint8_t*>(buf);
  stream->out->insert(stream->out->end(), bytes, bytes + len);
  return static_cast<ssize_t>(len);
}
// Short reads past the end: libslirp's loader then fails instead of reading garbage.
ssize_t state_read(void* buf, size_t len, void* opaque) {
  auto* stream = static_cast<StateStream*>(opaque);
  if (len > stream->in.size() - stream->pos) return -1;
  std::memcpy(buf, stream->in.data() + stream->pos, len);
  stream->pos += len;
  return static_cast<ssize_t>(len);
}
}  // namespace

std::vector<uint8_t> SlirpBackend::save_state() {
  std::vector<uint8_t> bytes(4);
  std::lock_guard lock(m_lock);
  const auto version = static_cast<uint32_t>(m_lib->slirp_state_version());
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<uint8_t>(version >> (8 * i));
  StateStream stream{&bytes, {}, 0};
  m_lib->slirp_state_save(m_slirp, state_write, &stream);
  return bytes;
}

base::ErrorOr<void> SlirpBackend::load_state(std::span<const uint8_t> bytes) {
  if (bytes.size() < 5) return base::fail(base::Error("user network: saved state is short"));
  // libslirp's stream starts with its guestfwd sockets (a non-zero byte before each), whose
  // loading sizes socket buffers from the stream. vmlaunch never creates guestfwd rules, so a state
  // it saved has none: anything else is refused before libslirp parses it.
  if (bytes[4] != 0)
    return base::fail(
        base::Error("user network: saved state carries sockets (guestfwd), which vmlaunch never saves"));
  uint32_t version = 0;
  for (int i = 0; i < 4; ++i) version |= uint32_t{bytes[i]} << (8 * i);
  std::lock_guard lock(m_lock);
  if (version > static_cast<uint32_t>(m_lib->slirp_state_version()))
    return base::fail(base::Error("user network: saved by a newer libslirp (state version " +
                                  std::to_string(version) + ", this one reads up to " +
                                  std::to_string(m_lib->slirp_state_version()) + ")"));
  StateStream stream{nullptr, bytes.subspan(4), 0};
  const int loaded = m_lib->slirp_state_load(m_slirp, static_cast<int>(version), state_read, &stream);
  if (loaded < 0 || stream.pos != stream.in.size())
    return base::fail(
        base::Error("user network: libslirp refused the saved state" +
                    (loaded < 0 ? " (" + std::string(std::strerror(-loaded)) + ")" : std::string())));
  return {};
}

void SlirpBackend::attach(NetReceiver* receiver) {
  std::lock_guard lock(m_lock);
  m_receiver = receiver;
}

void SlirpBackend::run() {
  PollSet set;
  while (!m_stop.load()) {
    uint32_t timeout = 1000;
    {
      std::lock_guard lock(m_lock);
      set.fds.clear();
      m_lib->slirp_pollfds_fill(m_slirp, &timeout, cb_add_poll, &set);
      int64_t now = now_ms();
      for (const auto& timer : m_timers)
        if (timer->expire_ms >= 0)
          timeout =
              static_cast<uint32_t>(std::min<int64_t>(timeout, std::max<int64_t>(0, timer->expire_ms - now)));
      // Queued frames wait for the guest to post receive buffers: look again soon.
      if (!m_queue.empty()) timeout = std::min<uint32_t>(timeout, 2);
    }
    set.fds.push_back({m_wake_fd, POLLIN, 0});
    int ready = poll(set.fds.data(), set.fds.size(), static_cast<int>(timeout));
    if (set.fds.back().revents & POLLIN) {
      uint64_t drained;
      [[maybe_unused]] ssize_t n = ::read(m_wake_fd, &drained, sizeof(drained));
    }
    set.fds.pop_back();
    std::lock_guard lock(m_lock);
    m_lib->slirp_pollfds_poll(m_slirp, ready < 0 ? 1 : 0, cb_get_revents, &set);
    int64_t now = now_ms();
    // Fire expired timers; a callback may modify or free timers, so restart after each one.
    for (bool fired = true; fired;) {
      fired = false;
      for (const auto& timer : m_timers) {
        if (timer->expire_ms >= 0 && timer->expire_ms <= now) {
          timer->expire_ms = -1;
          timer->cb(timer->opaque);
          fired = true;
          break;
        }
      }
    }
    flush_queue();
  }
}

}  // namespace backends::net
