#include "hw/virtio/vhost_user_fs.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "security/thread_role.h"

namespace hw::virtio {

namespace {

// What we pass through from the backend to the driver: ring layout features only. Device-specific
// bits (VIRTIO_FS_F_NOTIFICATION) would need a notification queue we do not have.
constexpr uint64_t kPassThrough = kFeatureVersion1 | kFeatureIndirectDesc | kFeatureEventIdx;

void close_all(std::vector<int>& fds) {
  for (int& fd : fds)
    if (fd >= 0) close(fd), fd = -1;
}

}  // namespace

base::ErrorOr<std::shared_ptr<VhostUserFsDevice>> VhostUserFsDevice::connect(int socket, std::string tag,
                                                                             uint32_t request_queues,
                                                                             uint32_t queue_size) {
  auto frontend = std::make_unique<vhost_user::Frontend>(socket);
  if (tag.empty() || tag.size() > kFsTagSize)
    return base::fail(base::Error("vhost-user-fs: the tag must be 1 to 36 bytes"));
  if (request_queues < 1 || request_queues > 254)
    return base::fail(base::Error("vhost-user-fs: 1 to 254 request queues"));
  std::shared_ptr<VhostUserFsDevice> device(
      new VhostUserFsDevice(std::move(frontend), std::move(tag), request_queues, queue_size));
  vhost_user::Frontend& fe = *device->m_frontend;
  TRY(fe.set_owner());
  uint64_t features = TRY(fe.get_features());
  if (!(features & kFeatureVersion1))
    return base::fail(base::Error("vhost-user-fs: the backend does not offer VIRTIO_F_VERSION_1"));
  device->m_features = features & kPassThrough;
  if (features & vhost_user::kFeatureProtocolFeatures) {
    device->m_protocol_features = true;
    uint64_t protocol = TRY(fe.get_protocol_features());
    TRY(fe.set_protocol_features(protocol & vhost_user::kProtocolMq));
    if (protocol & vhost_user::kProtocolMq) {
      uint64_t most = TRY(fe.get_queue_num());
      if (most < 1 + uint64_t(request_queues))
        return base::fail(base::Error("vhost-user-fs: the backend serves " + std::to_string(most) +
                                      " queues, the device needs " + std::to_string(1 + request_queues)));
    }
  }
  return device;
}

VhostUserFsDevice::VhostUserFsDevice(std::unique_ptr<vhost_user::Frontend> frontend, std::string tag,
                                     uint32_t request_queues, uint32_t queue_size)
    : m_frontend(std::move(frontend)), m_request_queues(request_queues), m_queue_size(queue_size) {
  std::memcpy(m_config.data(), tag.data(), std::min(tag.size(), kFsTagSize));
  for (int i = 0; i < 4; ++i) m_config[kFsTagSize + i] = static_cast<uint8_t>(request_queues >> (8 * i));
}

VhostUserFsDevice::~VhostUserFsDevice() {
  stop();
}

void VhostUserFsDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset >= m_config.size()) return;
  size_t n = std::min<size_t>(data.size(), m_config.size() - offset);
  std::copy_n(m_config.begin() + static_cast<long>(offset), n, data.begin());
}

void VhostUserFsDevice::activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) {
  m_host = &host;
  auto started = start(negotiated, queues);
  if (!started.ok()) host.needs_reset(started.error().message);
}

