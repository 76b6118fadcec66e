#include "security/jail.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

namespace security {
namespace {

namespace fs = std::filesystem;

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// mkdir -p of `path` (absolute) below `root`, 0755.
bool make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  return !ec;
}

// A mount point for `bind` under `root`: a directory, or an empty file.
base::ErrorOr<std::string> mount_point(const std::string& root, const std::string& path, bool directory) {
  std::string target = root + path;
  if (!make_dirs(directory ? target : fs::path(target).parent_path().string()))
    return base::fail(base::Error(errno_text("mkdir " + target)));
  if (!directory) {
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return base::fail(base::Error(errno_text("create " + target)));
    ::close(fd);
  }
  return target;
}

// Binds `source` at root + `path`; read-only binds are remounted read-only (a bind mount takes its
// flags only on a remount). Nothing bound is executable or honours set-uid bits.
base::ErrorOr<void> bind_at(const std::string& root, const std::string& source, const std::string& path,
                            bool directory, bool writable, bool device = false) {
  std::string target = TRY(mount_point(root, path, directory));
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0)
    return base::fail(base::Error(errno_text("bind " + source)));
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC | (device ? 0 : MS_NODEV);
  if (!writable) flags |= MS_RDONLY;
  if (::mount(nullptr, target.c_str(), nullptr, flags, nullptr) != 0)
    return base::fail(base::Error(errno_text("remount " + path)));
  return {};
}

bool write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

constexpr const char* kCgroupRoot = "/sys/fs/cgroup";

// The machine's cgroup v2 (memory.max, cpu.max) with the calling process in it, or in
// `not_applied` the reason it could not be made. Returns its directory ("" when none was made).
std::string cgroup_dir(const JailSpec& spec) {
  return std::string(kCgroupRoot) + "/vmlaunch/" + spec.cgroup_name;
}

// Called by the VMM itself before it leaves the host's mount namespace (it moves itself in).
std::string apply_cgroup(const JailSpec& spec, std::vector<std::string>& not_applied) {
  if (spec.memory_limit == 0 && spec.cpu_limit == 0) return {};
  struct statfs info {};
  if (::statfs(kCgroupRoot, &info) != 0 || info.f_type != CGROUP2_SUPER_MAGIC) {
    not_applied.push_back(
        "cgroup limits (memory, CPU): /sys/fs/cgroup is not a cgroup v2 hierarchy on this host (cgroup v1 "
        "controllers); boot with systemd.unified_cgroup_hierarchy=1 to have them");
    return {};
  }
  std::string parent = std::string(kCgroupRoot) + "/vmlaunch";
  std::string dir = cgroup_dir(spec);
  ::mkdir(parent.c_str(), 0755);
  (void)write_text(std::string(kCgroupRoot) + "/cgroup.subtree_control", "+memory +cpu");
  (void)write_text(parent + "/cgroup.subtree_control", "+memory +cpu");
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    not_applied.push_back("cgroup limits: " + errno_text("mkdir " + dir));
    return {};
  }
  if (spec.memory_limit && !write_text(dir + "/memory.max", std::to_string(spec.memory_limit)))
    not_applied.push_back("cgroup memory limit: " + errno_text("write " + dir + "/memory.max"));
  if (spec.cpu_limit && !write_text(dir + "/cpu.max", std::to_string(spec.cpu_limit * 100000ull) + " 100000"))
    not_applied.push_back("cgroup CPU limit: " + errno_text("write " + dir + "/cpu.max"));
  if (!write_text(dir + "/cgroup.procs", "0"))
    not_applied.push_back("cgroup limits: " + errno_text("write " + dir + "/cgroup.procs"));
  return dir;
}

