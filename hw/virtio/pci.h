// Modern virtio-pci transport (virtio 1.2 section 4.1): a PCI function 1af4:(1040 + device id) with
// the virtio capabilities (common, notify, ISR, device config) pointing into one memory BAR.
// Interrupts: INTx with the ISR status register (read to acknowledge), plus MSI-X (one vector per
// queue and one for configuration changes, table and PBA in the same BAR) when the machine gives an
// MsiSink. Without a sink (riscv virt: PLIC only) the MSI-X capability is not offered at all.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "hw/device_state.h"
#include "hw/pci/pci_function.h"
#include "hw/virtio/transport.h"

namespace hw::virtio {

class PciTransport : public hw::pci::PciFunction {
 public:
  static constexpr unsigned kBar = 4;           // as QEMU, so guests' expectations about BAR0-3 do not matter
  static constexpr uint64_t kBarSize = 0x4000;  // without MSI-X
  static constexpr uint64_t kMsixBarSize = 0x8000;  // with MSI-X: table and PBA above the registers
  static constexpr uint64_t kCommonOffset = 0x0000, kIsrOffset = 0x1000, kDeviceOffset = 0x2000,
                            kNotifyOffset = 0x3000;
  static constexpr uint32_t kNotifyMultiplier = 4;
  static constexpr uint64_t kMsixTableOffset = 0x4000, kMsixPbaOffset = 0x6000;
  static constexpr unsigned kMaxMsixVectors = 0x2000 / 16;  // what fits below the PBA
  static constexpr uint16_t kNoVector = 0xffff;

  PciTransport(std::string name, std::shared_ptr<VirtioDevice> device, const base::GuestMemory& memory,
               TransportCore::Log log = {}, std::shared_ptr<hw::MsiSink> msi = nullptr);

  TransportCore& core() { return m_core; }
  // The BAR's register window (also what tests drive directly).
  void bar_read(uint64_t offset, std::span<uint8_t> data);
  void bar_write(uint64_t offset, std::span<const uint8_t> data);
  // MSI-X vectors offered (queues + 1), 0 without a sink; and the capability's config offset.
  unsigned msix_vectors() const { return m_msix_vectors; }
  uint8_t msix_capability() const { return m_msix_cap; }

  // Snapshot (pci_state.cpp): ISR, feature selectors, MSI-X vectors, table and pending bits, then
  // the TransportCore. The config space is the PCI host's part (hw/pci/pci_state.cpp), which the
  // machine loads first (the host precedes its functions in the graph).
  std::optional<std::string> cannot_save() const { return m_core.cannot_save(); }
  void quiesce() { m_core.quiesce(); }
  void unquiesce() { m_core.unquiesce(); }
  void save_state(hw::StateWriter& out);
  base::ErrorOr<void> load_state(hw::StateReader& in);

 protected:
  void config_written(uint16_t offset, unsigned size) override;

 private:
  class Window;
  uint32_t common_read(uint64_t offset, unsigned size);
  void common_write(uint64_t offset, unsigned size, uint32_t value);
  void raise(uint8_t bits);
  void queue_signal(uint16_t queue);
  void config_signal();
  // MSI-X: deliver (or leave pending) `vector`; all with m_msix_lock held.
  void msix_notify_locked(uint16_t vector);
  bool msix_masked_locked(uint16_t vector) const;
  void msix_flush_pending_locked();
  void msix_read(uint64_t offset, std::span<uint8_t> data);
  void msix_write(uint64_t offset, std::span<const uint8_t> data);
  void reset_vectors();

  TransportCore m_core;
  std::mutex m_isr_lock;
  uint8_t m_isr = 0;
  uint32_t m_device_features_select = 0;
  uint32_t m_driver_features_select = 0;

  std::shared_ptr<hw::MsiSink> m_msi;
  unsigned m_msix_vectors = 0;
  uint8_t m_msix_cap = 0;
  // Vector numbers per queue and for config changes: atomics because interrupts come from backend
  // threads while the guest rewrites them under the core's lock.
  std::unique_ptr<std::atomic<uint16_t>[]> m_queue_vector;
  std::atomic<uint16_t> m_config_vector{kNoVector};
  std::mutex m_msix_lock;             // the table, pending bits and the cached control bits
  std::vector<uint8_t> m_msix_table;  // 16 bytes per vector, as the guest sees it
  std::vector<uint64_t> m_msix_pending;
  bool m_msix_enabled = false, m_msix_function_masked = false;
};

// What the machine holds of a virtio-pci function: its snapshot state under the graph's device id.
// Never mapped itself (the PCI host maps the function's BAR); reads and writes do nothing.
class PciTransportPart final : public hw::Device, public hw::DeviceState {
 public:
  explicit PciTransportPart(std::shared_ptr<PciTransport> function) : m_function(std::move(function)) {}
  std::string_view name() const override { return m_function->name(); }
  void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0xff); }
  void write(uint64_t, std::span<const uint8_t>) override {}

  uint32_t state_version() const override { return 1; }
  std::optional<std::string> cannot_save() const override { return m_function->cannot_save(); }
  void quiesce() override { m_function->quiesce(); }
  void unquiesce() override { m_function->unquiesce(); }
  void save_state(hw::StateWriter& out) override { m_function->save_state(out); }
  base::ErrorOr<void> load_state(hw::StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, m_function->name()));
    return m_function->load_state(in);
  }

 private:
  std::shared_ptr<PciTransport> m_function;
};

// PCI ids and class for a virtio device id.
hw::pci::FunctionIds virtio_pci_ids(uint16_t device_id);

}  // namespace hw::virtio