base::ErrorOr<void> VhostUserFsDevice::start(uint64_t negotiated, const std::vector<Queue*>& queues) {
  vhost_user::Frontend& fe = *m_frontend;
  const base::GuestMemory& memory = m_host->memory();
  std::vector<vhost_user::MemoryRegion> regions;
  for (const base::GuestMemory::Region& r : memory.regions()) {
    if (r.fd < 0) return base::fail(base::Error("vhost-user-fs: guest RAM is not shareable (no memfd)"));
    regions.push_back({r.guest_base, r.size, reinterpret_cast<uintptr_t>(r.host), 0, r.fd});
  }
  TRY(fe.set_features(negotiated | (m_protocol_features ? vhost_user::kFeatureProtocolFeatures : 0)));
  TRY(fe.set_mem_table(regions));

  m_kick.assign(queues.size(), -1);
  m_call.assign(queues.size(), -1);
  m_started.assign(queues.size(), false);
  m_stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m_stop < 0) return base::fail(base::Error("vhost-user-fs: eventfd failed"));
  for (size_t i = 0; i < queues.size(); ++i) {
    if (!queues[i]) continue;
    const uint32_t index = static_cast<uint32_t>(i);
    const Virtqueue::Layout& layout = queues[i]->ring.layout();
    // The transport checked the rings lie in RAM (Virtqueue::create); the backend wants our addresses.
    auto desc = memory.slice(layout.desc, 16ull * layout.size);
    auto avail = memory.slice(layout.avail, 6 + 2ull * layout.size);
    auto used = memory.slice(layout.used, 6 + 8ull * layout.size);
    if (!desc || !avail || !used)
      return base::fail(base::Error("vhost-user-fs: a ring is outside guest RAM"));
    m_kick[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    m_call[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m_kick[i] < 0 || m_call[i] < 0) return base::fail(base::Error("vhost-user-fs: eventfd failed"));
    TRY(fe.set_vring_num(index, layout.size));
    TRY(fe.set_vring_base(index, queues[i]->ring.last_avail()));
    TRY(fe.set_vring_addr(index, reinterpret_cast<uintptr_t>(desc->data()),
                          reinterpret_cast<uintptr_t>(used->data()),
                          reinterpret_cast<uintptr_t>(avail->data())));
    TRY(fe.set_vring_kick(index, m_kick[i]));
    TRY(fe.set_vring_call(index, m_call[i]));
    m_started[i] = true;
  }
  // With protocol features negotiated rings start disabled (vhost-user.rst, "Ring states").
  if (m_protocol_features)
    for (size_t i = 0; i < queues.size(); ++i)
      if (m_started[i]) TRY(fe.set_vring_enable(static_cast<uint32_t>(i), true));
  m_call_thread = std::thread([this] {
    security::ThreadRole role(security::Role::DeviceIo);
    forward_calls();
  });
  return {};
}

void VhostUserFsDevice::forward_calls() {
  // Slot 1 watches the backend's socket for hang-up only (events 0): a daemon that died must show
  // as a broken device, not as a guest file system that silently stops answering.
  std::vector<pollfd> fds{{m_stop, POLLIN, 0}, {m_frontend->socket(), 0, 0}};
  std::vector<uint16_t> queue_of{0, 0};
  for (size_t i = 0; i < m_call.size(); ++i) {
    if (m_call[i] < 0) continue;
    fds.push_back({m_call[i], POLLIN, 0});
    queue_of.push_back(static_cast<uint16_t>(i));
  }
  while (true) {
    if (poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
    if (fds[0].revents) return;
    if (fds[1].revents & (POLLHUP | POLLERR)) {
      m_host->needs_reset("the vhost-user backend (virtiofsd) closed the connection");
      fds[1].fd = -1;  // reported once
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      uint64_t count;
      if (read(fds[i].fd, &count, sizeof count) == sizeof count) m_host->interrupt_queue(queue_of[i]);
    }
  }
}

void VhostUserFsDevice::notify(uint16_t q) {
  if (q >= m_kick.size() || m_kick[q] < 0) return;
  uint64_t one = 1;
  // An eventfd write only fails when the counter would overflow: the backend has a kick pending anyway.
  [[maybe_unused]] ssize_t n = write(m_kick[q], &one, sizeof one);
}

void VhostUserFsDevice::stop() {
  if (m_call_thread.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(m_stop, &one, sizeof one);
    m_call_thread.join();
  }
  // GET_VRING_BASE stops each ring: after it the backend no longer touches the guest's queues.
  for (size_t i = 0; i < m_started.size(); ++i)
    if (m_started[i] && !m_frontend->broken()) (void)m_frontend->get_vring_base(static_cast<uint32_t>(i));
  m_started.clear();
  close_all(m_kick);
  close_all(m_call);
  if (m_stop >= 0) close(m_stop), m_stop = -1;
}

void VhostUserFsDevice::reset() {
  stop();
  m_host = nullptr;
}

}  // namespace hw::virtio
