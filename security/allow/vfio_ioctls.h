// The VFIO ioctls a running machine with a vfio-pci device makes on descriptors opened before
// arming (passthrough/vfio.h): the container, group and device of each passthrough entry.
#pragma once

#include <linux/kvm.h>
#include <linux/vfio.h>

#include "security/allow/allow_list.h"

namespace security {

// vCPU threads: the guest enabling or disabling MSI in the config space (VFIO_DEVICE_SET_IRQS), and
// moving a BAR (its memory slot).
inline void allow_vfio_interrupts(AllowList& list) {
  list.allow_ioctls({VFIO_DEVICE_SET_IRQS}, "vfio-pci: the guest enables or disables MSI");
  list.allow_ioctls({KVM_IRQFD}, "vfio-pci: the MSI eventfd bound to (or unbound from) the guest's message");
  list.allow_ioctls({KVM_SET_USER_MEMORY_REGION},
                    "vfio-pci: an mmapped BAR's memory slot follows the guest moving the BAR or its decoding");
}

// The main thread: a machine's build (reset, DMA map of guest RAM) and teardown (interrupts off,
// DMA unmapped, reset) on every guest reset, and the descriptors' release at the end.
inline void allow_vfio_lifecycle(AllowList& list) {
  list.allow_ioctls({VFIO_DEVICE_SET_IRQS, VFIO_DEVICE_RESET, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA,
                     VFIO_GROUP_UNSET_CONTAINER, KVM_IRQFD},
                    "vfio-pci: reset, DMA map and unmap, interrupts off at a machine's build and teardown");
}

}  // namespace security
