// Block I/O: virtio-blk's and virtio-scsi's request workers (io_threads) and the io_uring backend's
// completion thread. Reads and writes images through descriptors opened at set-up.
#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"

namespace security {

void allow_block_io(AllowList& list, const PolicyContext&) {
  allow_kvm_interrupts(list);  // completing a request raises the device's interrupt
  list.allow("read", "images, eventfds");
  list.allow("pread64", "images");
  list.allow("pwrite64", "images");
  list.allow("preadv", "images into scattered guest buffers");
  list.allow("pwritev", "images from scattered guest buffers");
  list.allow("lseek", "image sizes");
  list.allow("fstat", "image sizes");
  list.allow("newfstatat", "glibc's fstat");
  list.allow("fsync", "guest flush requests");
  list.allow("fdatasync", "guest flush requests");
  list.allow("fallocate", "guest discard and write-zeroes on image files");
  list.allow_ioctls({0x1277 /* BLKDISCARD */, 0x127f /* BLKZEROOUT */},
                    "guest discard and write-zeroes on block devices");
  list.allow("ftruncate", "qcow2 grows its file");
  list.allow("io_uring_enter", "submitting and reaping io_uring block requests");
  list.allow("sendto", "events to control clients");
}

}  // namespace security
