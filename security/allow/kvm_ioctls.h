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
inline constexpr unsigned long kKvmGetMsrs = _IOWR(KVMIO, 0x88, KvmFlexHeader8);
struct KvmXsave4k {
  uint32_t region[1024];
};
inline constexpr unsigned long kKvmGetXsave = _IOR(KVMIO, 0xa4, KvmXsave4k);
inline constexpr unsigned long kKvmSetXsave = _IOW(KVMIO, 0xa5, KvmXsave4k);
inline constexpr unsigned long kKvmGetXsave2 = _IOR(KVMIO, 0xcf, KvmXsave4k);

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

// An x86_64 snapshot (accel/kvm get_state, save_vm_state): every vCPU's and the VM's state read.
inline void allow_kvm_state_read(AllowList& list) {
  list.allow_ioctls({KVM_GET_REGS, KVM_GET_SREGS, kKvmGetXsave, kKvmGetXsave2, KVM_GET_XCRS, KVM_GET_MP_STATE,
                     KVM_GET_LAPIC, KVM_GET_VCPU_EVENTS, KVM_GET_DEBUGREGS, kKvmGetMsrs, kKvmGetMsrIndexList,
                     KVM_CHECK_EXTENSION, KVM_GET_IRQCHIP, KVM_GET_PIT2, KVM_GET_CLOCK, KVM_GET_TSC_KHZ},
                    "KVM: read vCPU and VM state for a snapshot");
}
// `up --restore` on kvm (accel/kvm set_state, load_vm_state): the saved state into the new VM.
inline void allow_kvm_state_write(AllowList& list) {
  list.allow_ioctls({KVM_SET_REGS, KVM_SET_SREGS, kKvmSetXsave, KVM_SET_XCRS, KVM_SET_MP_STATE, KVM_SET_LAPIC,
                     KVM_SET_VCPU_EVENTS, KVM_SET_DEBUGREGS, kKvmSetMsrs, KVM_CHECK_EXTENSION,
                     KVM_SET_IRQCHIP, KVM_SET_PIT2, KVM_SET_CLOCK, KVM_GET_TSC_KHZ, KVM_SET_TSC_KHZ},
                    "KVM: load vCPU and VM state from a snapshot (up --restore)");
}

// The gdb stub on kvm (accel/kvm set_debug, translate): debug registers and single step set before
// each continue (also on the thread that builds a machine after a guest reset), RF read and set
// when continuing from a breakpoint, virtual addresses translated for memory reads and writes.
inline void allow_kvm_debug(AllowList& list) {
  list.allow_ioctls({KVM_SET_GUEST_DEBUG, KVM_GET_REGS, KVM_SET_REGS, KVM_TRANSLATE},
                    "KVM: the debugger's breakpoints, single step and address translation");
}

}  // namespace security
