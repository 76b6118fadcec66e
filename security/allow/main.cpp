// The main thread owns the controller: it builds the machine once before the filters are armed and
// again after every guest reset, waits for the machine to stop and tears it down (state files,
// sockets, the terminal). What a rebuild needs is here; what only the first build needs (opening
// images, /dev/kvm, loading the LLVM tier) happened before arming.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"
#include "security/allow/usbfs_ioctls.h"
#include "security/allow/vfio_ioctls.h"

namespace security {

void allow_main(AllowList& list, const PolicyContext&) {
  allow_thread_start(list);
  list.allow("memfd_create", "guest RAM is a sealed memfd, made anew on every reset");
  list.allow("ftruncate", "sizing the guest RAM memfd");
  list.allow("fcntl",
             "sealing the guest RAM memfd, duplicating the kept /dev/kvm descriptor, descriptor flags "
             "(no fcntl command opens anything)");
  list.allow("access", "a rebuild checks its boot files exist before reading them");
  list.allow("faccessat", "as access");
  list.allow("faccessat2", "as access");
  list.allow("dup", "the kept /dev/kvm descriptor per VM");
  // A reboot reads the kernel, initrd and firmware again. Read-only: no O_WRONLY, O_RDWR, O_CREAT,
  // O_TRUNC (masked to zero).
  list.allow_if("openat", {SCMP_A2(SCMP_CMP_MASKED_EQ, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC, 0)},
                "reboot: read the boot images again (read-only)");
  list.allow("read", "boot images, eventfds");
  list.allow("pread64", "boot images");
  list.allow("fstat", "boot image sizes");
  list.allow("newfstatat", "glibc's fstat");
  list.allow("lseek", "boot image sizes");
  list.allow_ioctls({KVM_CREATE_VM, KVM_GET_VCPU_MMAP_SIZE, KVM_GET_API_VERSION, KVM_CHECK_EXTENSION,
                     kKvmGetSupportedCpuid, kKvmGetMsrIndexList},
                    "KVM (system fd): a new VM on reset");
  list.allow_ioctls({KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, KVM_ENABLE_CAP, KVM_CREATE_IRQCHIP,
                     KVM_CREATE_PIT2, KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU},
                    "KVM (VM fd): set the new VM up");
  list.allow_ioctls({kKvmSetCpuid2, kKvmSetMsrs, KVM_SET_FPU, KVM_SET_REGS, KVM_SET_SREGS, KVM_GET_SREGS,
                     KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_SET_SIGNAL_MASK},
                    "KVM (vCPU fd): boot state of the new vCPUs");
  allow_kvm_interrupts(list);
  allow_kvm_state_write(list);  // up --restore loads the snapshot into the first machine
  allow_kvm_debug(list);        // a machine rebuilt on reset gets the gdb stub's breakpoints
  allow_vfio_lifecycle(list);
  allow_usbfs_transfers(list);  // teardown: in-flight transfers cancelled and reaped, interfaces released
  list.allow("io_uring_setup", "a rebuilt virtio-blk with the io_uring backend gets its ring");
  list.allow("io_uring_register", "liburing registers the ring");
  list.allow("eventfd2", "device wake-ups (io_uring completions, vhost-user calls) of a rebuilt machine");
  list.allow("rt_sigaction", "the vCPU kick handler (installed once; harmless again)");
  list.allow("unlink", "the control and console sockets are removed when the machine stops");
  list.allow("unlinkat", "as unlink, on glibc's unlinkat path");
  list.allow("rename", "exit.json is written to a file opened before arming and renamed into place");
  list.allow("renameat", "as rename");
  list.allow("renameat2", "as rename");
  list.allow("fsync", "state files reach the disk before they are renamed into place");
  // The foreground `up` removes its state directory at the end, under the machine's name lock
  // (vmm/state_dir.cpp): the lock file is opened read-write, created if missing, never truncated.
  list.allow_if(
      "openat",
      {SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_EXCL, O_RDWR | O_CREAT)},
      "the name lock file (read-write, created, never truncated)");
  list.allow("flock", "the name lock");
  list.allow("getdents64", "removing the state directory");
  list.allow("rmdir", "removing the state directory");
  list.allow_ioctls({TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ}, "the terminal is restored at the end");
  list.allow("shutdown", "sockets closed at the end");
  list.allow("wait4", "virtiofsd is reaped when the machine stops");
  list.allow_if("kill", {SCMP_A1(SCMP_CMP_EQ, 15)}, "virtiofsd is asked to stop (SIGTERM)");
  list.allow("poll", "waiting for helper threads and sockets at teardown");
  list.allow("sendto", "events to control clients");
}

}  // namespace security
