// Modern virtio-pci transport (virtio 1.2 section 4.1): a PCI function 1af4:(1040 + device id) with
// the virtio capabilities (common, notify, ISR, device config) pointing into one 16 KiB memory BAR.
// Interrupts are INTx with the ISR status register (read to acknowledge). MSI-X is not offered:
// the accelerator interface has no MSI delivery yet, and Linux falls back to INTx without the
// capability.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "hw/pci/pci_function.h"
#include "hw/virtio/transport.h"

namespace hw::virtio {

class PciTransport : public hw::pci::PciFunction {
 public:
  static constexpr unsigned kBar = 4;  // as QEMU, so guests' expectations about BAR0-3 do not matter
  static constexpr uint64_t kBarSize = 0x4000;
  static constexpr uint64_t kCommonOffset = 0x0000, kIsrOffset = 0x1000, kDeviceOffset = 0x2000,
                            kNotifyOffset = 0x3000;
  static constexpr uint32_t kNotifyMultiplier = 4;

  PciTransport(std::string name, std::shared_ptr<VirtioDevice> device, const base::GuestMemory& memory,
               TransportCore::Log log = {});

  TransportCore& core() { return m_core; }
  // The BAR's register window (also what tests drive directly).
  void bar_read(uint64_t offset, std::span<uint8_t> data);
  void bar_write(uint64_t offset, std::span<const uint8_t> data);

 private:
  class Window;
  uint32_t common_read(uint64_t offset, unsigned size);
  void common_write(uint64_t offset, unsigned size, uint32_t value);
  void raise(uint8_t bits);

  TransportCore m_core;
  std::mutex m_isr_lock;
  uint8_t m_isr = 0;
  uint32_t m_device_features_select = 0;
  uint32_t m_driver_features_select = 0;
};

// PCI ids and class for a virtio device id.
hw::pci::FunctionIds virtio_pci_ids(uint16_t device_id);

}  // namespace hw::virtio
