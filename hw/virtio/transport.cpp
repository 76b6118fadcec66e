#include "hw/virtio/transport.h"

#include <cstdio>

namespace hw::virtio {

TransportCore::TransportCore(std::shared_ptr<VirtioDevice> device, const base::GuestMemory& memory, Log log)
    : m_device(std::move(device)), m_memory(memory), m_log(std::move(log)) {
  m_queues.resize(m_device->num_queues());
}

TransportCore::~TransportCore() {
  std::lock_guard lock(m_lock);
  reset_locked();
}

uint32_t TransportCore::device_features_word(uint32_t select) const {
  uint64_t features = m_device->features() | kFeatureVersion1;
  return select == 0   ? static_cast<uint32_t>(features)
         : select == 1 ? static_cast<uint32_t>(features >> 32)
                       : 0;
}

uint32_t TransportCore::driver_features_word(uint32_t select) const {
  return select == 0   ? static_cast<uint32_t>(m_driver_features)
         : select == 1 ? static_cast<uint32_t>(m_driver_features >> 32)
                       : 0;
}

void TransportCore::write_driver_features_word(uint32_t select, uint32_t value) {
  // Features are fixed once FEATURES_OK was accepted (spec 3.1.1).
  if (m_status.load() & kStatusFeaturesOk) return;
  if (select == 0)
    m_driver_features = (m_driver_features & ~0xffffffffull) | value;
  else if (select == 1)
    m_driver_features = (m_driver_features & 0xffffffffull) | (uint64_t(value) << 32);
}

void TransportCore::write_status(uint8_t value) {
  if (value == 0) {
    reset_locked();
    return;
  }
  uint8_t old = m_status.load();
  // NEEDS_RESET is the device's to set; the driver cannot clear it except by resetting.
  uint8_t next = static_cast<uint8_t>((value & ~kStatusNeedsReset) | (old & kStatusNeedsReset));
  if ((next & kStatusFeaturesOk) && !(old & kStatusFeaturesOk)) {
    uint64_t offered = m_device->features() | kFeatureVersion1;
    if ((m_driver_features & ~offered) || !(m_driver_features & kFeatureVersion1)) next &= ~kStatusFeaturesOk;
  }
  m_status.store(next);
  if ((next & kStatusDriverOk) && !(old & kStatusDriverOk) && !(next & kStatusFailed)) activate();
}

void TransportCore::activate() {
  if (!(m_status.load() & kStatusFeaturesOk)) {
    needs_reset("DRIVER_OK without FEATURES_OK");
    return;
  }
  Virtqueue::Features ring_features{(m_driver_features & kFeatureIndirectDesc) != 0,
                                    (m_driver_features & kFeatureEventIdx) != 0};
  m_live.clear();
  std::vector<Queue*> queues(m_queues.size(), nullptr);
  for (size_t i = 0; i < m_queues.size(); ++i) {
    const QueueRegs& regs = m_queues[i];
    if (!regs.ready) continue;
    auto ring = Virtqueue::create(m_memory, {regs.size, regs.desc, regs.driver, regs.device}, ring_features);
    if (!ring) {
      needs_reset("queue " + std::to_string(i) + ": " + ring.error().message);
      m_live.clear();
      return;
    }
    m_live.push_back(std::make_unique<Queue>(std::move(ring).value()));
    queues[i] = m_live.back().get();
  }
  m_active = true;
  m_device->activate(*this, m_driver_features, std::move(queues));
}

void TransportCore::reset_locked() {
  if (m_active) m_device->reset();
  m_active = false;
  m_live.clear();
  for (QueueRegs& regs : m_queues) regs = QueueRegs{};
  m_driver_features = 0;
  m_queue_select = 0;
  m_config_msix = 0xffff;
  m_status.store(0);
  m_logged.store(false);
}

uint32_t TransportCore::queue_max_size() const {
  return queue_selected_valid() ? std::min<uint32_t>(m_device->queue_max_size(), kMaxQueueSize) : 0;
}

const TransportCore::QueueRegs& TransportCore::queue() const {
  return queue_selected_valid() ? m_queues[m_queue_select] : m_scratch;
}

TransportCore::QueueRegs* TransportCore::writable_queue(const char* what) {
  if (!queue_selected_valid()) return nullptr;  // writes to a queue that does not exist: ignored
  if (m_status.load() & kStatusDriverOk) {
    needs_reset(std::string(what) + " of queue " + std::to_string(m_queue_select) +
                " rewritten after DRIVER_OK");
    return nullptr;
  }
  return &m_queues[m_queue_select];
}

void TransportCore::write_queue_size(uint32_t size) {
  QueueRegs* regs = writable_queue("size");
  if (!regs) return;
  if (auto bad = Virtqueue::check_size(size)) {
    needs_reset(bad->message);
    return;
  }
  if (size > queue_max_size()) {
    needs_reset("queue size " + std::to_string(size) + " above the maximum " +
                std::to_string(queue_max_size()));
    return;
  }
  regs->size = size;
}

void TransportCore::write_queue_ready(bool ready) {
  if (!queue_selected_valid()) return;
  // Writing the value it already has after DRIVER_OK is harmless (some drivers re-read/write).
  if ((m_status.load() & kStatusDriverOk) && m_queues[m_queue_select].ready == ready) return;
  QueueRegs* regs = writable_queue("ready");
  if (!regs) return;
  if (ready && regs->size == 0) regs->size = queue_max_size();
  regs->ready = ready;
}

static void set_half(uint64_t& field, uint64_t value, bool high) {
  if (high)
    field = (field & 0xffffffffull) | (value << 32);
  else
    field = (field & ~0xffffffffull) | (value & 0xffffffffull);
}

void TransportCore::write_queue_desc(uint64_t value, bool high) {
  if (QueueRegs* regs = writable_queue("descriptor address")) set_half(regs->desc, value, high);
}
void TransportCore::write_queue_driver(uint64_t value, bool high) {
  if (QueueRegs* regs = writable_queue("driver ring address")) set_half(regs->driver, value, high);
}
void TransportCore::write_queue_device(uint64_t value, bool high) {
  if (QueueRegs* regs = writable_queue("device ring address")) set_half(regs->device, value, high);
}
void TransportCore::write_queue_msix_vector(uint16_t vector) {
  if (queue_selected_valid()) m_queues[m_queue_select].msix_vector = vector;
}

void TransportCore::notify(uint16_t q) {
  m_kicks.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(m_lock);
  if (!m_active || q >= m_queues.size() || (m_status.load() & kStatusNeedsReset)) return;
  m_device->notify(q);
}

std::vector<std::pair<std::string, uint64_t>> TransportCore::counters() const {
  std::vector<std::pair<std::string, uint64_t>> out{
      {"kicks", m_kicks.load()}, {"interrupts", m_interrupts.load()}, {"driver_faults", m_faults.load()}};
  for (auto& counter : m_device->counters()) out.push_back(std::move(counter));
  return out;
}

void TransportCore::interrupt_queue(uint16_t q) {
  m_interrupts.fetch_add(1, std::memory_order_relaxed);
  if (m_signals.queue) m_signals.queue(q);
}

void TransportCore::interrupt_config() {
  m_interrupts.fetch_add(1, std::memory_order_relaxed);
  m_generation++;
  if (m_signals.config) m_signals.config();
}

void TransportCore::needs_reset(std::string_view why) {
  m_faults++;
  uint8_t old = m_status.fetch_or(kStatusNeedsReset);
  if (!m_logged.exchange(true)) {
    std::string text =
        std::string(m_device->name()) + ": guest error, device needs reset: " + std::string(why);
    if (m_log)
      m_log(text);
    else
      std::fprintf(stderr, "vmlaunch: %s\n", text.c_str());
  }
  // Spec 2.1.2: with DRIVER_OK set, tell the driver through a configuration change notification.
  if ((old & kStatusDriverOk) && !(old & kStatusNeedsReset) && m_signals.config) m_signals.config();
}

}  // namespace hw::virtio
