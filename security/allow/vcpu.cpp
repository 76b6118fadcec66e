// vCPU threads run guest code, and because vmlaunch emulates devices where the guest touches them
// (MMIO, port I/O, virtqueue notifications), the device work of those exits too: block requests
// without I/O threads, network transmit, console output, entropy, vhost-user kicks. No open, no
// socket creation, no exec, no executable memory (the LLVM tier is the exception: see below).
#include <linux/kvm.h>

#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"
#include "security/allow/usbfs_ioctls.h"
#include "security/allow/vfio_ioctls.h"

namespace security {

void allow_vcpu(AllowList& list, const PolicyContext& context) {
  list.allow_ioctls({KVM_RUN}, "KVM: enter the guest");
  allow_vfio_interrupts(list);
  allow_usbfs_transfers(list);
  list.allow_ioctls({KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS},
                    "KVM: registers for port I/O string ops, debug exits and error reports");
  list.allow_ioctls({KVM_GET_LAPIC, KVM_SET_LAPIC}, "KVM: local APIC state");
  allow_kvm_interrupts(list);
  allow_kvm_pause(list);  // a gdb stop (breakpoint, step) pauses the machine from the vCPU that hit it
  list.allow_ioctls({KVM_SET_GUEST_DEBUG},
                    "KVM: a #BP that is not the debugger's int3 goes back to the guest (INJECT_BP)");
  list.allow("read", "eventfds and device backends (entropy, block images)");
  list.allow("pread64", "block images (virtio-blk, virtio-scsi without I/O threads)");
  list.allow("pwrite64", "block images");
  list.allow("preadv", "block images, scattered guest buffers");
  list.allow("pwritev", "block images, scattered guest buffers");
  list.allow("readv", "chardev and net backends reading into guest buffers");
  list.allow("writev", "net backends transmitting a frame from several guest buffers");
  list.allow("lseek", "qcow2 and raw images sized at flush time");
  list.allow("fstat", "images and the console log check their size");
  list.allow("newfstatat", "glibc's fstat is fstatat(fd, \"\", AT_EMPTY_PATH)");
  list.allow("fsync", "guest flush requests");
  list.allow("fdatasync", "guest flush requests");
  list.allow("fallocate", "guest discard and write-zeroes on image files");
  list.allow_ioctls({0x1277 /* BLKDISCARD */, 0x127f /* BLKZEROOUT */},
                    "guest discard and write-zeroes on block devices");
  list.allow("ftruncate", "qcow2 grows its file; the console log rotates in place");
  list.allow("copy_file_range", "the console log keeps its previous window as console.log.1");
  list.allow("sendmsg", "vhost-user messages and stream net frames");
  list.allow("recvmsg", "vhost-user replies");
  list.allow("sendto", "events to control clients; stream net frames (send)");
  list.allow("poll", "vhost-user reply waits with a timeout");
  list.allow("ppoll", "poll on glibc's ppoll path");
  list.allow("io_uring_enter", "submitting block requests to the io_uring backend");
  // A guest driver that sets DRIVER_OK starts the device's back half here: I/O threads, the
  // io_uring ring, eventfds (hw/virtio/blk.cpp, blk_uring.cpp, scsi.cpp, vhost_user_fs.cpp).
  allow_thread_start(list);
  list.allow("io_uring_setup", "virtio-blk's io_uring backend, set up when the driver starts it");
  list.allow("io_uring_register", "liburing registers the ring");
  list.allow("eventfd2", "wake-ups of a device's I/O thread");
  if (context.p9_shares) {
    // The 9P server answers requests on the notifying vCPU; these work only below the share's
    // directory descriptor (O_PATH, no symlink following: backends/fs/p9_server.cpp).
    list.allow("openat", "9p: open and create files below the share");
    list.allow("open", "9p: lopen reopens a walked O_PATH descriptor through /proc/self/fd");
    list.allow("mkdirat", "9p: mkdir");
    list.allow("unlinkat", "9p: remove, unlinkat");
    list.allow("renameat", "9p: rename, renameat");
    list.allow("renameat2", "9p: rename on glibc's renameat2 path");
    list.allow("linkat", "9p: link");
    list.allow("symlinkat", "9p: symlink");
    list.allow("readlinkat", "9p: readlink");
    list.allow("fchownat", "9p: setattr uid/gid");
    list.allow("fchmodat", "9p: setattr mode");
    list.allow("fchmod", "9p: setattr mode on an open file");
    list.allow("fchown", "9p: setattr owner on an open file");
    list.allow("utimensat", "9p: setattr times");
    list.allow("truncate", "9p: setattr size");
    list.allow("statfs", "9p: statfs");
    list.allow("fstatfs", "9p: statfs");
    list.allow("getdents64", "9p: readdir");
    list.allow("statx", "9p: getattr");
    list.allow("fcntl", "9p: duplicate path descriptors (F_DUPFD_CLOEXEC)");
    list.allow("mknodat", "9p: mknod (FIFOs and sockets only, refused otherwise by the server)");
  }
  if (context.user_net) allow_slirp_sockets(list);  // transmit runs slirp here
  if (context.jit_code) {
    // tier: llvm compiles each block on the vCPU that first runs it.
    allow_memory_w_xor_x(list);
  }
}

}  // namespace security
