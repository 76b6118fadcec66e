// The filters for real: each role's filter, installed in a forked child, kills the child with
// SIGSYS and the message when a thread of that role makes a call outside its list, and lets the
// calls on its list through. Children keep the test process itself unfiltered.
#include "security/policy.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

namespace {

struct ChildResult {
  int status = 0;
  std::string stderr_text;
  bool killed_by(int sig) const { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }
  bool exited(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
};

// Runs `body` in a forked child with stderr captured; the child exits with body's return value.
ChildResult in_child(const std::function<int()>& body) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::_exit(body());
  }
  ::close(pipe_fds[1]);
  ChildResult result;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) result.stderr_text.append(buffer, n);
  ::close(pipe_fds[0]);
  ::waitpid(pid, &result.status, 0);
  return result;
}

security::PolicyContext context() {
  security::PolicyContext c;
  c.pid = static_cast<int>(::getpid());  // the child's: called in the child
  return c;
}

// A thread of `role` makes `call` once the filters are armed; returns the child's result. The thread
// runs before arming (as backend and server threads do), unless `after` (as vCPU and device threads
// do: they then also inherit the filter of the thread that started them).
ChildResult thread_call(security::Role role, security::SeccompMode mode, const std::function<void()>& call,
                        security::PolicyContext (*make_context)() = context, bool after = false) {
  return in_child([&] {
    std::atomic<int> stage{0};
    auto body = [&] {
      security::ThreadRole declared(role);
      int expected = 0;
      stage.compare_exchange_strong(expected, 1);  // never undoes the go (2) of a thread started late
      while (stage.load() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      call();
    };
    std::thread thread;
    if (!after) {
      thread = std::thread(body);
      while (stage.load() != 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto armed = security::arm(mode, make_context());
    if (!armed.ok()) {
      (void)!::write(STDERR_FILENO, armed.error().message.data(), armed.error().message.size());
      stage = 2;
      if (thread.joinable()) thread.join();
      return 3;
    }
    if (after) thread = std::thread(body);
    stage = 2;
    thread.join();
    return 0;
  });
}

}  // namespace

TEST_CASE("every role's list resolves on this architecture and compiles to a filter") {
  security::PolicyContext wide;
  wide.jit_code = wide.p9_shares = wide.user_net = true;
  for (size_t i = 0; i < security::kRoleCount; ++i) {
    auto role = static_cast<security::Role>(i);
    CAPTURE(security::role_name(role));
    security::AllowList list = security::effective_list(role, wide);
    CHECK(list.unknown().empty());
    CHECK(list.syscall_count() > 10);
  }
  for (const security::RoleSize& size : security::role_sizes({}))
    CHECK_MESSAGE(size.syscalls < 120, security::role_name(size.role));
  // Arming compiles every role's program (strict and log) in a child.
  CHECK(in_child([] {
          return security::arm(security::SeccompMode::Strict, context()).ok() ? 0 : 1;
        }).exited(0));
  CHECK(in_child([] { return security::arm(security::SeccompMode::Log, context()).ok() ? 0 : 1; }).exited(0));
}

TEST_CASE("a forbidden call on a thread of each role kills the process with SIGSYS, naming call and thread") {
  for (size_t i = 0; i < security::kRoleCount; ++i) {
    auto role = static_cast<security::Role>(i);
    if (role == security::Role::Main) continue;  // the next case
    CAPTURE(security::role_name(role));
    // getppid: no role has a reason for it.
    ChildResult result = thread_call(
        role, security::SeccompMode::Strict, [] { (void)::syscall(SYS_getppid); }, context, i % 2);
    CHECK(result.killed_by(SIGSYS));
    CHECK(result.stderr_text.find(std::string("thread ") + security::thread_name(role) + " (role " +
                                  security::role_name(role)) != std::string::npos);
    CHECK(result.stderr_text.find("forbidden system call getppid (") != std::string::npos);
  }
}

TEST_CASE("the main thread is filtered once armed, and its forbidden calls kill too") {
  ChildResult result = in_child([] {
    if (!security::arm(security::SeccompMode::Strict, context()).ok()) return 3;
    (void)::syscall(SYS_getppid);
    return 0;
  });
  CHECK(result.killed_by(SIGSYS));
  CHECK(result.stderr_text.find("thread vmlaunch (role main") != std::string::npos);
}

TEST_CASE("threads already running when armed get their role's filter") {
  ChildResult result = in_child([] {
    std::atomic<int> stage{0};
    std::thread early([&] {
      security::ThreadRole declared(security::Role::Net);
      stage = 1;
      while (stage.load() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      (void)::syscall(SYS_getppid);  // after arming: forbidden
    });
    while (stage.load() != 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!security::arm(security::SeccompMode::Strict, context()).ok()) return 3;
    // /proc agrees: the running thread is in filter mode.
    for (const security::ThreadInfo& info : security::declared_threads())
      if (!info.filtered) return 4;
    stage = 2;
    early.join();
    return 0;
  });
  CHECK(result.killed_by(SIGSYS));
  CHECK(result.stderr_text.find("thread vml-net (role net") != std::string::npos);
}

TEST_CASE("a thread started after arming installs its own role's filter on top of its parent's") {
  // Reading a file is on the main thread's list (boot images on reboot), not on a vCPU's: a vCPU
  // started by the armed main thread is refused it only if it installed its own filter.
  auto read_open = [] {
    int fd = ::open("/etc/hostname", O_RDONLY);
    if (fd >= 0) ::close(fd);
  };
  ChildResult vcpu =
      thread_call(security::Role::Vcpu, security::SeccompMode::Strict, read_open, context, true);
  CHECK(vcpu.killed_by(SIGSYS));
  CHECK(vcpu.stderr_text.find("thread vml-vcpu (role vcpu") != std::string::npos);
  CHECK(thread_call(security::Role::Main, security::SeccompMode::Strict, read_open, context, true).exited(0));
}

TEST_CASE("log mode lets forbidden calls through") {
  ChildResult result = thread_call(security::Role::Vcpu, security::SeccompMode::Log, [] {
    if (::syscall(SYS_getppid) <= 0) ::_exit(5);
  });
  CHECK(result.exited(0));
}

TEST_CASE("argument filters: vCPU threads map no executable memory, open nothing, make no sockets") {
  auto exec_map = [] {
    (void)::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  };
  CHECK(thread_call(security::Role::Vcpu, security::SeccompMode::Strict, exec_map).killed_by(SIGSYS));
  auto data_map = [] {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) ::_exit(6);
  };
  CHECK(thread_call(security::Role::Vcpu, security::SeccompMode::Strict, data_map).exited(0));
  auto open_file = [] { (void)::open("/etc/hostname", O_RDONLY); };
  ChildResult opened = thread_call(security::Role::Vcpu, security::SeccompMode::Strict, open_file);
  CHECK(opened.killed_by(SIGSYS));
  CHECK(opened.stderr_text.find("openat") != std::string::npos);
  auto netlink = [] { (void)::socket(AF_NETLINK, SOCK_RAW, 0); };
  CHECK(thread_call(security::Role::Net, security::SeccompMode::Strict, netlink).killed_by(SIGSYS));
  auto inet = [] {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) ::_exit(7);
    ::close(fd);
  };
  ChildResult made = thread_call(security::Role::Net, security::SeccompMode::Strict, inet);
  CAPTURE(made.status);
  CAPTURE(made.stderr_text);
  CHECK(made.exited(0));
  // Processes are never started: fork is clone without CLONE_THREAD.
  auto fork_call = [] { (void)::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); };
  CHECK(thread_call(security::Role::Main, security::SeccompMode::Strict, fork_call).killed_by(SIGSYS));
  // The main thread reads boot files again on a reboot, but writes none.
  auto write_open = [] { (void)::open("/tmp/vmlaunch-seccomp-test", O_WRONLY | O_CREAT | O_TRUNC, 0600); };
  CHECK(thread_call(security::Role::Main, security::SeccompMode::Strict, write_open).killed_by(SIGSYS));
  auto read_open = [] {
    int fd = ::open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
  };
  CHECK(thread_call(security::Role::Main, security::SeccompMode::Strict, read_open).exited(0));
}

