#include "backends/fs/virtiofsd.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace backends::fs {

namespace {

constexpr int kListenTimeoutMs = 10000;

std::string errno_text() {
  return std::strerror(errno);
}

// In the child, before exec: a private mount namespace where `directory` is a read-only bind mount
// (virtiofsd's own sandbox then pivots into it and inherits the read-only flag).
bool make_read_only_view(const char* directory) {
  if (unshare(CLONE_NEWNS) != 0) return false;
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  if (mount(directory, directory, nullptr, MS_BIND | MS_REC, nullptr) != 0) return false;
  return mount(nullptr, directory, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) == 0;
}

// The end of the daemon's log, for an error that says why it did not start.
std::string log_tail(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buffer[1024];
  off_t size = lseek(fd, 0, SEEK_END);
  off_t from = size > off_t(sizeof buffer) ? size - off_t(sizeof buffer) : 0;
  ssize_t n = pread(fd, buffer, sizeof buffer, from);
  close(fd);
  std::string text(buffer, n > 0 ? size_t(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? std::string() : ": " + text;
}

void sleep_ms(long ms) {
  timespec t{ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&t, nullptr);
}

}  // namespace

base::ErrorOr<std::unique_ptr<Virtiofsd>> Virtiofsd::start(const std::string& directory, bool read_only) {
  const char* override_path = getenv("VMLAUNCH_VIRTIOFSD");
  const std::string binary = override_path && *override_path ? override_path : kVirtiofsdPath;
  if (access(binary.c_str(), X_OK) != 0)
    return base::fail(base::Error("virtiofsd is not installed (" + binary + ": " + errno_text() +
                                  "); install the Debian package qemu-system-common "
                                  "(apt-get install qemu-system-common), or use type: 9p"));
  struct stat st;
  if (stat(directory.c_str(), &st) != 0)
    return base::fail(base::Error("shared directory " + directory + ": " + errno_text()));
  if (!S_ISDIR(st.st_mode))
    return base::fail(base::Error("shared directory " + directory + " is not a directory"));

  std::unique_ptr<Virtiofsd> daemon(new Virtiofsd());
  daemon->m_read_only = read_only;
  char tmpl[] = "/tmp/vmlaunch-virtiofsd.XXXXXX";
  if (!mkdtemp(tmpl))
    return base::fail(base::Error(std::string("creating the virtiofsd socket directory: ") + errno_text()));
  daemon->m_dir = tmpl;
  const std::string socket_path = daemon->m_dir + "/vhost-user.sock";
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(address.sun_path))
    return base::fail(base::Error("virtiofsd socket path too long"));
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);

  // The daemon's messages go to a log in the private directory: it is chatty at shutdown
  // ("fv_remove_watch: TODO!"), and a start failure quotes the log's end instead.
  const std::string log_path = daemon->m_dir + "/virtiofsd.log";
  int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log < 0) return base::fail(base::Error("creating " + log_path + ": " + errno_text()));
  // Everything the child needs is built before fork (no allocation after it).
  std::vector<std::string> args = {
      binary,          "--socket-path=" + socket_path, "-o", "source=" + directory, "-o", "cache=auto", "-o",
      "log_level=warn"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) close(log);
  if (pid < 0) return base::fail(base::Error(std::string("starting virtiofsd: fork: ") + errno_text()));
  if (pid == 0) {
    // The daemon must not outlive vmlaunch, however vmlaunch ends.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    dup2(log, 1);
    dup2(log, 2);
    if (read_only && !make_read_only_view(directory.c_str())) {
      static const char msg[] = "vmlaunch: virtiofsd: cannot make the read-only view of the share\n";
      [[maybe_unused]] ssize_t n = write(2, msg, sizeof msg - 1);
      _exit(126);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  daemon->m_pid = pid;

  // Wait for the daemon to listen: connect until it accepts, it exits, or the deadline passes.
  for (int waited = 0;; waited += 10) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return base::fail(base::Error(std::string("virtiofsd socket: ") + errno_text()));
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
      daemon->m_socket = fd;
      break;
    }
    close(fd);
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      daemon->m_pid = -1;
      std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                          : "signal " + std::to_string(WTERMSIG(status));
      return base::fail(base::Error("virtiofsd (" + binary + ") ended before listening (" + how + ")" +
                                    log_tail(log_path)));
    }
    if (waited >= kListenTimeoutMs)
      return base::fail(
          base::Error("virtiofsd did not listen on " + socket_path + " within 10 s" + log_tail(log_path)));
    sleep_ms(10);
  }
  return daemon;
}

int Virtiofsd::take_vhost_user_socket() {
  int fd = m_socket;
  m_socket = -1;
  return fd;
}

Virtiofsd::~Virtiofsd() {
  if (m_socket >= 0) close(m_socket);
  if (m_pid > 0) {
    // virtiofsd exits when its frontend disconnects; SIGTERM covers a device that never connected
    // or is still open, SIGKILL one that ignores it.
    kill(m_pid, SIGTERM);
    int status;
    for (int waited = 0; waitpid(m_pid, &status, WNOHANG) == 0; waited += 10) {
      if (waited == 3000) kill(m_pid, SIGKILL);
      sleep_ms(10);
    }
  }
  if (!m_dir.empty()) {
    unlink((m_dir + "/vhost-user.sock").c_str());
    unlink((m_dir + "/virtiofsd.log").c_str());
    rmdir(m_dir.c_str());
  }
}

}  // namespace backends::fs
