#include "hw/virtio/virtio_9p.h"

#include <algorithm>
#include <cstring>

namespace hw::virtio {

namespace {
// The largest message either way: the server's msize limit, so a guest offering gigabytes of
// buffers makes us copy no more than this per request.
constexpr size_t kMaxMessage = 512 * 1024;
}  // namespace

P9Device::P9Device(std::shared_ptr<backends::FsBackend> backend, std::string tag, uint32_t queue_size)
    : m_backend(std::move(backend)), m_queue_size(queue_size) {
  if (tag.size() > kMax9pTag) tag.resize(kMax9pTag);
  // Sized once and filled in place (push_back + insert trips a false -Warray-bounds in GCC 12).
  m_config.assign(2 + tag.size(), 0);
  m_config[0] = static_cast<uint8_t>(tag.size());
  m_config[1] = static_cast<uint8_t>(tag.size() >> 8);
  std::memcpy(m_config.data() + 2, tag.data(), tag.size());
}

void P9Device::read_config(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset >= m_config.size()) return;
  size_t n = std::min<size_t>(data.size(), m_config.size() - offset);
  std::copy_n(m_config.begin() + static_cast<long>(offset), n, data.begin());
}

void P9Device::activate(DeviceHost& host, uint64_t, std::vector<Queue*> queues) {
  m_host = &host;
  m_queue = queues.empty() ? nullptr : queues[0];
}

void P9Device::notify(uint16_t q) {
  if (q != 0 || !m_queue) return;
  drain_queue(*m_host, *m_queue, 0, [&](const Chain& chain) -> uint32_t {
    m_request.resize(std::min<uint64_t>(chain.readable, kMaxMessage));
    m_request.resize(chain.read(0, m_request));
    m_reply.resize(std::min<uint64_t>(chain.writable, kMaxMessage));
    size_t length = m_backend->serve(m_request, m_reply);
    return static_cast<uint32_t>(chain.write(0, std::span<const uint8_t>(m_reply).first(length)));
  });
}

void P9Device::quiesce() {
  m_host = nullptr;
  m_queue = nullptr;
}

void P9Device::save_state(hw::StateWriter& out) {
  out.bytes(m_backend->save_state());
}

base::ErrorOr<void> P9Device::load_state(hw::StateReader& in, uint32_t version) {
  if (version != 1)
    return base::fail(base::Error("virtio-9p: saved state version " + std::to_string(version)));
  std::vector<uint8_t> session = in.bytes(backends::FsBackend::kMaxSavedState);
  TRY(in.finish("virtio-9p"));
  return m_backend->load_state(session);
}

void P9Device::reset() {
  m_host = nullptr;
  m_queue = nullptr;
  // A reset driver starts a new 9P session: no fid of the old one may survive.
  m_backend->reset();
}

}  // namespace hw::virtio
