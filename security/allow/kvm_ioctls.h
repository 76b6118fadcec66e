// KVM ioctl groups shared by the lists that need them (the kvm accelerator's uses, accel/kvm/kvm.cpp).
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "security/allow/allow_list.h"

namespace security {

// The uapi structs behind these requests end in flexible arrays, which C++ sizes differently from
// C, and the request number encodes the size: spelled out with the C layout, as accel/kvm does.
struct KvmFlexHeader8 {
  uint32_t count;
  uint32_t pad;
};
struct KvmFlexHeader4 {
  uint32_t count;
};
inline constexpr unsigned long kKvmGetSupportedCpuid = _IOWR(KVMIO, 0x05, KvmFlexHeader8);
inline constexpr unsigned long kKvmSetCpuid2 = _IOW(KVMIO, 0x90, KvmFlexHeader8);
inline constexpr unsigned long kKvmSetMsrs = _IOW(KVMIO, 0x89, KvmFlexHeader8);
inline constexpr unsigned long kKvmGetMsrIndexList = _IOWR(KVMIO, 0x02, KvmFlexHeader4);
inline constexpr unsigned long kKvmSetGsiRouting = _IOW(KVMIO, 0x6a, KvmFlexHeader8);

// What a running machine asks of KVM from any thread: interrupts into the in-kernel irqchip (device
// emulation on vCPU threads, device threads, the power button) and the split irqchip's routes.
inline void allow_kvm_interrupts(AllowList& list) {
  list.allow_ioctls({KVM_IRQ_LINE, KVM_SIGNAL_MSI, kKvmSetGsiRouting},
                    "KVM: raise and route guest interrupts (device emulation)");
}

// Pausing and resuming a machine (control requests, a pause after a guest panic, the debugger, a
// stop of a paused machine): the guest's kvmclock is saved at pause and put back at resume.
inline void allow_kvm_pause(AllowList& list) {
  list.allow_ioctls({KVM_GET_CLOCK, KVM_SET_CLOCK}, "KVM: stop the guest clock while paused (pause/resume)");
}

}  // namespace security
