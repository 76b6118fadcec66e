// vfio-pci: a host PCI function handed to the guest through VFIO (passthrough/vfio.h).
//
// What the guest sees is a PciFunction of our own, sitting where `plan` puts it:
// - the host function's ids, class and BAR layout (sizes, I/O or memory, 64-bit, prefetchable);
//   the guest (or our firmware-style assignment) places the BARs anywhere. A memory BAR VFIO lets
//   us mmap whole (passthrough/vfio.h) is put into the guest's memory map where the guest placed it
//   (a KVM memory slot, moved with the BAR): its accesses make no exits. Every other BAR, or one
//   the slot cannot take (over RAM, say), is trapped and forwarded to the host BAR through the VFIO
//   device descriptor (pread/pwrite), and so is a BAR with sparse mmap areas (the MSI-X table's);
// - a capability list of one MSI capability (one vector, 64-bit) and, where the host function has
//   one, its MSI-X capability (same vector count, table and PBA where the host has them), emulated;
//   its vendor-specific capabilities are copied read-only (virtio-pci's structures are found
//   through them); the rest of the host's list (PCIe, power management) is filtered out.
//   The MSI-X table and PBA are ours (hw/pci/msix.h): the BAR holding them is trapped, the rest of
//   it forwarded to the host BAR. Each vector has an eventfd VFIO signals, bound (KVM irqfd) to
//   the vector's message while it is unmasked; a masked vector's signal sets its pending bit and
//   is sent when the guest unmasks it;
// - the host's expansion ROM (when VFIO can read one), read-only and trapped, where the guest maps it;
// - the command register's I/O, memory and bus-master bits forwarded to the host function (bus
//   mastering must be on for DMA and MSI).
// DMA: all of guest RAM is mapped in the function's IOMMU domain at I/O address = guest-physical
// address, so the driver in the guest programs guest-physical addresses, as on bare metal.
// MSI: when the guest enables it, VFIO signals an eventfd for the host vector, which the machine
// binds to the guest's message (KVM irqfd on pc: no VMM thread in between); re-aimed when the guest
// reprograms address or data. Where the machine cannot bind it, a device-io thread reads the
// eventfd and sends the message through the MsiSink.
// INTx (while MSI is off, as on the host: VFIO has one interrupt type at a time): VFIO signals an
// eventfd when the host INTx fires, masking it; KVM irqfd with resample asserts the IOAPIC pin the
// graph gives the slot, and the guest's EOI deasserts it and signals the resample eventfd, on which
// VFIO unmasks the host INTx. No VMM thread in between. Only where the machine can bind it (pc
// with the in-kernel irqchip); elsewhere the pin reads as the graph's but no INTx is delivered.
// Reset: the host function is reset when the model is built and when it is destroyed, its MSI
// disabled and its DMA mappings removed, so the next machine (or a host driver) gets it clean.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "base/guest_memory.h"
#include "base/result.h"
#include "hw/device.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci_function.h"

namespace passthrough {
class VfioDevice;
}

namespace hw::pci {

class VfioPciFunction : public PciFunction {
 public:
  // Resets `device`, maps guest RAM for its DMA, defines the BARs and the MSI capability and starts
  // the MSI forwarder. `msi` may be null (no MSI capability is offered then).
  // `intx` (may be null) is the line of the function's interrupt pin.
  static base::ErrorOr<std::shared_ptr<VfioPciFunction>> create(
      std::string name, std::shared_ptr<passthrough::VfioDevice> device, const base::GuestMemory& memory,
      std::shared_ptr<MsiSink> msi, std::shared_ptr<IrqLine> intx = nullptr,
      std::shared_ptr<DirectMapper> direct = nullptr);
  ~VfioPciFunction() override;

  uint8_t msi_capability() const { return m_msi_cap; }    // 0 when none is offered
  uint8_t msix_capability() const { return m_msix_cap; }  // 0 when none is offered

 protected:
  void config_written(uint16_t offset, unsigned size) override;
  void bar_moved(unsigned index, std::optional<uint64_t> address) override;
  void forward_command();  // the guest's command register bits the host function must follow

 private:
  VfioPciFunction(std::string name, const FunctionIds& ids, std::shared_ptr<passthrough::VfioDevice> device,
                  std::shared_ptr<MsiSink> msi);
  void update_msi();
  // MSI-X: the capability's control or vector `changed`'s table entry was written.
  void update_msix(std::optional<unsigned> changed);
  void bind_msix_vector_locked(unsigned vector);
  void forward_msi();
  // INTx through VFIO and the machine's line, on or off (m_msi_lock held, or before any vCPU runs).
  bool enable_intx_locked();
  void disable_intx_locked();

  std::shared_ptr<passthrough::VfioDevice> m_device;
  std::shared_ptr<MsiSink> m_msi;
  uint8_t m_msi_cap = 0;
  std::mutex m_msi_lock;       // the MSI state below, against concurrent config writes
  bool m_msi_enabled = false;  // as last given to VFIO
  // The eventfd is bound to the guest's message in the accelerator (KVM irqfd): the forwarder
  // thread leaves it alone.
  std::atomic<bool> m_msi_irqfd{false};
  int m_msi_event = -1, m_stop_event = -1;
  std::thread m_forwarder;
  std::atomic<uint64_t> m_msi_count{0};
  // MSI-X: the guest's table (ours, never the host's), one eventfd a vector VFIO signals, and
  // which of them are bound to their message in the accelerator now (m_msi_lock).
  uint8_t m_msix_cap = 0;
  MsixLayout m_msix_layout;
  std::shared_ptr<MsixTable> m_msix;
  std::vector<int> m_msix_events;
  std::vector<uint8_t> m_msix_irqfd;
  bool m_msix_enabled = false;  // as last given to VFIO
  std::shared_ptr<IrqLine> m_intx;
  int m_intx_event = -1, m_intx_resample = -1;  // -1: the function offers no INTx
  bool m_intx_enabled = false;                  // VFIO signals m_intx_event, bound to the line
  std::shared_ptr<DirectMapper> m_direct;
  std::array<std::optional<uint32_t>, 6> m_direct_ids{};  // BARs in the guest's memory map now
};

}  // namespace hw::pci
