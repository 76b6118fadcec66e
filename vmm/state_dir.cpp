#include "vmm/state_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/fd_io.h"

namespace vmm {
namespace fs = std::filesystem;

namespace {

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::string read_small(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string text(64 * 1024, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

base::Result<void, base::Error> make_private_dir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return base::fail(errno_text("mkdir " + dir.string()));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return base::fail(errno_text("stat " + dir.string()));
  if (!S_ISDIR(st.st_mode)) return base::fail(base::Error(dir.string() + " is not a directory"));
  // A state directory someone else owns could feed us their pids and sockets.
  if (st.st_uid != ::getuid())
    return base::fail(base::Error(dir.string() + " belongs to another user; set VMLAUNCH_STATE_DIR"));
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0)
    return base::fail(errno_text("chmod " + dir.string()));
  return {};
}

// The VMM holds run.lock exclusively while it lives; if we can take it, nobody does.
bool run_lock_held(const fs::path& dir) {
  int fd = ::open((dir / "run.lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

constexpr double kStartupGrace = 30;

enum class Probe { Answers, Missing, Refused };

// connect() alone: a listening socket accepts into its backlog at once, so this never waits on the VMM.
// A VMM whose server hangs is caught by the clients' reply timeouts instead (down kills it).
Probe socket_answers(const fs::path& socket) {
  std::error_code ec;
  if (!fs::exists(socket, ec)) return Probe::Missing;
  auto path = SocketPath::of(socket);
  if (!path.ok()) return Probe::Refused;
  auto address = path.value().address();
  if (!address.ok()) return Probe::Refused;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Probe::Refused;
  bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&address.value()), sizeof(sockaddr_un)) == 0;
  ::close(fd);
  return ok ? Probe::Answers : Probe::Refused;
}

}  // namespace

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

base::Result<void, base::Error> check_name(std::string_view name) {
  if (name.empty()) return base::fail(base::Error("the machine name is empty"));
  if (name.size() > kMaxNameLength)
    return base::fail(base::Error("machine name \"" + std::string(name) + "\" is longer than " +
                                  std::to_string(kMaxNameLength) + " characters (use --name)"));
  auto ok = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  };
  if (!std::isalnum(static_cast<unsigned char>(name[0])) || !std::all_of(name.begin(), name.end(), ok))
    return base::fail(
        base::Error("machine name \"" + std::string(name) +
                    "\" may use only letters, digits, '.', '_' and '-', starting with a letter or digit"));
  return {};
}

base::ErrorOr<fs::path> state_root() {
  fs::path root;
  if (const char* env = std::getenv("VMLAUNCH_STATE_DIR"); env && *env) {
    root = env;
  } else if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) {
    root = fs::path(xdg) / "vmlaunch";
  } else if (::geteuid() == 0) {
    root = "/run/vmlaunch";
  } else {
    std::error_code ec;
    fs::path tmp = fs::temp_directory_path(ec);
    if (ec) tmp = "/tmp";
    root = tmp / ("vmlaunch-" + std::to_string(::getuid()));
  }
  std::error_code ec;
  fs::create_directories(root.parent_path(), ec);
  TRY(make_private_dir(root));
  return root;
}