TEST_CASE("malloc's overcommit probe fails softly; other opens still kill") {
  auto probe = [] {
    int fd = ::open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 || errno != EACCES) ::_exit(11);
  };
  CHECK(thread_call(security::Role::Control, security::SeccompMode::Strict, probe).exited(0));
  auto write_open = [] { (void)::open("/tmp/vmlaunch-seccomp-test", O_WRONLY | O_CREAT | O_CLOEXEC, 0600); };
  CHECK(thread_call(security::Role::Control, security::SeccompMode::Strict, write_open).killed_by(SIGSYS));
}

TEST_CASE("the snapshot writer creates files write-only and opens nothing read-write") {
  auto write_open = [] {
    int fd = ::open("/tmp/vmlaunch-seccomp-snapshot-test", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) ::_exit(12);
    ::close(fd);
    ::unlink("/tmp/vmlaunch-seccomp-snapshot-test");
  };
  CHECK(thread_call(security::Role::Snapshot, security::SeccompMode::Strict, write_open).exited(0));
  auto read_write_open = [] { (void)::open("/etc/hostname", O_RDWR | O_CLOEXEC); };
  CHECK(thread_call(security::Role::Snapshot, security::SeccompMode::Strict, read_write_open).killed_by(SIGSYS));
}

TEST_CASE("the translator's code cache is W^X: read-execute yes, write-execute never") {
  auto jit = [] {
    security::PolicyContext c = context();
    c.jit_code = true;
    return c;
  };
  auto rx = [] {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || ::mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0) ::_exit(8);
  };
  CHECK(thread_call(security::Role::Translator, security::SeccompMode::Strict, rx, jit).exited(0));
  auto wx = [] { (void)::mmap(nullptr, 4096, PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); };
  CHECK(thread_call(security::Role::Translator, security::SeccompMode::Strict, wx, jit).killed_by(SIGSYS));
  // Without the LLVM tier, not even read-execute.
  CHECK(thread_call(security::Role::Translator, security::SeccompMode::Strict, rx).killed_by(SIGSYS));
}

TEST_CASE("a thread without a role keeps the filters from being armed") {
  ChildResult result = in_child([] {
    std::atomic<bool> done{false};
    std::thread anonymous([&] {
      while (!done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    auto armed = security::arm(security::SeccompMode::Strict, context());
    done = true;
    anonymous.join();
    if (armed.ok()) return 0;
    (void)!::write(STDERR_FILENO, armed.error().message.data(), armed.error().message.size());
    return 9;
  });
  CHECK(result.exited(9));
  CHECK(result.stderr_text.find("runs without a role") != std::string::npos);
}

TEST_CASE("modes parse and unknown ones name the choices") {
  CHECK(security::parse_mode("strict").value() == security::SeccompMode::Strict);
  CHECK(security::parse_mode("log").value() == security::SeccompMode::Log);
  CHECK(security::parse_mode("off").value() == security::SeccompMode::Off);
  auto bad = security::parse_mode("lax");
  REQUIRE(!bad.ok());
  CHECK(bad.error().message.find("strict, log, off") != std::string::npos);
}
