// virtio-mmio transport, version 2 (virtio 1.2 section 4.2.2): one register window per device,
// one level-triggered interrupt line with InterruptStatus/InterruptACK.
#pragma once

#include <memory>
#include <mutex>

#include "hw/device.h"
#include "hw/device_state.h"
#include "hw/virtio/transport.h"

namespace hw::virtio {

class MmioTransport : public hw::Device, public hw::DeviceState {
 public:
  static constexpr uint64_t kWindowSize = 0x200;   // registers + device config (fits every stride)
  static constexpr uint32_t kMagic = 0x74726976;   // "virt"
  static constexpr uint32_t kVendor = 0x4c4d5676;  // "vVML"
  static constexpr uint32_t kIsrUsed = 1;
  static constexpr uint32_t kIsrConfig = 2;

  // `irq` may be null (no interrupt wired: the driver must poll).
  MmioTransport(std::string name, std::shared_ptr<VirtioDevice> device, const base::GuestMemory& memory,
                std::shared_ptr<hw::IrqLine> irq, TransportCore::Log log = {});

  std::string_view name() const override { return m_name; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  TransportCore& core() { return m_core; }
  uint32_t interrupt_status() const { return m_isr.load(); }

  // Snapshot (transport_state.cpp): the interrupt status, feature selectors and the TransportCore.
  uint32_t state_version() const override { return 1; }
  std::optional<std::string> cannot_save() const override { return m_core.cannot_save(); }
  void quiesce() override { m_core.quiesce(); }
  void unquiesce() override { m_core.unquiesce(); }
  void save_state(hw::StateWriter& out) override;
  base::ErrorOr<void> load_state(hw::StateReader& in, uint32_t version) override;

 private:
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void raise(uint32_t bits);

  std::string m_name;
  TransportCore m_core;
  std::shared_ptr<hw::IrqLine> m_irq;
  void set_level(bool level) {
    if (m_irq) m_irq->set_level(level);
  }
  std::mutex m_irq_lock;
  std::atomic<uint32_t> m_isr{0};
  uint32_t m_device_features_select = 0;
  uint32_t m_driver_features_select = 0;
};

}  // namespace hw::virtio
