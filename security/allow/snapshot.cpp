// Snapshot writers (vmm::Controller::snapshot): one thread, started before arming and idle until
// asked, parks the vCPUs, quiesces the devices, writes DIR/{ram.zst,config.json,state.vmls} and
// lets everything run again; its workers compress guest RAM. The only role that creates files after
// arming: in the directory the control client named.
#include <fcntl.h>

#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"

namespace security {

void allow_snapshot(AllowList& list, const PolicyContext& context) {
  allow_thread_start(list);    // zstd workers; a quiesced virtio-blk starts its I/O threads again
  allow_kvm_interrupts(list);  // devices look at their queues again after quiescing and may interrupt
  allow_kvm_state_read(list);  // x86_64 on kvm: the vCPUs' and the VM's state
  allow_kvm_pause(list);       // the writer pauses a running machine and resumes it after
  list.allow("mkdir", "the snapshot directory");
  list.allow("mkdirat", "as mkdir");
  // Write-only, created or truncated: never reads or appends to host files.
  list.allow_if("openat", {SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_APPEND, O_WRONLY)},
                "the snapshot's files (write-only)");
  // Any allow rule of openat drops common's EACCES refusal of malloc's overcommit probe (the first
  // big free of a zstd worker's arena makes it): that exact read-only open is allowed here instead.
  // The writer itself opens /proc/self/pagemap so (never-touched RAM pages are skipped unread).
  list.allow_if("openat", {SCMP_A2(SCMP_CMP_EQ, O_RDONLY | O_CLOEXEC)},
                "/proc/self/pagemap; malloc's overcommit probe (/proc/sys/vm/overcommit_memory); "
                "qcow2 disk images, whose header the snapshot records");
  list.allow("pread64", "/proc/self/pagemap entries of guest RAM; a qcow2 image's header cluster");
  if (context.p9_shares) {
    // Before saving a 9P session the server checks that every fid's path still reaches its file
    // (backends/fs/p9_server.cpp cannot_save): the same walk as Twalk, O_PATH steps only.
    list.allow_if("openat", {SCMP_A2(SCMP_CMP_MASKED_EQ, O_PATH, O_PATH)},
                  "9p: walking a fid's path again below the share (O_PATH: no data access)");
    list.allow_if("fcntl", {SCMP_A1(SCMP_CMP_EQ, F_DUPFD_CLOEXEC)},
                  "9p: duplicating the share's root descriptor");
  }
  list.allow("write", "the snapshot's files");
  list.allow("fsync", "the files reach the disk before state.vmls is renamed into place");
  list.allow("rename", "state.vmls and config.json are written to a temporary name first");
  list.allow("renameat", "as rename");
  list.allow("renameat2", "as rename");
  list.allow("unlink", "an older state.vmls in the directory goes first");
  list.allow("unlinkat", "as unlink");
  list.allow("newfstatat", "the directory exists; disk image sizes and times are recorded");
  list.allow("statx", "as newfstatat (std::filesystem)");
  list.allow("fstat", "glibc's stat paths");
  list.allow("stat", "as newfstatat");
  list.allow("io_uring_setup", "a quiesced virtio-blk with io_uring gets its ring again");
  list.allow("io_uring_register", "liburing registers the ring");
  list.allow("io_uring_enter", "and submits on it");
  list.allow("eventfd2", "the io_uring completion wake-up");
  list.allow("read", "eventfds of devices restarting");
  list.allow("sendto", "events to control clients");
}

}  // namespace security
