// TransportCore: the register-level state machine both virtio transports share (features,
// status, queue registers, DRIVER_OK activation, reset, DEVICE_NEEDS_RESET). virtio-mmio and
// virtio-pci only map their register layouts onto it and deliver interrupts their own way.
//
// Guest rules enforced here (each breaks only this device: DEVICE_NEEDS_RESET, logged once):
//   - queue size not a power of two, above 32768 or above the device's maximum;
//   - queue registers written after DRIVER_OK;
//   - rings misaligned or outside RAM at DRIVER_OK (Virtqueue::create).
// FEATURES_OK is refused (status bit stays clear) if the driver asks for features the device did
// not offer or omits VIRTIO_F_VERSION_1 (we are a modern-only device).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

class TransportCore : public DeviceHost {
 public:
  struct QueueRegs {
    uint32_t size = 0;
    bool ready = false;
    uint64_t desc = 0, driver = 0, device = 0;
    uint16_t msix_vector = 0xffff;  // virtio-pci only
  };
  // How the concrete transport raises interrupts (ISR + line, or MSI-X).
  struct Signals {
    std::function<void(uint16_t queue)> queue;
    std::function<void()> config;
  };
  using Log = std::function<void(std::string_view)>;

  TransportCore(std::shared_ptr<VirtioDevice> device, const base::GuestMemory& memory, Log log);
  ~TransportCore() override;
  void set_signals(Signals signals) { m_signals = std::move(signals); }

  VirtioDevice& device() { return *m_device; }
  std::mutex& lock() { return m_lock; }  // the transport holds it around register accesses

  // Register operations; the caller holds lock().
  uint32_t device_features_word(uint32_t select) const;
  void write_driver_features_word(uint32_t select, uint32_t value);
  uint32_t driver_features_word(uint32_t select) const;
  uint8_t status() const { return m_status.load(); }
  void write_status(uint8_t value);
  uint32_t config_generation() const { return m_generation.load(); }

  uint16_t queue_select() const { return m_queue_select; }
  void select_queue(uint16_t q) { m_queue_select = q; }
  bool queue_selected_valid() const { return m_queue_select < m_queues.size(); }
  uint32_t queue_max_size() const;  // 0 for a queue the device does not have
  // The selected queue's registers (a scratch copy when the selection is invalid).
  const QueueRegs& queue() const;
  // Queue register writes: refused with needs_reset after DRIVER_OK, size checked.
  void write_queue_size(uint32_t size);
  void write_queue_ready(bool ready);
  void write_queue_desc(uint64_t value, bool high);
  void write_queue_driver(uint64_t value, bool high);
  void write_queue_device(uint64_t value, bool high);
  void write_queue_msix_vector(uint16_t vector);
  uint16_t config_msix_vector() const { return m_config_msix; }
  void write_config_msix_vector(uint16_t vector) { m_config_msix = vector; }
  uint16_t queue_msix_vector(uint16_t q) const {
    return q < m_queues.size() ? m_queues[q].msix_vector : 0xffff;
  }

  // A driver kick: forwarded to the device after DRIVER_OK, ignored otherwise. Takes lock().
  void notify(uint16_t q);

  // Counts guest rule violations (for logs and tests).
  uint64_t faults() const { return m_faults.load(); }
  // For query-stats: driver kicks (notifications), interrupts raised (queue and config), and the
  // device's own counters.
  std::vector<std::pair<std::string, uint64_t>> counters() const;

  // Snapshot (transport_state.cpp). quiesce() lets the device finish its in-flight requests and stop
  // (VirtioDevice::reset) while the queues stay; unquiesce() activates it again on the same queues
  // and looks at every queue once (the guest may have kicked while it was stopped).
  std::optional<std::string> cannot_save() const;
  void quiesce();
  void unquiesce();
  void save_state(hw::StateWriter& out);
  // Into a freshly built transport, guest RAM already restored (the rings are mapped again from it).
  base::ErrorOr<void> load_state(hw::StateReader& in);

  // DeviceHost
  const base::GuestMemory& memory() const override { return m_memory; }
  void interrupt_queue(uint16_t q) override;
  void interrupt_config() override;
  void needs_reset(std::string_view why) override;

 private:
  QueueRegs* writable_queue(const char* what);
  void activate();
  void reset_locked();

  std::shared_ptr<VirtioDevice> m_device;
  const base::GuestMemory& m_memory;
  Log m_log;
  Signals m_signals;
  std::mutex m_lock;
  std::atomic<uint8_t> m_status{0};
  std::atomic<uint32_t> m_generation{0};
  std::atomic<uint64_t> m_faults{0};
  std::atomic<uint64_t> m_kicks{0};
  std::atomic<uint64_t> m_interrupts{0};
  std::atomic<bool> m_logged{false};
  uint64_t m_driver_features = 0;
  uint16_t m_queue_select = 0;
  uint16_t m_config_msix = 0xffff;
  std::vector<QueueRegs> m_queues;
  QueueRegs m_scratch;
  std::vector<std::unique_ptr<Queue>> m_live;  // the rings while DRIVER_OK
  bool m_active = false;
  bool m_quiesced = false;
  std::vector<Queue*> live_queues() const;
};

}  // namespace hw::virtio