// In the child: everything from the new namespaces to pivot_root. Any failure ends the child.
base::ErrorOr<void> build_and_enter(const JailSpec& spec, std::vector<std::string>& not_applied) {
  (void)apply_cgroup(spec, not_applied);
  int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (spec.network ? 0 : CLONE_NEWNET);
  if (::unshare(flags) != 0) return base::fail(base::Error(errno_text("unshare")));
  // Nothing mounted here may reach the host's namespace (systemd makes / shared).
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return base::fail(base::Error(errno_text("make / private")));
  const std::string& root = spec.root;
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST)
    return base::fail(base::Error(errno_text("mkdir " + root)));
  if (::mount("vmlaunch-jail", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755") != 0)
    return base::fail(base::Error(errno_text("mount tmpfs on " + root)));
  for (const JailBind& entry : spec.binds)
    TRY(bind_at(root, entry.path, entry.path, entry.directory, entry.writable));
  for (const char* node : {"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"})
    TRY(bind_at(root, node, node, false, true, true));
  for (const std::string& node : spec.devices) TRY(bind_at(root, node, node, false, true, true));
  if (spec.pty) {
    std::string pts = TRY(mount_point(root, "/dev/pts", true));
    if (::mount("devpts", pts.c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620") != 0)
      return base::fail(base::Error(errno_text("mount devpts")));
    if (::symlink("pts/ptmx", (root + "/dev/ptmx").c_str()) != 0)
      return base::fail(base::Error(errno_text("symlink /dev/ptmx")));
  }
  std::string proc = TRY(mount_point(root, "/proc", true));
  if (::mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return base::fail(base::Error(errno_text("mount /proc")));
  if (!spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0)
    return base::fail(base::Error(errno_text("sethostname")));
  // pivot_root with new and old root the same directory, then detach the old one (as runc does):
  // no directory of the host's tree is left to climb back into.
  if (::chdir(root.c_str()) != 0) return base::fail(base::Error(errno_text("chdir " + root)));
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return base::fail(base::Error(errno_text("pivot_root")));
  if (::umount2(".", MNT_DETACH) != 0) return base::fail(base::Error(errno_text("detach the old root")));
  if (::chdir("/") != 0) return base::fail(base::Error(errno_text("chdir /")));
  // The jail's own skeleton (mount points, /dev's files) is read-only from now on.
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    return base::fail(base::Error(errno_text("remount / read-only")));
  return {};
}

}  // namespace

base::ErrorOr<JailEntered> enter_jail(const JailSpec& spec, const std::function<void()>& forked) {
  JailEntered entered;
  if (::geteuid() != 0)
    return base::fail(base::Error("security.jail needs root (vmlaunch runs as uid " +
                                  std::to_string(::geteuid()) +
                                  "): namespaces, mounts and pivot_root are root's; run it as root and set "
                                  "security.user to drop to an unprivileged user afterwards"));
  if (::unshare(CLONE_NEWPID) != 0) return base::fail(base::Error(errno_text("unshare(CLONE_NEWPID)")));
  // The parent's signals are taken with sigwaitinfo (and forwarded); blocked before the fork so
  // none is lost, unblocked again in the child.
  sigset_t relay, old;
  sigemptyset(&relay);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&relay, sig);
  sigprocmask(SIG_BLOCK, &relay, &old);
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return base::fail(base::Error(errno_text("pipe")));
  std::fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) return base::fail(base::Error(errno_text("fork")));
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    ::close(go[1]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a parent killed outright takes the VMM along
    pid_t host_pid = 0;
    if (::read(go[0], &host_pid, sizeof host_pid) != sizeof host_pid) ::_exit(1);  // the parent died
    ::close(go[0]);
    entered.inside = true;
    if (auto built = build_and_enter(spec, entered.not_applied); !built.ok())
      entered.error = "jail: " + built.error().message;
    entered.host_pid = host_pid;
    return entered;
  }
  ::close(go[0]);
  if (forked) forked();
  if (::write(go[1], &child, sizeof child) != sizeof child) ::kill(child, SIGKILL);  // it waits for this
  ::close(go[1]);
  entered.host_pid = child;
  int status = 0;
  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&relay, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      ::kill(child, sig);
      continue;
    }
    pid_t done = ::waitpid(child, &status, WNOHANG);
    if (done == child) break;
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (!spec.cgroup_name.empty()) ::rmdir(cgroup_dir(spec).c_str());  // empty now that the VMM is gone
  entered.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return entered;
}

}  // namespace security
