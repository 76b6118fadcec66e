// TransportCore's snapshot state (see hw/device_state.h): registers, queue indices and the device's
// own state (VirtioDevice::save_state). The rings live in guest RAM, which is restored before any
// device loads.
#include "hw/virtio/transport.h"

namespace hw::virtio {

std::vector<Queue*> TransportCore::live_queues() const {
  // activate() made one live queue per ready queue, in order; m_active means all of them exist.
  std::vector<Queue*> queues(m_queues.size(), nullptr);
  size_t next = 0;
  for (size_t i = 0; i < m_queues.size() && next < m_live.size(); ++i)
    if (m_queues[i].ready) queues[i] = m_live[next++].get();
  return queues;
}

std::optional<std::string> TransportCore::cannot_save() const {
  if (m_device->state_version()) return m_device->cannot_save();
  return std::string(m_device->name()) + " cannot save its state yet";
}

void TransportCore::quiesce() {
  std::lock_guard lock(m_lock);
  if (!m_active || m_quiesced) return;
  m_device->quiesce();  // waits for the requests in flight; they complete into the used rings
  m_quiesced = true;
}

void TransportCore::unquiesce() {
  std::lock_guard lock(m_lock);
  if (!m_quiesced) return;
  m_quiesced = false;
  if (!m_active) return;
  m_device->activate(*this, m_driver_features, live_queues());
  for (uint16_t q = 0; q < m_queues.size(); ++q)
    if (m_queues[q].ready) m_device->notify(q);
}

void TransportCore::save_state(hw::StateWriter& out) {
  std::lock_guard lock(m_lock);
  out.u8(m_status.load());
  out.u32(m_generation.load());
  out.u64(m_driver_features);
  out.u16(m_queue_select);
  out.u16(m_config_msix);
  out.u32(static_cast<uint32_t>(m_queues.size()));
  for (const QueueRegs& regs : m_queues) {
    out.u32(regs.size);
    out.boolean(regs.ready);
    out.u64(regs.desc);
    out.u64(regs.driver);
    out.u64(regs.device);
    out.u16(regs.msix_vector);
  }
  out.boolean(m_active);
  if (m_active) {
    for (Queue* queue : live_queues()) {
      if (!queue) continue;
      std::lock_guard queue_lock(queue->lock);
      Virtqueue::Indices indices = queue->ring.indices();
      out.u16(indices.last_avail);
      out.u16(indices.used_idx);
      out.u16(indices.signalled_used);
      out.boolean(indices.broken);
    }
  }
  out.u32(m_device->state_version().value_or(0));
  hw::StateWriter device;
  m_device->save_state(device);
  out.bytes(device.data());
}

base::ErrorOr<void> TransportCore::load_state(hw::StateReader& in) {
  const std::string what(m_device->name());
  std::lock_guard lock(m_lock);
  uint8_t status = in.u8();
  uint32_t generation = in.u32();
  uint64_t driver_features = in.u64();
  uint16_t queue_select = in.u16();
  uint16_t config_msix = in.u16();
  if (in.u32() != m_queues.size()) in.fail();
  std::vector<QueueRegs> queues(m_queues.size());
  for (QueueRegs& regs : queues) {
    regs.size = in.u32();
    regs.ready = in.boolean();
    regs.desc = in.u64();
    regs.driver = in.u64();
    regs.device = in.u64();
    regs.msix_vector = in.u16();
    if (regs.ready && Virtqueue::check_size(regs.size)) in.fail();
  }
  bool active = in.boolean();
  std::vector<Virtqueue::Indices> indices;
  if (active)
    for (const QueueRegs& regs : queues)
      if (regs.ready) {
        Virtqueue::Indices i;
        i.last_avail = in.u16();
        i.used_idx = in.u16();
        i.signalled_used = in.u16();
        i.broken = in.boolean();
        indices.push_back(i);
      }
  uint32_t device_version = in.u32();
  std::vector<uint8_t> device_bytes = in.bytes(1 << 20);
  if (!in.ok()) return in.finish(what);
  if (!m_device->state_version() || *m_device->state_version() != device_version)
    return base::fail(base::Error(what + ": saved state version " + std::to_string(device_version) +
                                  " is not one this vmlaunch reads"));
  hw::StateReader device_in(device_bytes);
  TRY(m_device->load_state(device_in, device_version));

  m_status.store(status);
  m_generation.store(generation);
  m_driver_features = driver_features;
  m_queue_select = queue_select;
  m_config_msix = config_msix;
  m_queues = std::move(queues);
  if (active) {
    activate();  // maps the rings from the restored RAM and starts the device
    if (!m_active) return base::fail(base::Error(what + ": its queues do not fit the restored RAM"));
    size_t next = 0;
    for (Queue* queue : live_queues()) {
      if (!queue) continue;
      std::lock_guard queue_lock(queue->lock);
      if (next < indices.size()) queue->ring.set_indices(indices[next++]);
    }
    // Requests the guest offered before the snapshot and the device had not taken yet.
    for (uint16_t q = 0; q < m_queues.size(); ++q)
      if (m_queues[q].ready) m_device->notify(q);
  }
  return in.finish(what);
}

}  // namespace hw::virtio
