#include "hw/virtio/vhost_user.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hw::virtio::vhost_user {

namespace {

void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

// Descriptors that arrived with a reply: none is expected, so all are closed.
void close_passed_fds(msghdr& msg) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      close(fd);
    }
  }
}

}  // namespace

Frontend::Frontend(int socket, int reply_timeout_ms) : m_socket(socket), m_timeout_ms(reply_timeout_ms) {}

Frontend::~Frontend() {
  if (m_socket >= 0) close(m_socket);
}

base::Error Frontend::fail(std::string message) {
  m_broken = true;
  return base::Error("vhost-user: " + std::move(message));
}

base::ErrorOr<void> Frontend::send(Request request, std::span<const uint8_t> payload,
                                   std::span<const int> fds) {
  if (m_broken) return base::fail(base::Error("vhost-user: the connection failed earlier"));
  if (fds.size() > kMaxMemRegions) return base::fail(fail("too many descriptors in one message"));
  std::vector<uint8_t> message;
  message.reserve(kHeaderSize + payload.size());
  put32(message, static_cast<uint32_t>(request));
  put32(message, kVersion);
  put32(message, static_cast<uint32_t>(payload.size()));
  message.insert(message.end(), payload.begin(), payload.end());

  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxMemRegions)] = {};
  iovec iov{message.data(), message.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  // One sendmsg carries the descriptors with the first byte; the rest (rarely any) follows.
  size_t sent = 0;
  while (sent < message.size()) {
    ssize_t n = sendmsg(m_socket, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return base::fail(fail(std::string("sending to the backend: ") + std::strerror(errno)));
    sent += static_cast<size_t>(n);
    iov = {message.data() + sent, message.size() - sent};
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
  }
  return {};
}

base::ErrorOr<std::vector<uint8_t>> Frontend::reply(Request request, uint32_t size) {
  // Header and payload are read as one exact-length stream: the backend may split them arbitrarily.
  std::vector<uint8_t> buffer(kHeaderSize + size);
  size_t got = 0;
  while (got < buffer.size()) {
    pollfd p{m_socket, POLLIN, 0};
    int ready = poll(&p, 1, m_timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return base::fail(fail("the backend did not answer in time"));
    if (ready < 0) return base::fail(fail(std::string("waiting for the backend: ") + std::strerror(errno)));
    // Read the header alone first so a mismatched size is caught before we consume the next message.
    size_t want = got < kHeaderSize ? kHeaderSize - got : buffer.size() - got;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxMemRegions)];
    iovec iov{buffer.data() + got, want};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(m_socket, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::fail(fail(std::string("reading from the backend: ") + std::strerror(errno)));
    close_passed_fds(msg);
    if (n == 0) return base::fail(fail("the backend closed the connection"));
    got += static_cast<size_t>(n);
    if (got == kHeaderSize) {
      uint32_t code = get32(buffer.data()), flags = get32(buffer.data() + 4),
               length = get32(buffer.data() + 8);
      if (code != static_cast<uint32_t>(request))
        return base::fail(fail("reply to request " + std::to_string(code) + " while waiting for " +
                               std::to_string(static_cast<uint32_t>(request))));
      if ((flags & 3) != kVersion || !(flags & kFlagReply))
        return base::fail(fail("reply with bad flags 0x" + std::to_string(flags)));
      if (length != size)
        return base::fail(fail("reply to request " + std::to_string(code) + " has " + std::to_string(length) +
                               " payload bytes, expected " + std::to_string(size)));
    }
  }
  buffer.erase(buffer.begin(), buffer.begin() + kHeaderSize);
  return buffer;
}

base::ErrorOr<uint64_t> Frontend::get_u64(Request request) {
  TRY(send(request, {}));
  auto payload = TRY(reply(request, 8));
  return get64(payload.data());
}

base::ErrorOr<void> Frontend::set_u64(Request request, uint64_t value) {
  std::vector<uint8_t> payload;
  put64(payload, value);
  return send(request, payload);
}

base::ErrorOr<void> Frontend::set_state(Request request, uint32_t index, uint32_t num) {
  std::vector<uint8_t> payload;
  put32(payload, index);
  put32(payload, num);
  return send(request, payload);
}

base::ErrorOr<void> Frontend::set_fd(Request request, uint32_t index, int fd) {
  if (index > 0xff) return base::fail(base::Error("vhost-user: queue index above 255"));
  std::vector<uint8_t> payload;
  put64(payload, index | (fd < 0 ? kVringNoFd : 0));
  if (fd < 0) return send(request, payload);
  int fds[1] = {fd};
  return send(request, payload, fds);
}

base::ErrorOr<void> Frontend::set_owner() {
  return send(Request::SetOwner, {});
}
base::ErrorOr<uint64_t> Frontend::get_features() {
  return get_u64(Request::GetFeatures);
}
base::ErrorOr<void> Frontend::set_features(uint64_t f) {
  return set_u64(Request::SetFeatures, f);
}
base::ErrorOr<uint64_t> Frontend::get_protocol_features() {
  return get_u64(Request::GetProtocolFeatures);
}
base::ErrorOr<void> Frontend::set_protocol_features(uint64_t f) {
  return set_u64(Request::SetProtocolFeatures, f);
}
base::ErrorOr<uint64_t> Frontend::get_queue_num() {
  return get_u64(Request::GetQueueNum);
}

base::ErrorOr<void> Frontend::set_mem_table(std::span<const MemoryRegion> regions) {
  if (regions.empty() || regions.size() > kMaxMemRegions)
    return base::fail(base::Error("vhost-user: 1 to 8 memory regions can be shared"));
  std::vector<uint8_t> payload;
  std::vector<int> fds;
  put32(payload, static_cast<uint32_t>(regions.size()));
  put32(payload, 0);  // padding
  for (const MemoryRegion& r : regions) {
    if (r.fd < 0) return base::fail(base::Error("vhost-user: guest RAM is not in a shareable memfd"));
    put64(payload, r.guest_phys_addr);
    put64(payload, r.memory_size);
    put64(payload, r.userspace_addr);
    put64(payload, r.mmap_offset);
    fds.push_back(r.fd);
  }
  return send(Request::SetMemTable, payload, fds);
}

base::ErrorOr<void> Frontend::set_vring_num(uint32_t index, uint32_t num) {
  return set_state(Request::SetVringNum, index, num);
}
base::ErrorOr<void> Frontend::set_vring_base(uint32_t index, uint32_t base) {
  return set_state(Request::SetVringBase, index, base);
}
base::ErrorOr<void> Frontend::set_vring_enable(uint32_t index, bool enable) {
  return set_state(Request::SetVringEnable, index, enable ? 1 : 0);
}

base::ErrorOr<uint32_t> Frontend::get_vring_base(uint32_t index) {
  TRY(set_state(Request::GetVringBase, index, 0));
  auto payload = TRY(reply(Request::GetVringBase, 8));
  if (get32(payload.data()) != index)
    return base::fail(fail("GET_VRING_BASE answered for queue " + std::to_string(get32(payload.data())) +
                           ", asked for " + std::to_string(index)));
  return get32(payload.data() + 4);
}

base::ErrorOr<void> Frontend::set_vring_addr(uint32_t index, uint64_t desc, uint64_t used, uint64_t avail) {
  std::vector<uint8_t> payload;
  put32(payload, index);
  put32(payload, 0);  // flags: no dirty logging
  put64(payload, desc);
  put64(payload, used);
  put64(payload, avail);
  put64(payload, 0);  // log_guest_addr
  return send(Request::SetVringAddr, payload);
}

base::ErrorOr<void> Frontend::set_vring_kick(uint32_t index, int fd) {
  return set_fd(Request::SetVringKick, index, fd);
}
base::ErrorOr<void> Frontend::set_vring_call(uint32_t index, int fd) {
  return set_fd(Request::SetVringCall, index, fd);
}

}  // namespace hw::virtio::vhost_user
