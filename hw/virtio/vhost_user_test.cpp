// The vhost-user frontend against a fake backend on a socketpair: the bytes of each message (header,
// payload, SCM_RIGHTS descriptors), replies checked as untrusted input, and vhost-user-fs through a
// real virtio-mmio transport (memory table, ring addresses, kick and call eventfds, stop at reset).
#include "hw/virtio/vhost_user.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "hw/virtio/test_harness.h"
#include "hw/virtio/vhost_user_fs.h"

using namespace hw::virtio;
using namespace hw::virtio::testing;
namespace vu = hw::virtio::vhost_user;

namespace {

std::vector<uint8_t> le32(uint32_t v) {
  return {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
}
std::vector<uint8_t> le64(uint64_t v) {
  auto lo = le32(uint32_t(v)), hi = le32(uint32_t(v >> 32));
  lo.insert(lo.end(), hi.begin(), hi.end());
  return lo;
}
std::vector<uint8_t> pair32(uint32_t a, uint32_t b) {
  auto out = le32(a), second = le32(b);
  out.insert(out.end(), second.begin(), second.end());
  return out;
}
uint32_t at32(const std::vector<uint8_t>& b, size_t o) {
  return b[o] | b[o + 1] << 8 | b[o + 2] << 16 | uint32_t(b[o + 3]) << 24;
}
uint64_t at64(const std::vector<uint8_t>& b, size_t o) {
  return at32(b, o) | uint64_t(at32(b, o + 4)) << 32;
}

struct Message {
  uint32_t request = 0, flags = 0;
  std::vector<uint8_t> payload;
  std::vector<int> fds;  // owned by the test (closed by Peer)
};

// The backend's end of the socket: reads whole messages with their descriptors, writes replies.
struct Peer {
  int fd = -1;
  std::vector<int> received;
  ~Peer() {
    for (int f : received) close(f);
    if (fd >= 0) close(fd);
  }
  bool read_exact(uint8_t* out, size_t n, std::vector<int>* fds) {
    size_t got = 0;
    while (got < n) {
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
      iovec iov{out + got, n - got};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t r = recvmsg(fd, &msg, 0);
      if (r <= 0) return false;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
          int f;
          std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
          received.push_back(f);
          if (fds) fds->push_back(f);
        }
      got += size_t(r);
    }
    return true;
  }
  std::optional<Message> next() {
    uint8_t header[12];
    Message m;
    if (!read_exact(header, 12, &m.fds)) return std::nullopt;
    std::vector<uint8_t> h(header, header + 12);
    m.request = at32(h, 0);
    m.flags = at32(h, 4);
    m.payload.resize(at32(h, 8));
    if (!m.payload.empty() && !read_exact(m.payload.data(), m.payload.size(), &m.fds)) return std::nullopt;
    return m;
  }
  void send_raw(const std::vector<uint8_t>& bytes, int pass_fd = -1) {
    iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (pass_fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    REQUIRE(sendmsg(fd, &msg, 0) == ssize_t(bytes.size()));
  }
  void reply(uint32_t request, const std::vector<uint8_t>& payload, uint32_t flags = 0x5) {
    std::vector<uint8_t> bytes = le32(request);
    for (auto part : {le32(flags), le32(uint32_t(payload.size()))})
      bytes.insert(bytes.end(), part.begin(), part.end());
    bytes.insert(bytes.end(), payload.begin(), payload.end());
    send_raw(bytes);
  }
};

// A connected frontend/peer pair.
struct Pair {
  std::unique_ptr<vu::Frontend> frontend;
  Peer peer;
  int frontend_fd = -1;
  explicit Pair(int timeout_ms = 10000) {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    frontend_fd = fds[0];
    frontend = std::make_unique<vu::Frontend>(fds[0], timeout_ms);
    peer.fd = fds[1];
  }
};

constexpr uint64_t kVersion1 = 1ull << 32;

}  // namespace

TEST_CASE("vhost-user messages: header, little-endian payloads and descriptors") {
  Pair p;
  REQUIRE(p.frontend->set_owner().ok());
  auto m = p.peer.next();
  REQUIRE(m);
  CHECK(m->request == 3);
  CHECK(m->flags == 1);  // version 1, not a reply, no reply wanted
  CHECK(m->payload.empty());

  p.peer.reply(1, le64(0x1'4000'1234ull));  // queued before the request: read after sending it
  auto features = p.frontend->get_features();
  REQUIRE(features.ok());
  CHECK(features.value() == 0x1'4000'1234ull);
  CHECK(p.peer.next()->request == 1);

  REQUIRE(p.frontend->set_features(0x1'0000'0010ull).ok());
  m = p.peer.next();
  CHECK(m->request == 2);
  CHECK(m->payload == le64(0x1'0000'0010ull));

  REQUIRE(p.frontend->set_vring_num(1, 128).ok());
  m = p.peer.next();
  CHECK(m->request == 8);
  CHECK(at32(m->payload, 0) == 1);
  CHECK(at32(m->payload, 4) == 128);

  REQUIRE(p.frontend->set_vring_addr(2, 0x1000, 0x3000, 0x2000).ok());
  m = p.peer.next();
  CHECK(m->request == 9);
  REQUIRE(m->payload.size() == 40);
  CHECK(at32(m->payload, 0) == 2);
  CHECK(at32(m->payload, 4) == 0);
  CHECK(at64(m->payload, 8) == 0x1000);   // desc
  CHECK(at64(m->payload, 16) == 0x3000);  // used
  CHECK(at64(m->payload, 24) == 0x2000);  // avail
  CHECK(at64(m->payload, 32) == 0);       // log

  int efd = eventfd(0, EFD_CLOEXEC);
  REQUIRE(p.frontend->set_vring_kick(1, efd).ok());
  m = p.peer.next();
  CHECK(m->request == 12);
  CHECK(at64(m->payload, 0) == 1);
  REQUIRE(m->fds.size() == 1);
  uint64_t one = 1, seen = 0;
  REQUIRE(write(efd, &one, 8) == 8);  // the passed descriptor is the same eventfd
  REQUIRE(read(m->fds[0], &seen, 8) == 8);
  CHECK(seen == 1);
  REQUIRE(p.frontend->set_vring_call(0, -1).ok());  // no descriptor: the "invalid fd" flag
  m = p.peer.next();
  CHECK(m->request == 13);
  CHECK(at64(m->payload, 0) == 0x100);
  CHECK(m->fds.empty());
  close(efd);

  REQUIRE(p.frontend->set_vring_enable(1, true).ok());
  m = p.peer.next();
  CHECK(m->request == 18);
  CHECK(at32(m->payload, 4) == 1);

  p.peer.reply(11, pair32(1, 77));
  auto base = p.frontend->get_vring_base(1);
  REQUIRE(base.ok());
  CHECK(base.value() == 77);
  m = p.peer.next();
  CHECK(m->request == 11);
  CHECK(at32(m->payload, 0) == 1);
  CHECK_FALSE(p.frontend->broken());
}

TEST_CASE("vhost-user memory table carries one descriptor per region") {
  Pair p;
  base::GuestMemory memory;
  memory.set_shareable(true);
  REQUIRE(memory.add_region(0x80000000, 0x20000).ok());
  REQUIRE(memory.add_region(0x100000000, 0x10000).ok());
  std::vector<vu::MemoryRegion> regions;
  for (const auto& r : memory.regions())
    regions.push_back({r.guest_base, r.size, reinterpret_cast<uintptr_t>(r.host), 0, r.fd});
  REQUIRE(p.frontend->set_mem_table(regions).ok());
  auto m = p.peer.next();
  REQUIRE(m);
  CHECK(m->request == 5);
  REQUIRE(m->payload.size() == 8 + 2 * 32);
  CHECK(at32(m->payload, 0) == 2);
  CHECK(at64(m->payload, 8) == 0x80000000);
  CHECK(at64(m->payload, 16) == 0x20000);
  CHECK(at64(m->payload, 24) == reinterpret_cast<uintptr_t>(memory.regions()[0].host));
  CHECK(at64(m->payload, 40) == 0x100000000);
  REQUIRE(m->fds.size() == 2);
  // The backend's mapping of the second descriptor is the second region's RAM.
  void* mapped = mmap(nullptr, 0x10000, PROT_READ, MAP_SHARED, m->fds[1], 0);
  REQUIRE(mapped != MAP_FAILED);
  REQUIRE(memory.write_le<uint32_t>(0x100000040, 0xfeedf00d));
  uint32_t seen;
  std::memcpy(&seen, static_cast<uint8_t*>(mapped) + 0x40, 4);
  CHECK(seen == 0xfeedf00d);
  munmap(mapped, 0x10000);

  // Private RAM cannot be shared: refused before anything is sent.
  CHECK_FALSE(p.frontend->set_mem_table(std::vector<vu::MemoryRegion>{{0, 0x1000, 0x1000, 0, -1}}).ok());
}

TEST_CASE("vhost-user replies are untrusted: wrong code, flags, size, early close") {
  SUBCASE("reply to another request") {
    Pair p;
    p.peer.reply(15, le64(1));
    auto r = p.frontend->get_features();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("reply to request 15") != std::string::npos);
    CHECK(p.frontend->broken());
    CHECK_FALSE(p.frontend->set_owner().ok());  // nothing more goes out on a stream out of step
  }
  SUBCASE("reply flag missing or another version") {
    Pair p;
    p.peer.reply(1, le64(1), 0x1);
    CHECK_FALSE(p.frontend->get_features().ok());
    Pair q;
    q.peer.reply(1, le64(1), 0x6);
    CHECK_FALSE(q.frontend->get_features().ok());
  }
  SUBCASE("payload size other than the request's") {
    Pair p;
    p.peer.reply(1, std::vector<uint8_t>(4096, 0xff));
    auto r = p.frontend->get_features();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("4096 payload bytes, expected 8") != std::string::npos);
    Pair q;
    q.peer.reply(11, le32(0));
    CHECK_FALSE(q.frontend->get_vring_base(0).ok());
  }
  SUBCASE("GET_VRING_BASE answered for another queue") {
    Pair p;
    p.peer.reply(11, pair32(3, 0));
    CHECK_FALSE(p.frontend->get_vring_base(1).ok());
  }
  SUBCASE("truncated reply, then the backend closes") {
    Pair p;
    p.peer.send_raw({1, 0, 0, 0, 5, 0});
    shutdown(p.peer.fd, SHUT_WR);  // the frontend can still send; it reads end-of-stream
    auto r = p.frontend->get_features();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("closed the connection") != std::string::npos);
  }
  SUBCASE("a backend that never answers") {
    Pair p(50);
    auto r = p.frontend->get_features();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("did not answer") != std::string::npos);
  }
  SUBCASE("descriptors sent with a reply are closed, not kept") {
    Pair p;
    int efd = eventfd(0, EFD_CLOEXEC);
    std::vector<uint8_t> bytes = le32(1);
    for (auto part : {le32(5), le32(8), le64(42)}) bytes.insert(bytes.end(), part.begin(), part.end());
    p.peer.send_raw(bytes, efd);
    close(efd);
    // Our test process's descriptor table: the lowest free number is what the stray one would take.
    int probe_before = dup(0);
    close(probe_before);
    auto r = p.frontend->get_features();
    REQUIRE(r.ok());
    CHECK(r.value() == 42);
    int probe_after = dup(0);
    close(probe_after);
    CHECK(probe_after == probe_before);
  }
}

