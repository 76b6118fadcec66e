#include "hw/virtio/rng.h"

namespace hw::virtio {

namespace {
// A driver may offer huge buffers; fill at most this much per request so one kick cannot keep a
// vCPU busy for long (the driver asks again for more).
constexpr uint32_t kMaxPerRequest = 64 * 1024;
}  // namespace

void RngDevice::activate(DeviceHost& host, uint64_t, std::vector<Queue*> queues) {
  m_host = &host;
  m_queue = queues.empty() ? nullptr : queues[0];
}

void RngDevice::notify(uint16_t q) {
  if (q != 0 || !m_queue) return;
  drain_queue(*m_host, *m_queue, 0, [&](const Chain& chain) -> uint32_t {
    uint32_t written = 0;
    for (const Segment& s : chain.segments) {
      if (!s.device_writable || written >= kMaxPerRequest) continue;
      auto part = s.host.first(std::min<uint64_t>(s.len, kMaxPerRequest - written));
      if (!m_backend->fill(part)) {
        m_errors++;
        break;
      }
      written += static_cast<uint32_t>(part.size());
    }
    return written;
  });
}

void RngDevice::reset() {
  m_host = nullptr;
  m_queue = nullptr;
}

}  // namespace hw::virtio
