#include "backends/fs/p9_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace backends::fs {

namespace {

// Message types (9P2000.L, as Linux's include/net/9p/9p.h numbers them). R = T + 1.
enum : uint8_t {
  kRlerror = 7,
  kTstatfs = 8,
  kTlopen = 12,
  kTlcreate = 14,
  kTsymlink = 16,
  kTreadlink = 22,
  kTgetattr = 24,
  kTsetattr = 26,
  kTreaddir = 40,
  kTfsync = 50,
  kTlink = 70,
  kTmkdir = 72,
  kTrenameat = 74,
  kTunlinkat = 76,
  kTversion = 100,
  kTattach = 104,
  kTflush = 108,
  kTwalk = 110,
  kTread = 116,
  kTwrite = 118,
  kTclunk = 120,
};

constexpr uint32_t kHeader = 7;  // size[4] type[1] tag[2]
constexpr uint32_t kNoFid = ~0u;
constexpr uint16_t kMaxWalk = 16;  // P9_MAXWELEM
constexpr size_t kMaxName = 255;
constexpr size_t kMaxString = 4096;  // symlink targets, names, version strings
constexpr uint32_t kMinMsize = 4096;

// Qid types.
constexpr uint8_t kQidDir = 0x80;
constexpr uint8_t kQidSymlink = 0x02;
constexpr uint8_t kQidFile = 0x00;

// Tsetattr valid bits.
constexpr uint32_t kSetMode = 0x1, kSetUid = 0x2, kSetGid = 0x4, kSetSize = 0x8, kSetAtime = 0x10,
                   kSetMtime = 0x20, kSetAtimeSet = 0x80, kSetMtimeSet = 0x100;
// Tgetattr: the basic fields (mode .. blocks), which is what we fill.
constexpr uint64_t kGetattrBasic = 0x7ff;

// 9P2000.L open flags (Linux's generic O_* values, which the protocol fixes whatever the host).
constexpr uint32_t kLAccMode = 3, kLCreat = 0100, kLExcl = 0200, kLTrunc = 01000, kLAppend = 02000,
                   kLDirectory = 0200000;
constexpr uint32_t kLAtRemoveDir = 0x200;  // Tunlinkat flags

uint8_t qid_type(mode_t mode) {
  if (S_ISDIR(mode)) return kQidDir;
  if (S_ISLNK(mode)) return kQidSymlink;
  return kQidFile;
}

// A name the guest may use for one directory entry: nothing that moves elsewhere.
int check_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return EINVAL;
  if (name.size() > kMaxName) return ENAMETOOLONG;
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos) return EINVAL;
  return 0;
}

int host_open_flags(uint32_t flags) {
  int out = 0;
  switch (flags & kLAccMode) {
    case 0:
      out = O_RDONLY;
      break;
    case 1:
      out = O_WRONLY;
      break;
    case 2:
      out = O_RDWR;
      break;
    default:
      return -1;
  }
  if (flags & kLTrunc) out |= O_TRUNC;
  if (flags & kLAppend) out |= O_APPEND;
  if (flags & kLExcl) out |= O_EXCL;
  if (flags & kLDirectory) out |= O_DIRECTORY;
  // Never block the VMM on a FIFO or a terminal, never follow a link, never inherit to children.
  return out | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
}

bool writes(uint32_t flags) {
  return (flags & kLAccMode) != 0 || (flags & (kLTrunc | kLCreat)) != 0;
}