namespace {

// A fake virtiofsd for the device test: answers the handshake and GET_VRING_BASE, records the rest.
struct FakeBackend {
  Peer peer;
  std::thread thread;
  std::mutex lock;
  std::condition_variable changed;
  std::vector<Message> log;
  uint64_t features = kVersion1 | kFeatureEventIdx | kFeatureIndirectDesc | vu::kFeatureProtocolFeatures |
                      (1ull << 0) /* VIRTIO_FS_F_NOTIFICATION: not passed on */;
  uint64_t protocol = vu::kProtocolMq | (1ull << 3);

  int start() {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    peer.fd = fds[1];
    thread = std::thread([this] {
      while (auto m = peer.next()) {
        if (m->request == 1) peer.reply(1, le64(features));
        if (m->request == 15) peer.reply(15, le64(protocol));
        if (m->request == 17) peer.reply(17, le64(2));
        if (m->request == 11) peer.reply(11, pair32(at32(m->payload, 0), 0));
        std::lock_guard g(lock);
        log.push_back(std::move(*m));
        changed.notify_all();
      }
    });
    return fds[0];
  }
  // Waits until `count` messages of `request` arrived (the frontend sends without waiting).
  std::vector<Message> wait_for(uint32_t request, size_t count) {
    std::unique_lock g(lock);
    std::vector<Message> found;
    changed.wait_for(g, std::chrono::seconds(10), [&] {
      found.clear();
      for (const Message& m : log)
        if (m.request == request) found.push_back(m);
      return found.size() >= count;
    });
    return found;
  }
  ~FakeBackend() {
    if (thread.joinable()) {
      shutdown(peer.fd, SHUT_RDWR);
      thread.join();
    }
  }
};

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 5000) == 1;
}

}  // namespace

