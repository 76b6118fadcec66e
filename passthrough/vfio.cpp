#include "passthrough/vfio.h"

#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace passthrough {
namespace {

base::Error os_error(const std::string& what) {
  return base::Error(what + ": " + std::strerror(errno));
}

}  // namespace

base::ErrorOr<std::unique_ptr<VfioDevice>> VfioDevice::open(const std::string& bdf, const std::string& root) {
  std::unique_ptr<VfioDevice> d(new VfioDevice());
  d->m_bdf = bdf;
  // sysfs and VFIO spell addresses in lower case; a file may not.
  std::transform(d->m_bdf.begin(), d->m_bdf.end(), d->m_bdf.begin(), ::tolower);
  if (d->m_bdf.find('/') != std::string::npos) return base::fail(base::Error(bdf + ": not a PCI address"));
  std::error_code ec;
  auto group_link =
      std::filesystem::read_symlink(root + "/sys/bus/pci/devices/" + d->m_bdf + "/iommu_group", ec);
  if (ec) return base::fail(base::Error(bdf + ": no IOMMU group (no such device, or no IOMMU)"));
  const std::string group_path = root + "/dev/vfio/" + group_link.filename().string();

  d->m_container = ::open((root + "/dev/vfio/vfio").c_str(), O_RDWR | O_CLOEXEC);
  if (d->m_container < 0) return base::fail(os_error("opening " + root + "/dev/vfio/vfio"));
  if (::ioctl(d->m_container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
    return base::fail(base::Error("/dev/vfio/vfio speaks another VFIO API version"));
  if (::ioctl(d->m_container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1 &&
      ::ioctl(d->m_container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) != 1)
    return base::fail(base::Error("the kernel offers no type1 IOMMU for VFIO (modprobe vfio_iommu_type1)"));

  d->m_group = ::open(group_path.c_str(), O_RDWR | O_CLOEXEC);
  if (d->m_group < 0)
    return base::fail(errno == EBUSY ? base::Error("opening " + group_path +
                                                   ": busy (another process, such as a running machine, "
                                                   "holds the device's IOMMU group)")
                                     : os_error("opening " + group_path));
  vfio_group_status status{};
  status.argsz = sizeof status;
  // VFIO ioctls below take kernel structs sized by argsz; each is filled before the call.
  if (::ioctl(d->m_group, VFIO_GROUP_GET_STATUS, &status) != 0)
    return base::fail(os_error("VFIO_GROUP_GET_STATUS"));
  if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
    return base::fail(base::Error(group_path +
                                  ": not viable (another device of the IOMMU group is bound to a "
                                  "host driver; bind it to vfio-pci or pci-stub)"));
  if (::ioctl(d->m_group, VFIO_GROUP_SET_CONTAINER, &d->m_container) != 0)
    return base::fail(os_error("VFIO_GROUP_SET_CONTAINER"));
  unsigned long type = ::ioctl(d->m_container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1
                           ? VFIO_TYPE1v2_IOMMU
                           : VFIO_TYPE1_IOMMU;
  if (::ioctl(d->m_container, VFIO_SET_IOMMU, type) != 0) return base::fail(os_error("VFIO_SET_IOMMU"));
  d->m_device = ::ioctl(d->m_group, VFIO_GROUP_GET_DEVICE_FD, d->m_bdf.c_str());
  if (d->m_device < 0) return base::fail(os_error("VFIO_GROUP_GET_DEVICE_FD " + bdf));

  vfio_device_info info{};
  info.argsz = sizeof info;
  if (::ioctl(d->m_device, VFIO_DEVICE_GET_INFO, &info) != 0)
    return base::fail(os_error("VFIO_DEVICE_GET_INFO"));
  if (!(info.flags & VFIO_DEVICE_FLAGS_PCI))
    return base::fail(base::Error(bdf + ": not a PCI device for VFIO"));
  d->m_can_reset = info.flags & VFIO_DEVICE_FLAGS_RESET;
  for (unsigned i = 0; i < std::min<unsigned>(info.num_regions, VFIO_PCI_NUM_REGIONS); ++i) {
    vfio_region_info r{};
    r.argsz = sizeof r;
    r.index = i;
    VfioRegion region;
    if (::ioctl(d->m_device, VFIO_DEVICE_GET_REGION_INFO, &r) == 0) {
      region.size = r.size;
      region.offset = r.offset;
      region.readable = r.flags & VFIO_REGION_INFO_FLAG_READ;
      region.writable = r.flags & VFIO_REGION_INFO_FLAG_WRITE;
      region.mmappable = r.flags & VFIO_REGION_INFO_FLAG_MMAP;
      region.has_caps = r.flags & VFIO_REGION_INFO_FLAG_CAPS;
    }
    // BARs wholly mappable, in whole pages: mapped now, before the VMM is confined, for the model
    // to put into the guest's memory map (a failure leaves the BAR trapped).
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    if (i < kVfioBarCount && region.mmappable && !region.has_caps && region.size != 0 &&
        region.size % page == 0 && region.readable && region.writable) {
      void* at = ::mmap(nullptr, region.size, PROT_READ | PROT_WRITE, MAP_SHARED, d->m_device,
                        static_cast<off_t>(region.offset));
      if (at != MAP_FAILED) region.mapped = at;
    }
    d->m_regions.push_back(region);
  }
  if (d->m_regions.size() <= kVfioConfigRegion)
    return base::fail(base::Error(bdf + ": VFIO lists no config space"));
  for (unsigned i = 0; i < std::min<unsigned>(info.num_irqs, VFIO_PCI_NUM_IRQS); ++i) {
    vfio_irq_info irq{};
    irq.argsz = sizeof irq;
    irq.index = i;
    d->m_irq_counts.push_back(::ioctl(d->m_device, VFIO_DEVICE_GET_IRQ_INFO, &irq) == 0 ? irq.count : 0);
  }
  if (auto reset = d->reset(); !reset.ok()) return base::fail(reset.error());
  return d;
}

VfioDevice::~VfioDevice() {
  if (m_device >= 0) {
    for (unsigned index : m_enabled_irqs) (void)set_irq_eventfds(index, {});
    (void)reset();
  }
  unmap_all_dma();
  for (VfioRegion& r : m_regions)
    if (r.mapped) ::munmap(r.mapped, r.size);
  if (m_device >= 0) ::close(m_device);
  if (m_group >= 0) {
    ::ioctl(m_group, VFIO_GROUP_UNSET_CONTAINER);
    ::close(m_group);
  }
  if (m_container >= 0) ::close(m_container);
}

void VfioDevice::unmap_all_dma() {
  for (const auto& [iova, size] : m_dma) {
    vfio_iommu_type1_dma_unmap unmap{};
    unmap.argsz = sizeof unmap;
    unmap.iova = iova;
    unmap.size = size;
    ::ioctl(m_container, VFIO_IOMMU_UNMAP_DMA, &unmap);
  }
  m_dma.clear();
}

unsigned VfioDevice::irq_count(unsigned irq_index) const {
  return irq_index < m_irq_counts.size() ? m_irq_counts[irq_index] : 0;
}

bool VfioDevice::read(unsigned index, uint64_t offset, std::span<uint8_t> data) const {
  if (index >= m_regions.size()) return false;
  const VfioRegion& r = m_regions[index];
  if (!r.readable || offset > r.size || data.size() > r.size - offset) return false;
  return ::pread(m_device, data.data(), data.size(), static_cast<off_t>(r.offset + offset)) ==
         static_cast<ssize_t>(data.size());
}

bool VfioDevice::write(unsigned index, uint64_t offset, std::span<const uint8_t> data) const {
  if (index >= m_regions.size()) return false;
  const VfioRegion& r = m_regions[index];
  if (!r.writable || offset > r.size || data.size() > r.size - offset) return false;
  return ::pwrite(m_device, data.data(), data.size(), static_cast<off_t>(r.offset + offset)) ==
         static_cast<ssize_t>(data.size());
}

base::ErrorOr<void> VfioDevice::map_dma(uint64_t iova, void* host, uint64_t size) {
  vfio_iommu_type1_dma_map map{};
  map.argsz = sizeof map;
  map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  map.vaddr = reinterpret_cast<uint64_t>(host);
  map.iova = iova;
  map.size = size;
  if (::ioctl(m_container, VFIO_IOMMU_MAP_DMA, &map) != 0)
    return base::fail(errno == ENOMEM ? base::Error("VFIO_IOMMU_MAP_DMA of " + std::to_string(size >> 20) +
                                                    " MiB: cannot pin it (RLIMIT_MEMLOCK too low?)")
                                      : os_error("VFIO_IOMMU_MAP_DMA"));
  m_dma.emplace_back(iova, size);
  return {};
}

base::ErrorOr<void> VfioDevice::set_irq_eventfds(unsigned irq_index, std::span<const int> eventfds) {
  std::vector<uint8_t> buffer(sizeof(vfio_irq_set) + eventfds.size() * sizeof(int32_t));
  auto* set = reinterpret_cast<vfio_irq_set*>(buffer.data());  // the kernel's header + int32 array
  set->argsz = static_cast<uint32_t>(buffer.size());
  set->index = irq_index;
  set->start = 0;
  set->count = static_cast<uint32_t>(eventfds.size());
  if (eventfds.empty()) {
    set->flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
  } else {
    set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    for (size_t i = 0; i < eventfds.size(); ++i) {
      int32_t fd = eventfds[i];
      std::memcpy(set->data + i * sizeof fd, &fd, sizeof fd);
    }
  }
  if (::ioctl(m_device, VFIO_DEVICE_SET_IRQS, set) != 0) return base::fail(os_error("VFIO_DEVICE_SET_IRQS"));
  auto it = std::find(m_enabled_irqs.begin(), m_enabled_irqs.end(), irq_index);
  if (eventfds.empty() && it != m_enabled_irqs.end()) m_enabled_irqs.erase(it);
  if (!eventfds.empty() && it == m_enabled_irqs.end()) m_enabled_irqs.push_back(irq_index);
  return {};
}

base::ErrorOr<void> VfioDevice::set_irq_unmask_eventfd(unsigned irq_index, int eventfd) {
  alignas(vfio_irq_set) uint8_t buffer[sizeof(vfio_irq_set) + sizeof(int32_t)] = {};
  auto* set = reinterpret_cast<vfio_irq_set*>(buffer);  // the kernel's header + one int32
  set->argsz = sizeof buffer;
  set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK;
  set->index = irq_index;
  set->start = 0;
  set->count = 1;
  int32_t fd = eventfd;
  std::memcpy(set->data, &fd, sizeof fd);
  if (::ioctl(m_device, VFIO_DEVICE_SET_IRQS, set) != 0)
    return base::fail(os_error("VFIO_DEVICE_SET_IRQS (unmask eventfd)"));
  return {};
}

base::ErrorOr<void> VfioDevice::reset() {
  if (!m_can_reset) return {};  // edu and many others have no FLR: nothing to do
  if (::ioctl(m_device, VFIO_DEVICE_RESET) != 0) return base::fail(os_error("VFIO_DEVICE_RESET"));
  return {};
}

}  // namespace passthrough
