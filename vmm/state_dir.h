// Where a machine that outlives its terminal keeps its state, and how anyone tells whether that state
// is still true. One directory per machine, 0700:
//
//   ROOT/NAME/machine.json   pid, host boot id, start time, config path, accelerator, vCPUs, memory
//   ROOT/NAME/config.json    the effective (merged, interpolated) config the machine runs
//   ROOT/NAME/graph.json     the resolved device graph (render_json), for inspect after it stopped
//   ROOT/NAME/run.lock       held (flock) by the VMM for its whole life: the liveness test that
//                            survives kill -9 and pid reuse, since the kernel drops it with the process
//   ROOT/NAME/control.sock   the control socket (0600)
//   ROOT/NAME/console.log    console output, size-capped (one rotation: console.log.1)
//   ROOT/NAME/events.log     one JSON object per line
//   ROOT/NAME/exit.json      written when the VMM ends: how the machine stopped
//   ROOT/NAME/vmm.log        the detached VMM's own stderr
//
// ROOT is $VMLAUNCH_STATE_DIR, else $XDG_RUNTIME_DIR/vmlaunch, else /run/vmlaunch for root, else
// TMPDIR/vmlaunch-UID (created 0700 and refused if another user owns it).
#pragma once

#include <sys/un.h>

#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vmm {

inline constexpr size_t kMaxNameLength = 48;

// Names become directory and socket path components: [A-Za-z0-9][A-Za-z0-9._-]{0,47}.
base::Result<void, base::Error> check_name(std::string_view name);

// The state root (created 0700 if missing).
base::ErrorOr<std::filesystem::path> state_root();

// This host's boot id (/proc/sys/kernel/random/boot_id), empty if unreadable.
std::string host_boot_id();

// What the directory says about one machine.
struct MachineRecord {
  std::string name;
  std::filesystem::path dir;
  // running: the VMM holds run.lock, its pid lives, the boot id is this boot's and its control socket
  // accepts connections. starting: all that but the socket is not there yet (first seconds only).
  // stopped: the VMM ended and said how (exit.json). stale: anything else (killed, other boot,
  // half-written, socket gone or refusing).
  std::string state;
  std::string stale_reason;  // stale: why, for ps and down
  // The VMM process itself still lives (it holds run.lock): a stale one must be killed, not forgotten.
  bool vmm_alive = false;
  long pid = 0;
  std::string boot_id;
  double started_at = 0;  // seconds since the epoch
  std::string config_path;
  std::string accelerator;
  unsigned vcpus = 0;
  unsigned long long memory = 0;  // bytes
  std::string exit_reason;        // stopped: "poweroff", "stop", "error: ..."
  int exit_status = -1;           // stopped: the status `up` would have exited with
};

// Reads ROOT/NAME without trusting it; never fails (a broken directory is "stale").
MachineRecord read_record(const std::filesystem::path& root, const std::string& name);
// Every machine directory under ROOT, sorted by name.
std::vector<MachineRecord> list_records(const std::filesystem::path& root);

// An exclusive flock on ROOT/.NAME.lock, serialising everyone who creates or removes NAME.
class NameLock {
 public:
  static base::ErrorOr<NameLock> acquire(const std::filesystem::path& root, const std::string& name);
  // Without waiting: nullopt when someone else holds it (or it cannot be opened).
  static std::optional<NameLock> try_acquire(const std::filesystem::path& root, const std::string& name);
  NameLock(NameLock&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
  NameLock& operator=(NameLock&&) = delete;
  ~NameLock();
  // The child of a fork must not keep the parent's lock alive.
  void forget_in_child();

 private:
  explicit NameLock(int fd) : m_fd(fd) {}
  int m_fd;
};

// Removes a machine directory that is not running (call with the NameLock held).
base::Result<void, base::Error> remove_machine_dir(const std::filesystem::path& dir);

// Writes `text` to `path` atomically (temporary file + rename), mode 0600.
base::Result<void, base::Error> write_file_atomic(const std::filesystem::path& path, std::string_view text);

// write_file_atomic in two steps: the temporary file is created now, written and renamed into place
// by commit(). For files written after the VMM is confined (exit.json), where creating files is
// no longer allowed but renaming one it holds is.
class PendingFile {
 public:
  static base::Result<PendingFile, base::Error> create(const std::filesystem::path& path);
  PendingFile(PendingFile&& other) noexcept;
  PendingFile& operator=(PendingFile&&) = delete;
  ~PendingFile();
  base::Result<void, base::Error> commit(std::string_view text);

 private:
  PendingFile(std::filesystem::path path, int dir_fd, int fd)
      : m_path(std::move(path)), m_dir_fd(dir_fd), m_fd(fd) {}
  std::filesystem::path m_path;
  int m_dir_fd = -1;  // the directory, held so commit() renames within it whatever its path allows later
  int m_fd = -1;
};

// Takes ROOT/NAME/run.lock for the life of this process (the fd is kept open on purpose).
base::Result<void, base::Error> hold_run_lock(const std::filesystem::path& dir);

// A sockaddr_un path for `socket` that fits 108 bytes: the path itself, or /proc/self/fd/N/BASENAME
// through a directory fd, which must stay open until bind() or connect() returns (and no longer).
class SocketPath {
 public:
  static base::ErrorOr<SocketPath> of(const std::filesystem::path& socket);
  SocketPath(SocketPath&& other) noexcept : m_path(std::move(other.m_path)), m_dir_fd(other.m_dir_fd) {
    other.m_dir_fd = -1;
  }
  SocketPath& operator=(SocketPath&&) = delete;
  ~SocketPath();
  const std::string& path() const { return m_path; }
  // The address to bind or connect to while this object lives; fails when even the short form
  // does not fit sun_path.
  base::ErrorOr<sockaddr_un> address() const;

 private:
  SocketPath(std::string path, int dir_fd) : m_path(std::move(path)), m_dir_fd(dir_fd) {}
  std::string m_path;
  int m_dir_fd;
};

// A listening unix stream socket at `socket` (non-blocking, close-on-exec; a stale file there is
// replaced), born mode 0600: nobody else may connect, not even between bind and a chmod. Used by
// the control and console sockets of a machine's directory.
base::ErrorOr<int> listen_private(const std::filesystem::path& socket, int backlog);

double now_seconds();

}  // namespace vmm