TEST_CASE("vhost-user-fs hands its queues to the backend and forwards kicks and calls") {
  FakeBackend backend;
  auto device = VhostUserFsDevice::connect(backend.start(), "share");
  REQUIRE_MESSAGE(device.ok(), device.error().message);
  auto set_protocol = backend.wait_for(16, 1);
  REQUIRE(set_protocol.size() == 1);
  CHECK(at64(set_protocol[0].payload, 0) == vu::kProtocolMq);  // only what we use
  CHECK(backend.wait_for(3, 1).size() == 1);                   // SET_OWNER
  CHECK(device.value()->features() == (kVersion1 | kFeatureEventIdx | kFeatureIndirectDesc));
  CHECK(device.value()->num_queues() == 2);

  Harness h(device.value(), 16, /*shareable=*/true);
  CHECK(h.read32(0x008) == kIdFs);
  std::string config(40, '\0');
  for (size_t i = 0; i < config.size(); ++i)
    h.transport->read(0x100 + i, {reinterpret_cast<uint8_t*>(config.data() + i), 1});
  CHECK(config.substr(0, 6) == std::string("share\0", 6));
  CHECK(config.substr(36) == std::string("\1\0\0\0", 4));  // num_request_queues
  REQUIRE(h.bring_up());

  auto enable = backend.wait_for(18, 2);
  REQUIRE(enable.size() == 2);
  auto features = backend.wait_for(2, 1);
  CHECK(at64(features[0].payload, 0) ==
        (kVersion1 | kFeatureEventIdx | kFeatureIndirectDesc | vu::kFeatureProtocolFeatures));
  auto table = backend.wait_for(5, 1);
  REQUIRE(table[0].fds.size() == 1);
  CHECK(at64(table[0].payload, 8) == kRamBase);
  CHECK(at64(table[0].payload, 24) == reinterpret_cast<uintptr_t>(h.memory.regions()[0].host));
  auto addr = backend.wait_for(9, 2);
  REQUIRE(addr.size() == 2);
  const uint8_t* host = h.memory.regions()[0].host;
  auto layout = h.queue(1).layout();
  CHECK(at32(addr[1].payload, 0) == 1);
  CHECK(at64(addr[1].payload, 8) == reinterpret_cast<uintptr_t>(host + (layout.desc - kRamBase)));
  CHECK(at64(addr[1].payload, 16) == reinterpret_cast<uintptr_t>(host + (layout.used - kRamBase)));
  CHECK(at64(addr[1].payload, 24) == reinterpret_cast<uintptr_t>(host + (layout.avail - kRamBase)));
  auto kicks = backend.wait_for(12, 2);
  auto calls = backend.wait_for(13, 2);
  REQUIRE(kicks.size() == 2);
  REQUIRE(calls.size() == 2);
  REQUIRE(kicks[1].fds.size() == 1);
  REQUIRE(calls[1].fds.size() == 1);

  // The driver kicks queue 1: the backend's kick eventfd fires.
  h.kick(1);
  REQUIRE(readable(kicks[1].fds[0]));
  uint64_t count = 0;
  REQUIRE(read(kicks[1].fds[0], &count, 8) == 8);
  CHECK(count == 1);
  // The backend signals queue 1's call eventfd: the transport raises the interrupt.
  int before = h.irq.raised();
  uint64_t one = 1;
  REQUIRE(write(calls[1].fds[0], &one, 8) == 8);
  for (int i = 0; i < 5000 && h.irq.raised() == before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(h.irq.raised() > before);
  CHECK((h.read32(0x060) & 1) == 1);  // InterruptStatus: used buffer

  // Reset takes the rings back: GET_VRING_BASE for each.
  h.write32(0x070, 0);
  CHECK(backend.wait_for(11, 2).size() == 2);
  CHECK_FALSE(h.needs_reset());
}

TEST_CASE("a backend that goes away breaks the device, not the VMM") {
  FakeBackend backend;
  auto device = VhostUserFsDevice::connect(backend.start(), "t");
  REQUIRE(device.ok());
  Harness h(device.value(), 16, /*shareable=*/true);
  REQUIRE(h.bring_up());
  REQUIRE(backend.wait_for(18, 2).size() == 2);
  CHECK_FALSE(h.needs_reset());
  shutdown(backend.peer.fd, SHUT_RDWR);  // as if virtiofsd died
  for (int i = 0; i < 5000 && !h.needs_reset(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(h.needs_reset());
  h.kick(1);            // still harmless
  h.write32(0x070, 0);  // reset: GET_VRING_BASE fails, nothing hangs
}

TEST_CASE("vhost-user-fs refuses private guest RAM and a backend without VERSION_1") {
  FakeBackend backend;
  auto device = VhostUserFsDevice::connect(backend.start(), "t");
  REQUIRE(device.ok());
  Harness h(device.value(), 16, /*shareable=*/false);
  h.bring_up();
  CHECK(h.needs_reset());  // the device breaks, the VMM does not

  FakeBackend legacy;
  legacy.features = kFeatureEventIdx;
  auto refused = VhostUserFsDevice::connect(legacy.start(), "t");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("VERSION_1") != std::string::npos);
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  CHECK_FALSE(VhostUserFsDevice::connect(fds[0], std::string(37, 'x')).ok());  // the tag's 36 bytes
  close(fds[1]);
}
