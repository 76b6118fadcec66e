// VFIO (type1 IOMMU) for one PCI function: the container, the function's IOMMU group, and the
// device's regions and interrupts, as the kernel's VFIO API gives them. The vfio-pci device model
// (hw/pci/vfio_pci) drives a VfioDevice; everything here opens its descriptors up front, so a
// confined VMM only needs ioctl/pread/pwrite/read on them later.
//
// Ownership: a VfioDevice owns its container, group and device descriptors. Destroying it disables
// every interrupt, unmaps every DMA mapping, resets the function and closes all three, so the next
// machine (or the host driver) finds the function as after a reset.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace passthrough {

// The PCI regions VFIO numbers: BAR0..BAR5, the ROM, config space.
inline constexpr unsigned kVfioBarCount = 6, kVfioRomRegion = 6, kVfioConfigRegion = 7;
inline constexpr unsigned kVfioIrqIntx = 0, kVfioIrqMsi = 1, kVfioIrqMsix = 2;

struct VfioRegion {
  uint64_t size = 0;
  uint64_t offset = 0;  // where the region sits in the device descriptor's file offsets
  bool readable = false, writable = false, mmappable = false;
  // The region has capabilities, such as sparse mmap areas around an MSI-X table: not mapped
  // whole, so it stays trapped (the MSI-X table and PBA with it).
  bool has_caps = false;
  void* mapped = nullptr;  // the whole region mmapped (open() does it where it may), else null
};

class VfioDevice {
 public:
  // Opens /dev/vfio/vfio and the group of PCI function `bdf` (under `root`, "" for the real host),
  // sets the type1 IOMMU, gets the device and resets it. Errors name the file and the cause
  // (EBUSY: another process, such as another machine, has the group).
  static base::ErrorOr<std::unique_ptr<VfioDevice>> open(const std::string& bdf,
                                                         const std::string& root = "");
  ~VfioDevice();
  VfioDevice(const VfioDevice&) = delete;
  VfioDevice& operator=(const VfioDevice&) = delete;

  const std::string& bdf() const { return m_bdf; }
  const VfioRegion& region(unsigned index) const { return m_regions.at(index); }
  unsigned irq_count(unsigned irq_index) const;  // vectors VFIO offers for INTx/MSI/MSI-X
  bool can_reset() const { return m_can_reset; }

  // Reads/writes `data.size()` bytes at `offset` of region `index`; false when outside the region
  // or the kernel refuses (the caller treats the access as failed, all-ones on reads).
  bool read(unsigned index, uint64_t offset, std::span<uint8_t> data) const;
  bool write(unsigned index, uint64_t offset, std::span<const uint8_t> data) const;

  // Lets the device DMA to [host, host+size) at I/O address `iova` (guest-physical for a guest's
  // RAM). Pins the pages (RLIMIT_MEMLOCK). Mappings are undone by the destructor.
  base::ErrorOr<void> map_dma(uint64_t iova, void* host, uint64_t size);
  // Undoes every map_dma (a machine's teardown: the next machine maps its own RAM).
  void unmap_all_dma();

  // Signals vectors [0, eventfds.size()) of `irq_index` (kVfioIrqMsi, ...) on the eventfds; an
  // empty list disables them.
  base::ErrorOr<void> set_irq_eventfds(unsigned irq_index, std::span<const int> eventfds);

  // INTx only: VFIO masks the host INTx each time it fires (it is level-triggered and shared with
  // the host); a signal of `eventfd` unmasks it (the guest's EOI through KVM's resample eventfd).
  // Undone with the trigger (set_irq_eventfds(kVfioIrqIntx, {})).
  base::ErrorOr<void> set_irq_unmask_eventfd(unsigned irq_index, int eventfd);

  base::ErrorOr<void> reset();

 private:
  VfioDevice() = default;
  std::string m_bdf;
  int m_container = -1, m_group = -1, m_device = -1;
  std::vector<VfioRegion> m_regions;
  std::vector<unsigned> m_irq_counts;
  std::vector<std::pair<uint64_t, uint64_t>> m_dma;  // (iova, size)
  std::vector<unsigned> m_enabled_irqs;
  bool m_can_reset = false;
};

}  // namespace passthrough
