// A 9P2000.L file server for one host directory, built into vmlaunch (no external daemon): what
// virtio-9p hands the guest's messages to.
//
// Confinement: the guest names files only by walking one component at a time from the shared
// directory. Every step is an openat(2) relative to the previous directory's O_PATH descriptor with
// O_NOFOLLOW, so a symlink is never followed on the host (the guest's kernel resolves links itself,
// inside its own namespace); a name must not contain '/' or NUL and must not be "." or ".."; a ".."
// walk pops the fid's own component list (at the root it stays at the root, as 9P says) and opens
// the result again from the root. Operations then act on the fid's descriptor (through
// /proc/self/fd for open/truncate/chmod/utimes, which reaches exactly that inode) or on a checked
// name inside a directory fid, never on a path string built from guest input.
//
// Guest input is hostile: every size, count, offset and string is checked against the message and
// the negotiated msize; a malformed message gets Rlerror (EINVAL/EPROTO), never a crash. A read-only
// share answers every change with EROFS. The number of fids is bounded, so a guest cannot use up
// the VMM's file descriptors.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/fs.h"
#include "base/result.h"

namespace backends::fs {

// Largest msize we agree to (Linux's virtio 9p client caps itself near 512 KiB).
constexpr uint32_t kMaxMsize = 512 * 1024;
// Fids one session may hold at once.
constexpr size_t kMaxFids = 8192;

class P9Server : public FsBackend {
 public:
  // Opens `directory` (which must exist and be a directory) as the share's root.
  static base::ErrorOr<std::shared_ptr<P9Server>> open(const std::string& directory, bool read_only);
  ~P9Server() override;

  bool read_only() const override { return m_read_only; }
  size_t serve(std::span<const uint8_t> request, std::span<uint8_t> reply) override;
  void reset() override;
  // Snapshot state: msize and every fid as its path below the share and the
  // 9P open flags it was opened with. A restore walks each path again from the root (the same
  // confined walk as Twalk) and reopens what was open, without create or truncate.
  std::optional<std::string> cannot_save() const override;
  std::vector<uint8_t> save_state() override;
  base::ErrorOr<void> load_state(std::span<const uint8_t> bytes) override;

  uint32_t msize() const { return m_msize; }
  size_t fid_count() const { return m_fids.size(); }

 private:
  struct Fid {
    int path_fd = -1;                     // O_PATH|O_NOFOLLOW, the file itself (may be a symlink)
    int open_fd = -1;                     // after lopen/lcreate
    std::vector<std::string> components;  // below the root, for ".."
    uint32_t open_flags = 0;              // the 9P flags of lopen/lcreate, when open_fd >= 0
  };
  class Message;

  P9Server(int root_fd, bool read_only) : m_root_fd(root_fd), m_read_only(read_only) {}
  void close_fid(Fid& fid);
  void clear_fids();
  Fid* find_fid(uint32_t id);
  int new_fid(uint32_t id, Fid fid);  // errno (0 on success); takes ownership of the fds
  int reopen_from_root(const std::vector<std::string>& components, int* out_fd) const;

  int op_version(Message& m);
  int op_attach(Message& m);
  int op_walk(Message& m);
  int op_getattr(Message& m);
  int op_setattr(Message& m);
  int op_lopen(Message& m);
  int op_lcreate(Message& m);
  // Tread, Twrite and Treaddir start alike: fid[4] offset[8] count[4], naming a fid that lopen or
  // lcreate opened. io_request reads that head: 0, or the errno to answer with.
  struct IoRequest {
    Fid* fid = nullptr;
    uint64_t offset = 0;
    uint32_t count = 0;
  };
  int io_request(Message& m, IoRequest& request);
  int op_read(Message& m);
  int op_write(Message& m);
  int op_readdir(Message& m);
  int op_mkdir(Message& m);
  int op_link(Message& m);
  int op_symlink(Message& m);
  int op_readlink(Message& m);
  int op_unlinkat(Message& m);
  int op_renameat(Message& m);
  int op_statfs(Message& m);
  int op_fsync(Message& m);
  int op_clunk(Message& m);
  int op_flush(Message& m);

  mutable std::mutex m_lock;
  int m_root_fd;
  bool m_read_only;
  uint32_t m_msize = 8192;
  std::map<uint32_t, Fid> m_fids;
};

}  // namespace backends::fs
