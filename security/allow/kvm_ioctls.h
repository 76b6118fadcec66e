// KVM ioctl groups shared by the lists that need them (the kvm accelerator's uses, accel/kvm/kvm.cpp).
#pragma once

#include <linux/kvm.h>

#include "security/allow/allow_list.h"

namespace security {

// What a running machine asks of KVM from any thread: interrupts into the in-kernel irqchip (device
// emulation on vCPU threads, device threads, the power button) and the split irqchip's routes.
inline void allow_kvm_interrupts(AllowList& list) {
  list.allow_ioctls({KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING},
                    "KVM: raise and route guest interrupts (device emulation)");
}

}  // namespace security