std::string proc_path(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace

// One request being read and its reply being written. Reads past the request set bad(); writes
// past the reply's room set overflow(); the server then answers with an error instead.
class P9Server::Message {
 public:
  Message(std::span<const uint8_t> in, std::span<uint8_t> out) : m_in(in), m_out(out) {}

  uint8_t type() const { return m_in[4]; }
  uint16_t tag() const { return static_cast<uint16_t>(m_in[5] | (m_in[6] << 8)); }

  template <typename T>
  bool get(T& out) {
    if (m_in.size() - m_read < sizeof(T)) {
      m_bad = true;
      out = 0;
      return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(m_in[m_read + i]) << (8 * i);
    m_read += sizeof(T);
    out = static_cast<T>(v);
    return true;
  }
  bool str(std::string& out, size_t max = kMaxString) {
    uint16_t len = 0;
    if (!get(len)) return false;
    if (len > max || m_in.size() - m_read < len) {
      m_bad = true;
      return false;
    }
    out.assign(reinterpret_cast<const char*>(m_in.data() + m_read), len);
    m_read += len;
    return true;
  }
  // The next `n` request bytes (Twrite's data).
  bool bytes(size_t n, std::span<const uint8_t>& out) {
    if (m_in.size() - m_read < n) {
      m_bad = true;
      return false;
    }
    out = m_in.subspan(m_read, n);
    m_read += n;
    return true;
  }
  bool bad() const { return m_bad; }
  size_t remaining() const { return m_in.size() - m_read; }

  template <typename T>
  void put(T v) {
    if (m_out.size() - m_written < sizeof(T)) {
      m_overflow = true;
      return;
    }
    for (size_t i = 0; i < sizeof(T); ++i)
      m_out[m_written + i] = static_cast<uint8_t>(uint64_t(v) >> (8 * i));
    m_written += sizeof(T);
  }
  void put_str(std::string_view s) {
    put(static_cast<uint16_t>(s.size()));
    if (m_out.size() - m_written < s.size()) {
      m_overflow = true;
      return;
    }
    std::memcpy(m_out.data() + m_written, s.data(), s.size());
    m_written += s.size();
  }
  void put_qid(const struct stat& st) {
    put(qid_type(st.st_mode));
    put(uint32_t(0));  // version: we keep no change counter
    put(uint64_t(st.st_ino));
  }
  // Room left for the reply and a way to claim part of it (Rread's data, Rreaddir's entries).
  std::span<uint8_t> room() { return m_out.subspan(m_written); }
  void advance(size_t n) { m_written += n; }
  // Overwrites `bytes` little-endian bytes already written at `at` (a count known only at the end).
  void patch(size_t at, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) m_out[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  size_t written() const { return m_written; }
  bool overflow() const { return m_overflow; }
  void restart() {
    m_written = kHeader;
    m_overflow = false;
  }

 private:
  std::span<const uint8_t> m_in;
  std::span<uint8_t> m_out;
  size_t m_read = kHeader;
  size_t m_written = kHeader;
  bool m_bad = false;
  bool m_overflow = false;
};

base::ErrorOr<std::shared_ptr<P9Server>> P9Server::open(const std::string& directory, bool read_only) {
  int fd = ::open(directory.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return base::fail(base::Error("cannot share \"" + directory + "\": " + std::strerror(errno) +
                                  (errno == ENOTDIR ? " (a shared folder must be a directory)" : "")));
  return std::shared_ptr<P9Server>(new P9Server(fd, read_only));
}

P9Server::~P9Server() {
  clear_fids();
  ::close(m_root_fd);
}

void P9Server::close_fid(Fid& fid) {
  if (fid.open_fd >= 0) ::close(fid.open_fd);
  if (fid.path_fd >= 0) ::close(fid.path_fd);
  fid.open_fd = fid.path_fd = -1;
}

void P9Server::clear_fids() {
  for (auto& [id, fid] : m_fids) close_fid(fid);
  m_fids.clear();
}

void P9Server::reset() {
  std::lock_guard guard(m_lock);
  clear_fids();
  m_msize = 8192;
}

P9Server::Fid* P9Server::find_fid(uint32_t id) {
  auto it = m_fids.find(id);
  return it == m_fids.end() ? nullptr : &it->second;
}

int P9Server::new_fid(uint32_t id, Fid fid) {
  if (id == kNoFid || m_fids.count(id) || m_fids.size() >= kMaxFids) {
    int error = id == kNoFid || m_fids.count(id) ? EBADF : EMFILE;
    close_fid(fid);
    return error;
  }
  m_fids.emplace(id, std::move(fid));
  return 0;
}

int P9Server::reopen_from_root(const std::vector<std::string>& components, int* out_fd) const {
  int fd = ::fcntl(m_root_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return errno;
  for (const std::string& name : components) {
    int next = ::openat(fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int error = errno;
    ::close(fd);
    if (next < 0) return error;
    fd = next;
  }
  *out_fd = fd;
  return 0;
}

size_t P9Server::serve(std::span<const uint8_t> request, std::span<uint8_t> reply) {
  if (request.size() < kHeader || reply.size() < kHeader + 4) return 0;
  uint32_t size = uint32_t(request[0]) | uint32_t(request[1]) << 8 | uint32_t(request[2]) << 16 |
                  uint32_t(request[3]) << 24;
  std::lock_guard guard(m_lock);
  // The message is what its size field says; a size beyond what the guest handed over, or beyond
  // msize (Tversion: our largest), is malformed and answered below; bytes after it are ignored.
  const bool version = request[4] == kTversion;
  const uint32_t limit = version ? kMaxMsize : m_msize;
  bool size_ok = size >= kHeader && size <= request.size() && size <= limit;
  Message m(request.first(size_ok ? size : kHeader), reply.first(std::min<size_t>(reply.size(), limit)));
  int error = EINVAL;
  if (size_ok) {
    switch (m.type()) {
      case kTversion:
        error = op_version(m);
        break;
      case kTattach:
        error = op_attach(m);
        break;
      case kTwalk:
        error = op_walk(m);
        break;
      case kTgetattr:
        error = op_getattr(m);
        break;
      case kTsetattr:
        error = op_setattr(m);
        break;
      case kTlopen:
        error = op_lopen(m);
        break;
      case kTlcreate:
        error = op_lcreate(m);
        break;
      case kTread:
        error = op_read(m);
        break;
      case kTwrite:
        error = op_write(m);
        break;
      case kTreaddir:
        error = op_readdir(m);
        break;
      case kTlink:
        error = op_link(m);
        break;
      case kTmkdir:
        error = op_mkdir(m);
        break;
      case kTsymlink:
        error = op_symlink(m);
        break;
      case kTreadlink:
        error = op_readlink(m);
        break;
      case kTunlinkat:
        error = op_unlinkat(m);
        break;
      case kTrenameat:
        error = op_renameat(m);
        break;
      case kTstatfs:
        error = op_statfs(m);
        break;
      case kTfsync:
        error = op_fsync(m);
        break;
      case kTclunk:
        error = op_clunk(m);
        break;
      case kTflush:
        error = op_flush(m);
        break;
      default:
        error = EOPNOTSUPP;
        break;  // xattrs, locks, mknod, Tremove/Trename (.L has *at)
    }
    // A request cut short is malformed even if the handler got far enough to act.
    if (error == 0 && m.bad()) error = EPROTO;
    if (error == 0 && m.overflow()) error = EMSGSIZE;
  }
  uint8_t type = static_cast<uint8_t>(m.type() + 1);
  if (error != 0) {
    m.restart();
    m.put(static_cast<uint32_t>(error));
    type = kRlerror;
  }
  size_t length = m.written();
  reply[0] = static_cast<uint8_t>(length);
  reply[1] = static_cast<uint8_t>(length >> 8);
  reply[2] = static_cast<uint8_t>(length >> 16);
  reply[3] = static_cast<uint8_t>(length >> 24);
  reply[4] = type;
  reply[5] = request[5];
  reply[6] = request[6];
  return length;
}

int P9Server::op_version(Message& m) {
  uint32_t msize = 0;
  std::string version;
  if (!m.get(msize) || !m.str(version)) return EPROTO;
  // A new session: every fid of the old one is gone (9P's Tversion semantics).
  clear_fids();
  if (msize < kMinMsize) return EINVAL;
  m_msize = std::min(msize, kMaxMsize);
  m.put(m_msize);
  m.put_str(version.rfind("9P2000.L", 0) == 0 ? "9P2000.L" : "unknown");
  return 0;
}

int P9Server::op_attach(Message& m) {
  uint32_t fid = 0, afid = 0, n_uname = 0;
  std::string uname, aname;
  if (!m.get(fid) || !m.get(afid) || !m.str(uname) || !m.str(aname) || !m.get(n_uname)) return EPROTO;
  if (afid != kNoFid) return EOPNOTSUPP;  // no authentication protocol
  Fid root;
  root.path_fd = ::fcntl(m_root_fd, F_DUPFD_CLOEXEC, 0);
  if (root.path_fd < 0) return errno;
  struct stat st {};
  if (::fstatat(root.path_fd, "", &st, AT_EMPTY_PATH) != 0) {
    int error = errno;
    close_fid(root);
    return error;
  }
  if (int error = new_fid(fid, std::move(root))) return error;
  m.put_qid(st);
  return 0;
}

int P9Server::op_walk(Message& m) {
  uint32_t fid_id = 0, newfid_id = 0;
  uint16_t count = 0;
  if (!m.get(fid_id) || !m.get(newfid_id) || !m.get(count)) return EPROTO;
  if (count > kMaxWalk) return E2BIG;
  std::vector<std::string> names(count);
  for (std::string& name : names)
    if (!m.str(name, kMaxName + 1)) return EPROTO;
  Fid* from = find_fid(fid_id);
  if (!from) return EBADF;
  if (from->open_fd >= 0) return EBADF;  // 9P: an opened fid cannot be walked
  if (newfid_id != fid_id && (m_fids.count(newfid_id) || newfid_id == kNoFid)) return EBADF;

  Fid walked;
  walked.components = from->components;
  walked.path_fd = ::fcntl(from->path_fd, F_DUPFD_CLOEXEC, 0);
  if (walked.path_fd < 0) return errno;
  m.put(count);  // patched below if the walk stops early
  size_t count_at = m.written() - 2;
  uint16_t done = 0;
  int error = 0;
  for (const std::string& name : names) {
    int next = -1;
    if (name == "..") {
      // Up: the fid's own path without its last component, opened again from the root. At the root
      // ".." is the root: the walk never leaves the share whatever the guest asks.
      std::vector<std::string> up = walked.components;
      if (!up.empty()) up.pop_back();
      error = reopen_from_root(up, &next);
      if (error == 0) walked.components = std::move(up);
    } else if ((error = check_name(name)) == 0) {
      next = ::openat(walked.path_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        error = errno;
      else
        walked.components.push_back(name);
    }
    if (error != 0) break;
    ::close(walked.path_fd);
    walked.path_fd = next;
    struct stat st {};
    if (::fstatat(walked.path_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      error = errno;
      break;
    }
    m.put_qid(st);
    ++done;
  }
  if (done < count) {
    close_fid(walked);
    if (done == 0) return error;  // the first name failed: an error, not an empty Rwalk
    // 9P: a partial walk answers the qids it got and leaves newfid alone.
    m.patch(count_at, done, 2);
    return 0;
  }
  if (newfid_id == fid_id) {
    close_fid(*from);
    *from = std::move(walked);
    return 0;
  }
  return new_fid(newfid_id, std::move(walked));
}

int P9Server::op_getattr(Message& m) {
  uint32_t fid_id = 0;
  uint64_t mask = 0;
  if (!m.get(fid_id) || !m.get(mask)) return EPROTO;
  Fid* fid = find_fid(fid_id);
  if (!fid) return EBADF;
  struct stat st {};
  if (::fstatat(fid->path_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  m.put(kGetattrBasic);
  m.put_qid(st);
  m.put(uint32_t(st.st_mode));
  m.put(uint32_t(st.st_uid));
  m.put(uint32_t(st.st_gid));
  m.put(uint64_t(st.st_nlink));
  m.put(uint64_t(st.st_rdev));
  m.put(uint64_t(st.st_size));
  m.put(uint64_t(st.st_blksize));
  m.put(uint64_t(st.st_blocks));
  m.put(uint64_t(st.st_atim.tv_sec));
  m.put(uint64_t(st.st_atim.tv_nsec));
  m.put(uint64_t(st.st_mtim.tv_sec));
  m.put(uint64_t(st.st_mtim.tv_nsec));
  m.put(uint64_t(st.st_ctim.tv_sec));
  m.put(uint64_t(st.st_ctim.tv_nsec));
  for (int i = 0; i < 4; ++i) m.put(uint64_t(0));  // btime sec/nsec, gen, data_version: not kept
  return 0;
}

int P9Server::op_setattr(Message& m) {
  uint32_t fid_id = 0, valid = 0, mode = 0, uid = 0, gid = 0;
  uint64_t size = 0, atime_sec = 0, atime_nsec = 0, mtime_sec = 0, mtime_nsec = 0;
  if (!m.get(fid_id) || !m.get(valid) || !m.get(mode) || !m.get(uid) || !m.get(gid) || !m.get(size) ||
      !m.get(atime_sec) || !m.get(atime_nsec) || !m.get(mtime_sec) || !m.get(mtime_nsec))
    return EPROTO;
  Fid* fid = find_fid(fid_id);
  if (!fid) return EBADF;
  // ctime alone changes nothing we could set; the kernel updates it on any change.
  if (!(valid & (kSetMode | kSetUid | kSetGid | kSetSize | kSetAtime | kSetMtime))) return 0;
  if (m_read_only) return EROFS;
  struct stat st {};
  if (::fstatat(fid->path_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  // Through /proc/self/fd the call reaches exactly the fid's inode; a symlink's inode would make
  // chmod/truncate/utimes act on its target, so links get only owner changes.
  const std::string path = proc_path(fid->path_fd);
  if (valid & (kSetMode | kSetSize | kSetAtime | kSetMtime)) {
    if (S_ISLNK(st.st_mode)) return ELOOP;
  }
  if (valid & kSetMode) {
    if (::chmod(path.c_str(), mode & 07777) != 0) return errno;
  }
  if (valid & (kSetUid | kSetGid)) {
    uid_t u = (valid & kSetUid) ? uid : uid_t(-1);
    gid_t g = (valid & kSetGid) ? gid : gid_t(-1);
    if (::fchownat(fid->path_fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  }
  if (valid & kSetSize) {
    if (size > uint64_t(INT64_MAX)) return EFBIG;
    if (!S_ISREG(st.st_mode)) return EINVAL;
    if (::truncate(path.c_str(), off_t(size)) != 0) return errno;
  }
  if (valid & (kSetAtime | kSetMtime)) {
    struct timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    times[1] = times[0];
    if (valid & kSetAtime) {
      if ((valid & kSetAtimeSet) && atime_nsec >= 1000000000) return EINVAL;
      times[0].tv_sec = (valid & kSetAtimeSet) ? time_t(atime_sec) : 0;
      times[0].tv_nsec = (valid & kSetAtimeSet) ? long(atime_nsec) : UTIME_NOW;
    }
    if (valid & kSetMtime) {
      if ((valid & kSetMtimeSet) && mtime_nsec >= 1000000000) return EINVAL;
      times[1].tv_sec = (valid & kSetMtimeSet) ? time_t(mtime_sec) : 0;
      times[1].tv_nsec = (valid & kSetMtimeSet) ? long(mtime_nsec) : UTIME_NOW;
    }
    if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) return errno;
  }
  return 0;
}

int P9Server::op_lopen(Message& m) {
  uint32_t fid_id = 0, flags = 0;
  if (!m.get(fid_id) || !m.get(flags)) return EPROTO;
  Fid* fid = find_fid(fid_id);
  if (!fid) return EBADF;
  if (fid->open_fd >= 0) return EBADF;
  if (m_read_only && writes(flags & ~kLCreat)) return EROFS;
  int host_flags = host_open_flags(flags & ~(kLCreat | kLExcl));
  if (host_flags < 0) return EINVAL;
  struct stat st {};
  if (::fstatat(fid->path_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  if (S_ISLNK(st.st_mode)) return ELOOP;  // the guest reads links with Treadlink, never opens them
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return EPERM;  // no host FIFOs, devices, sockets
  // O_NOFOLLOW would refuse the /proc magic link itself; the link reaches exactly the fid's inode.
  int fd = ::open(proc_path(fid->path_fd).c_str(), host_flags & ~O_NOFOLLOW);
  if (fd < 0) return errno;
  struct stat opened {};
  if (::fstat(fd, &opened) != 0 || opened.st_ino != st.st_ino || opened.st_dev != st.st_dev) {
    ::close(fd);
    return ESTALE;
  }
  fid->open_fd = fd;
  fid->open_flags = flags;
  m.put_qid(st);
  m.put(uint32_t(0));  // iounit: let the client use msize
  return 0;
}

int P9Server::op_lcreate(Message& m) {
  uint32_t fid_id = 0, flags = 0, mode = 0, gid = 0;
  std::string name;
  if (!m.get(fid_id) || !m.str(name, kMaxName + 1) || !m.get(flags) || !m.get(mode) || !m.get(gid))
    return EPROTO;
  Fid* fid = find_fid(fid_id);
  if (!fid) return EBADF;
  if (fid->open_fd >= 0) return EBADF;
  if (int error = check_name(name)) return error;
  if (m_read_only) return EROFS;
  int host_flags = host_open_flags(flags & ~kLDirectory);
  if (host_flags < 0) return EINVAL;
  // O_NOFOLLOW with O_CREAT: an existing symlink of that name fails (ELOOP) instead of creating its
  // target somewhere on the host.
  int fd = ::openat(fid->path_fd, name.c_str(), host_flags | O_CREAT, mode & 07777);
  if (fd < 0) return errno;
  int path_fd = ::openat(fid->path_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat st {
  }, opened{};
  if (path_fd < 0 || ::fstat(fd, &opened) != 0 || ::fstat(path_fd, &st) != 0 || opened.st_ino != st.st_ino) {
    int error = path_fd < 0 ? errno : ESTALE;
    ::close(fd);
    if (path_fd >= 0) ::close(path_fd);
    return error;
  }
  ::close(fid->path_fd);
  fid->path_fd = path_fd;
  fid->open_fd = fd;
  fid->open_flags = flags & ~kLDirectory;
  fid->components.push_back(name);
  m.put_qid(st);
  m.put(uint32_t(0));
  return 0;
}

int P9Server::io_request(Message& m, IoRequest& request) {
  uint32_t fid_id = 0;
  if (!m.get(fid_id) || !m.get(request.offset) || !m.get(request.count)) return EPROTO;
  request.fid = find_fid(fid_id);
  if (!request.fid || request.fid->open_fd < 0) return EBADF;
  if (request.offset > uint64_t(INT64_MAX)) return EINVAL;
  return 0;
}

int P9Server::op_read(Message& m) {
  IoRequest request;
  if (int error = io_request(m, request)) return error;
  m.put(uint32_t(0));  // the count, once known
  size_t count_at = m.written() - 4;
  std::span<uint8_t> room = m.room();
  size_t want = std::min<size_t>(request.count, room.size());
  ssize_t n = ::pread(request.fid->open_fd, room.data(), want, off_t(request.offset));
  if (n < 0) return errno;
  m.patch(count_at, uint32_t(n), 4);
  m.advance(size_t(n));
  return 0;
}

int P9Server::op_write(Message& m) {
  IoRequest request;
  std::span<const uint8_t> data;
  if (int error = io_request(m, request)) return error;
  if (!m.bytes(request.count, data)) return EPROTO;
  Fid* fid = request.fid;
  const uint64_t offset = request.offset, count = request.count;
  if (m_read_only) return EROFS;  // not reachable through lopen, checked again on the data path
  if (offset > uint64_t(INT64_MAX) - count) return EINVAL;
  ssize_t n = ::pwrite(fid->open_fd, data.data(), data.size(), off_t(offset));
  if (n < 0) return errno;
  m.put(uint32_t(n));
  return 0;
}

int P9Server::op_readdir(Message& m) {
  IoRequest request;
  if (int error = io_request(m, request)) return error;
  Fid* fid = request.fid;
  const uint64_t offset = request.offset;
  const uint32_t count = request.count;
  // Offsets are the host's d_off cookies: the guest hands back the last one it saw.
  if (::lseek(fid->open_fd, off_t(offset), SEEK_SET) < 0) return errno;
  m.put(uint32_t(0));
  size_t count_at = m.written() - 4;
  std::span<uint8_t> room = m.room();
  size_t limit = std::min<size_t>(count, room.size());
  size_t used = 0;
  alignas(8) uint8_t buffer[16384];
  bool full = false;
  while (!full) {
    long n = ::syscall(SYS_getdents64, fid->open_fd, buffer, sizeof buffer);
    if (n < 0) return errno;
    if (n == 0) break;
    for (long at = 0; at < n;) {
      // The kernel's own records, packed and aligned in the buffer it filled.
      auto* entry = reinterpret_cast<struct dirent64*>(buffer + at);
      at += entry->d_reclen;
      size_t name_len = std::strlen(entry->d_name);
      size_t need = 13 + 8 + 1 + 2 + name_len;
      if (used + need > limit) {
        full = true;
        break;
      }
      uint8_t* out = room.data() + used;
      uint8_t type = entry->d_type == DT_DIR ? kQidDir : entry->d_type == DT_LNK ? kQidSymlink : kQidFile;
      auto put = [&out](uint64_t v, int bytes) {
        for (int i = 0; i < bytes; ++i) *out++ = static_cast<uint8_t>(v >> (8 * i));
      };
      put(type, 1);
      put(0, 4);
      put(entry->d_ino, 8);
      put(uint64_t(entry->d_off), 8);
      put(entry->d_type, 1);
      put(name_len, 2);
      std::memcpy(out, entry->d_name, name_len);
      used += need;
    }
  }
  m.patch(count_at, uint32_t(used), 4);
  m.advance(used);
  return 0;
}

int P9Server::op_mkdir(Message& m) {
  uint32_t fid_id = 0, mode = 0, gid = 0;
  std::string name;
  if (!m.get(fid_id) || !m.str(name, kMaxName + 1) || !m.get(mode) || !m.get(gid)) return EPROTO;
  Fid* fid = find_fid(fid_id);
  if (!fid) return EBADF;
  if (int error = check_name(name)) return error;
  if (m_read_only) return EROFS;
  if (::mkdirat(fid->path_fd, name.c_str(), mode & 07777) != 0) return errno;
  struct stat st {};
  if (::fstatat(fid->path_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
  m.put_qid(st);
  return 0;
}

int P9Server::op_link(Message& m) {
  uint32_t dir_id = 0, fid_id = 0;
  std::string name;
  if (!m.get(dir_id) || !m.get(fid_id) || !m.str(name, kMaxName + 1)) return EPROTO;
  Fid* dir = find_fid(dir_id);
  Fid* fid = find_fid(fid_id);
  if (!dir || !fid) return EBADF;
  if (int error = check_name(name)) return error;
  if (m_read_only) return EROFS;
  struct stat st {};
  if (::fstatat(fid->path_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  // Only regular files: following the /proc link of a symlink's fd could link its target, which
  // may lie outside the share. A regular file's fd names exactly that inode (its type never changes).
  if (!S_ISREG(st.st_mode)) return EPERM;
  if (::linkat(AT_FDCWD, proc_path(fid->path_fd).c_str(), dir->path_fd, name.c_str(), AT_SYMLINK_FOLLOW) != 0)
    return errno;
  return 0;
}

int P9Server::op_symlink(Message& m) {
  uint32_t fid_id = 0, gid = 0;
  std::string name, target;
  if (!m.get(fid_id) || !m.str(name, kMaxName + 1) || !m.str(target) || !m.get(gid)) return EPROTO;
  Fid* fid = find_fid(fid_id);
  if (!fid) return EBADF;
  if (int error = check_name(name)) return error;
  if (target.empty() || target.find('\0') != std::string::npos) return EINVAL;
  if (m_read_only) return EROFS;
  // The target is stored, never followed by us: any value is harmless to the host.
  if (::symlinkat(target.c_str(), fid->path_fd, name.c_str()) != 0) return errno;
  struct stat st {};
  if (::fstatat(fid->path_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
  m.put_qid(st);
  return 0;
}

int P9Server::op_readlink(Message& m) {
  uint32_t fid_id = 0;
  if (!m.get(fid_id)) return EPROTO;
  Fid* fid = find_fid(fid_id);
  if (!fid) return EBADF;
  char target[kMaxString + 1];
  ssize_t n = ::readlinkat(fid->path_fd, "", target, sizeof target);
  if (n < 0) return errno;
  if (size_t(n) > kMaxString) return ENAMETOOLONG;
  m.put_str(std::string_view(target, size_t(n)));
  return 0;
}

int P9Server::op_unlinkat(Message& m) {
  uint32_t fid_id = 0, flags = 0;
  std::string name;
  if (!m.get(fid_id) || !m.str(name, kMaxName + 1) || !m.get(flags)) return EPROTO;
  Fid* fid = find_fid(fid_id);
  if (!fid) return EBADF;
  if (int error = check_name(name)) return error;
  if (m_read_only) return EROFS;
  if (::unlinkat(fid->path_fd, name.c_str(), (flags & kLAtRemoveDir) ? AT_REMOVEDIR : 0) != 0) return errno;
  return 0;
}

int P9Server::op_renameat(Message& m) {
  uint32_t old_id = 0, new_id = 0;
  std::string old_name, new_name;
  if (!m.get(old_id) || !m.str(old_name, kMaxName + 1) || !m.get(new_id) || !m.str(new_name, kMaxName + 1))
    return EPROTO;
  Fid* old_dir = find_fid(old_id);
  Fid* new_dir = find_fid(new_id);
  if (!old_dir || !new_dir) return EBADF;
  if (int error = check_name(old_name)) return error;
  if (int error = check_name(new_name)) return error;
  if (m_read_only) return EROFS;
  if (::renameat(old_dir->path_fd, old_name.c_str(), new_dir->path_fd, new_name.c_str()) != 0) return errno;
  // Fids at or below the moved entry keep their O_PATH fds (they follow the inode), but the path
  // they remember must follow too: ".." walks and snapshots rebuild fids from it.
  std::vector<std::string> from = old_dir->components, to = new_dir->components;
  from.push_back(old_name);
  to.push_back(new_name);
  for (auto& [id, fid] : m_fids) {
    if (fid.components.size() < from.size() || !std::equal(from.begin(), from.end(), fid.components.begin()))
      continue;
    std::vector<std::string> moved = to;
    moved.insert(moved.end(), fid.components.begin() + static_cast<std::ptrdiff_t>(from.size()),
                 fid.components.end());
    fid.components = std::move(moved);
  }
  return 0;
}

int P9Server::op_statfs(Message& m) {
  uint32_t fid_id = 0;
  if (!m.get(fid_id)) return EPROTO;
  Fid* fid = find_fid(fid_id);
  if (!fid) return EBADF;
  struct statfs st {};
  if (::fstatfs(fid->path_fd, &st) != 0) return errno;
  m.put(uint32_t(st.f_type));
  m.put(uint32_t(st.f_bsize));
  m.put(uint64_t(st.f_blocks));
  m.put(uint64_t(st.f_bfree));
  m.put(uint64_t(st.f_bavail));
  m.put(uint64_t(st.f_files));
  m.put(uint64_t(st.f_ffree));
  uint64_t fsid = 0;
  std::memcpy(&fsid, &st.f_fsid, std::min(sizeof fsid, sizeof st.f_fsid));
  m.put(fsid);
  m.put(uint32_t(st.f_namelen));
  return 0;
}

int P9Server::op_fsync(Message& m) {
  uint32_t fid_id = 0, datasync = 0;
  if (!m.get(fid_id)) return EPROTO;
  if (m.remaining() >= 4) (void)m.get(datasync);  // older clients send only the fid
  Fid* fid = find_fid(fid_id);
  if (!fid || fid->open_fd < 0) return EBADF;
  if ((datasync ? ::fdatasync(fid->open_fd) : ::fsync(fid->open_fd)) != 0 && errno != EINVAL) return errno;
  return 0;
}

int P9Server::op_clunk(Message& m) {
  uint32_t fid_id = 0;
  if (!m.get(fid_id)) return EPROTO;
  auto it = m_fids.find(fid_id);
  if (it == m_fids.end()) return EBADF;
  close_fid(it->second);
  m_fids.erase(it);
  return 0;
}

int P9Server::op_flush(Message& m) {
  uint16_t old_tag = 0;
  if (!m.get(old_tag)) return EPROTO;
  // Requests are answered in order before the next is read: the flushed one has already completed.
  return 0;
}

// Snapshot state. Framing of its own (little-endian u32s, length-prefixed names): backends do not
// see hw::StateWriter.
namespace {

constexpr uint32_t kStateVersion = 1;
constexpr size_t kMaxStateDepth = 4096;  // path components of one fid

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

struct StateIn {
  std::span<const uint8_t> bytes;
  size_t pos = 0;
  bool ok = true;
  uint32_t u32() {
    if (!ok || bytes.size() - pos < 4) return ok = false, 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{bytes[pos + i]} << (8 * i);
    pos += 4;
    return v;
  }
  uint8_t u8() {
    if (!ok || bytes.size() - pos < 1) return ok = false, 0;
    return bytes[pos++];
  }
  std::string name() {
    const uint32_t n = u32();
    if (!ok || n > kMaxName || n > bytes.size() - pos) return ok = false, std::string();
    std::string out(reinterpret_cast<const char*>(bytes.data() + pos), n);
    pos += n;
    return out;
  }
};

std::string joined(const std::vector<std::string>& components) {
  std::string path = "/";
  for (const std::string& c : components) path += (path.size() > 1 ? "/" : "") + c;
  return path;
}

// The flags a saved open fid is reopened with: as the guest opened it, minus what would change the
// file (create, exclusive, truncate).
uint32_t reopen_flags(uint32_t flags) {
  return flags & ~(kLCreat | kLExcl | kLTrunc);
}

}  // namespace

std::optional<std::string> P9Server::cannot_save() const {
  std::lock_guard guard(m_lock);
  size_t size = 12;  // what save_state() will write
  for (const auto& [id, fid] : m_fids) {
    size += 13;
    for (const std::string& c : fid.components) size += 4 + c.size();
  }
  if (size > kMaxSavedState)
    return "the guest's 9P session holds " + std::to_string(m_fids.size()) + " fids naming " +
           std::to_string(size >> 20) + " MiB of paths, over the " + std::to_string(kMaxSavedState >> 20) +
           " MiB a snapshot keeps";
  for (const auto& [id, fid] : m_fids) {
    struct stat held {
    }, now{};
    int fd = -1;
    const bool same = ::fstat(fid.path_fd, &held) == 0 && reopen_from_root(fid.components, &fd) == 0 &&
                      ::fstat(fd, &now) == 0 && held.st_ino == now.st_ino && held.st_dev == now.st_dev;
    if (fd >= 0) ::close(fd);
    if (!same)
      return "the guest holds " + joined(fid.components) + " (fid " + std::to_string(id) +
             "), which was deleted or moved since: its 9P session cannot be restored";
  }
  return std::nullopt;
}

std::vector<uint8_t> P9Server::save_state() {
  std::lock_guard guard(m_lock);
  std::vector<uint8_t> out;
  put_u32(out, kStateVersion);
  put_u32(out, m_msize);
  put_u32(out, static_cast<uint32_t>(m_fids.size()));
  for (const auto& [id, fid] : m_fids) {
    put_u32(out, id);
    put_u32(out, static_cast<uint32_t>(fid.components.size()));
    for (const std::string& c : fid.components) {
      put_u32(out, static_cast<uint32_t>(c.size()));
      out.insert(out.end(), c.begin(), c.end());
    }
    out.push_back(fid.open_fd >= 0 ? 1 : 0);
    put_u32(out, fid.open_flags);
  }
  return out;
}

base::ErrorOr<void> P9Server::load_state(std::span<const uint8_t> bytes) {
  std::lock_guard guard(m_lock);
  clear_fids();
  m_msize = 8192;
  auto refuse = [&](const std::string& why) {
    clear_fids();  // nothing half-loaded
    return base::fail(base::Error("9P session: " + why));
  };
  StateIn in{bytes};
  if (in.u32() != kStateVersion) return refuse("saved in another layout");
  const uint32_t msize = in.u32(), count = in.u32();
  if (!in.ok || msize < kMinMsize || msize > kMaxMsize || count > kMaxFids)
    return refuse("saved msize or fid count out of range");
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t id = in.u32(), depth = in.u32();
    if (!in.ok || depth > kMaxStateDepth) return refuse("saved fid is malformed");
    Fid fid;
    for (uint32_t d = 0; d < depth && in.ok; ++d) {
      std::string name = in.name();
      if (in.ok && check_name(name) != 0)
        return refuse("saved fid " + std::to_string(id) + " has a bad name");
      fid.components.push_back(std::move(name));
    }
    const bool open = in.u8() != 0;
    const uint32_t flags = in.u32();
    if (!in.ok || id == kNoFid || m_fids.count(id)) return refuse("saved fid is malformed");
    const std::string what = "fid " + std::to_string(id) + " (" + joined(fid.components) + ")";
    if (int error = reopen_from_root(fid.components, &fid.path_fd))
      return refuse(what + ": " + std::strerror(error));
    if (open) {
      const int host_flags = host_open_flags(reopen_flags(flags));
      if (host_flags < 0 || (m_read_only && writes(reopen_flags(flags)))) {
        close_fid(fid);
        return refuse(what + ": saved open flags are not ones this share allows");
      }
      struct stat st {};
      if (::fstat(fid.path_fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        close_fid(fid);
        return refuse(what + ": no longer a regular file or directory");
      }
      fid.open_fd = ::open(proc_path(fid.path_fd).c_str(), host_flags & ~O_NOFOLLOW);
      if (fid.open_fd < 0) {
        const int error = errno;
        close_fid(fid);
        return refuse(what + ": " + std::strerror(error));
      }
      fid.open_flags = flags;
    }
    m_fids.emplace(id, std::move(fid));
  }
  if (in.pos != bytes.size()) return refuse("saved state has bytes left over");
  m_msize = msize;
  return {};
}

}  // namespace backends::fs