std::string host_boot_id() {
  std::string id = read_small("/proc/sys/kernel/random/boot_id");
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

MachineRecord read_record(const fs::path& root, const std::string& name) {
  MachineRecord record;
  record.name = name;
  record.dir = root / name;
  record.state = "stale";
  auto info = nlohmann::json::parse(read_small(record.dir / "machine.json"), nullptr, false);
  if (info.is_object()) {
    auto get = [&](const char* key, auto fallback) {
      auto it = info.find(key);
      using T = decltype(fallback);
      if (it == info.end()) return fallback;
      if constexpr (std::is_same_v<T, std::string>) {
        return it->is_string() ? it->template get<std::string>() : fallback;
      } else {
        return it->is_number() ? it->template get<T>() : fallback;
      }
    };
    record.pid = get("pid", 0L);
    record.boot_id = get("boot_id", std::string());
    record.started_at = get("started_at", 0.0);
    record.config_path = get("config", std::string());
    record.accelerator = get("accelerator", std::string());
    record.vcpus = get("vcpus", 0U);
    record.memory = get("memory", 0ULL);
  }
  auto exit = nlohmann::json::parse(read_small(record.dir / "exit.json"), nullptr, false);
  bool same_boot = !record.boot_id.empty() && record.boot_id == host_boot_id();
  bool pid_alive = record.pid > 0 && (::kill(static_cast<pid_t>(record.pid), 0) == 0 || errno == EPERM);
  record.vmm_alive = same_boot && pid_alive && run_lock_held(record.dir);
  if (record.vmm_alive) {
    switch (socket_answers(record.dir / "control.sock")) {
      case Probe::Answers:
        record.state = "running";
        break;
      case Probe::Missing:
        if (now_seconds() - record.started_at < kStartupGrace) {
          record.state = "starting";
          break;
        }
        record.stale_reason = "its control socket is gone";
        break;
      case Probe::Refused:
        record.stale_reason = "its control socket refuses connections";
        break;
    }
  } else if (exit.is_object() && exit.contains("status") && exit["status"].is_number_integer()) {
    record.state = "stopped";
    record.exit_status = exit["status"].get<int>();
    if (exit.contains("reason") && exit["reason"].is_string())
      record.exit_reason = exit["reason"].get<std::string>();
  } else if (record.pid == 0) {
    record.stale_reason = "its record is incomplete";
  } else if (!same_boot) {
    record.stale_reason = "it ran before this host booted";
  } else {
    record.stale_reason = "its VMM (pid " + std::to_string(record.pid) + ") is gone";
  }
  return record;
}

std::vector<MachineRecord> list_records(const fs::path& root) {
  std::vector<MachineRecord> records;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (!entry.is_directory(ec) || !check_name(name).ok()) continue;
    records.push_back(read_record(root, name));
  }
  std::sort(records.begin(), records.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return records;
}

base::ErrorOr<NameLock> NameLock::acquire(const fs::path& root, const std::string& name) {
  fs::path path = root / ("." + name + ".lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return base::fail(errno_text("open " + path.string()));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    base::Error error(errno_text("lock " + path.string()));
    ::close(fd);
    return base::fail(error);
  }
  return NameLock(fd);
}

std::optional<NameLock> NameLock::try_acquire(const fs::path& root, const std::string& name) {
  fs::path path = root / ("." + name + ".lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return std::nullopt;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  return NameLock(fd);
}

NameLock::~NameLock() {
  if (m_fd >= 0) ::close(m_fd);
}

void NameLock::forget_in_child() {
  // Closing our copy of the descriptor is enough: the lock stays with the parent's copy until it exits.
  if (m_fd >= 0) ::close(m_fd);
  m_fd = -1;
}

base::Result<void, base::Error> remove_machine_dir(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return base::fail(base::Error("remove " + dir.string() + ": " + ec.message()));
  return {};
}

base::Result<void, base::Error> write_file_atomic(const fs::path& path, std::string_view text) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return base::fail(errno_text("create " + tmp.string()));
  if (!base::write_all(fd, text)) {
    base::Error error(errno_text("write " + tmp.string()));
    ::close(fd);
    return base::fail(error);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return base::fail(errno_text("rename to " + path.string()));
  return {};
}

base::Result<void, base::Error> hold_run_lock(const fs::path& dir) {
  fs::path path = dir / "run.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return base::fail(errno_text("open " + path.string()));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    base::Error error(errno_text("lock " + path.string()));
    ::close(fd);
    return base::fail(error);
  }
  return {};  // fd stays open: the lock lives exactly as long as this process
}

base::ErrorOr<SocketPath> SocketPath::of(const fs::path& socket) {
  std::string path = socket.string();
  if (path.size() < sizeof(sockaddr_un::sun_path)) return SocketPath(path, -1);
  // Deep temporary directories (Bazel's TEST_TMPDIR) overflow sun_path; a directory fd does not.
  int fd = ::open(socket.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return base::fail(errno_text("open " + socket.parent_path().string()));
  return SocketPath("/proc/self/fd/" + std::to_string(fd) + "/" + socket.filename().string(), fd);
}

SocketPath::~SocketPath() {
  if (m_dir_fd >= 0) ::close(m_dir_fd);
}

base::ErrorOr<sockaddr_un> SocketPath::address() const {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (m_path.size() >= sizeof(address.sun_path))
    return base::fail(base::Error("socket path too long: " + m_path));
  std::memcpy(address.sun_path, m_path.c_str(), m_path.size() + 1);
  return address;
}

base::ErrorOr<int> listen_private(const fs::path& socket, int backlog) {
  auto path = TRY(SocketPath::of(socket));
  sockaddr_un address = TRY(path.address());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return base::fail(errno_text("socket"));
  ::unlink(socket.c_str());
  mode_t old_mask = ::umask(0177);
  int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::umask(old_mask);
  if (bound != 0 || ::listen(fd, backlog) != 0) {
    base::Error error(errno_text((bound != 0 ? "bind " : "listen ") + socket.string()));
    ::close(fd);
    return base::fail(error);
  }
  return fd;
}

}  // namespace vmm

namespace vmm {

base::Result<PendingFile, base::Error> PendingFile::create(const fs::path& path) {
  fs::path tmp = path;
  tmp += ".tmp";
  const fs::path parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  int dir_fd = ::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return base::fail(errno_text("open " + parent.string()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    base::Error error(errno_text("create " + tmp.string()));
    ::close(dir_fd);
    return base::fail(error);
  }
  return PendingFile(path, dir_fd, fd);
}

PendingFile::PendingFile(PendingFile&& other) noexcept
    : m_path(std::move(other.m_path)), m_dir_fd(other.m_dir_fd), m_fd(other.m_fd) {
  other.m_dir_fd = other.m_fd = -1;
}

PendingFile::~PendingFile() {
  if (m_fd >= 0) {
    ::close(m_fd);
    std::string tmp = m_path.filename().string() + ".tmp";
    ::unlinkat(m_dir_fd, tmp.c_str(), 0);  // never committed
  }
  if (m_dir_fd >= 0) ::close(m_dir_fd);
}

base::Result<void, base::Error> PendingFile::commit(std::string_view text) {
  if (m_fd < 0) return base::fail(base::Error("commit " + m_path.string() + ": already committed"));
  std::string tmp = m_path.filename().string() + ".tmp";
  if (!base::write_all(m_fd, text)) return base::fail(errno_text("write " + tmp));
  ::close(m_fd);
  m_fd = -1;
  std::string name = m_path.filename().string();
  if (::renameat(m_dir_fd, tmp.c_str(), m_dir_fd, name.c_str()) != 0)
    return base::fail(errno_text("rename to " + m_path.string()));
  return {};
}

}  // namespace vmm
