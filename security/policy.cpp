#include "security/policy.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

namespace security {

namespace {

// The call a SIGSYS handler makes to end the process: the filter kills the whole process on it,
// with SIGSYS, so the parent (a supervisor, `up -d`'s waiter, a test) sees why it died.
const char* const kDeathCall = "kexec_file_load";
int g_death_nr = -1;

// Async-signal-safe lookups for the handler, filled before arming.
constexpr int kMaxSyscall = 512;
const char* g_syscall_names[kMaxSyscall] = {};
std::atomic<int> g_event_fd{-1};

// The signal that asks a running thread to install its filter (SIGRTMIN+2 is the vCPU kick).
int arm_signal() {
  return SIGRTMIN + 5;
}

// Minimal formatting for the handler (no printf in signal context).
struct Line {
  char text[512];
  size_t size = 0;
  void add(const char* s) {
    while (*s && size < sizeof text - 1) text[size++] = *s++;
  }
  void add_number(long long value) {
    char digits[24];
    int n = 0;
    bool negative = value < 0;
    unsigned long long v = negative ? static_cast<unsigned long long>(-value) : value;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v && n < 23);
    if (negative) add("-");
    while (n > 0 && size < sizeof text - 1) text[size++] = digits[--n];
  }
};

void write_line(int fd, const Line& line) {
  size_t done = 0;
  while (done < line.size) {
    ssize_t n = ::write(fd, line.text + done, line.size - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void on_sigsys(int, siginfo_t* info, void*) {
  int nr = info->si_syscall;
  const char* name = nr >= 0 && nr < kMaxSyscall && g_syscall_names[nr] ? g_syscall_names[nr] : "unknown";
  const char* role = current_role_name();
  if (!role) role = "none";
  int tid = static_cast<int>(::syscall(SYS_gettid));
  Line line;
  line.add("vmlaunch: seccomp: thread ");
  line.add(current_thread_name());
  line.add(" (role ");
  line.add(role);
  line.add(", tid ");
  line.add_number(tid);
  line.add(") made the forbidden system call ");
  line.add(name);
  line.add(" (");
  line.add_number(nr);
  line.add("); stopping the machine\n");
  write_line(STDERR_FILENO, line);
  int events = g_event_fd.load();
  if (events >= 0) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    Line event;
    event.add("{\"event\":\"SECCOMP_VIOLATION\",\"data\":{\"syscall\":\"");
    event.add(name);
    event.add("\",\"number\":");
    event.add_number(nr);
    event.add(",\"role\":\"");
    event.add(role);
    event.add("\",\"tid\":");
    event.add_number(tid);
    event.add("},\"timestamp\":");
    event.add_number(now.tv_sec);
    event.add("}\n");
    write_line(events, event);
  }
  ::syscall(g_death_nr, 0, 0, 0, 0, 0);  // the filter kills the process here
  ::_exit(1);                            // only if it did not (it always does)
}

void on_arm_signal(int, siginfo_t*, void*) {
  int saved = errno;
  (void)detail::install_for_current_thread();
  errno = saved;
}

uint32_t default_action(SeccompMode mode) {
  return mode == SeccompMode::Log ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
}

// The BPF program of one role, exported from libseccomp.
base::ErrorOr<std::vector<sock_filter>> compile(Role role, SeccompMode mode, const PolicyContext& context) {
  AllowList list = effective_list(role, context);
  if (!list.unknown().empty())
    return base::fail(base::Error(std::string("seccomp: unknown system call in the ") + role_name(role) +
                                  " list: " + list.unknown().front()));
  scmp_filter_ctx filter = seccomp_init(default_action(mode));
  if (!filter) return base::fail(base::Error("seccomp_init failed"));
  auto release = [&] { seccomp_release(filter); };
  // Unconditional rules make conditional ones of the same call redundant (libseccomp refuses
  // mixing), and a call with any allow rule drops its refusals (they are fallbacks for glibc).
  std::set<int> unconditional, allowed;
  for (const AllowRule& rule : list.rules()) {
    if (rule.refuse_errno) continue;
    allowed.insert(rule.syscall);
    if (rule.args.empty()) unconditional.insert(rule.syscall);
  }
  std::set<std::pair<int, std::string>> added;
  for (const AllowRule& rule : list.rules()) {
    if (rule.refuse_errno && allowed.count(rule.syscall)) continue;
    if (!rule.args.empty() && unconditional.count(rule.syscall)) continue;
    std::string key(reinterpret_cast<const char*>(rule.args.data()), rule.args.size() * sizeof(scmp_arg_cmp));
    if (!added.insert({rule.syscall, key}).second) continue;
    uint32_t action =
        rule.refuse_errno ? SCMP_ACT_ERRNO(static_cast<uint32_t>(rule.refuse_errno)) : SCMP_ACT_ALLOW;
    int rc = seccomp_rule_add_array(filter, action, rule.syscall, static_cast<unsigned>(rule.args.size()),
                                    rule.args.empty() ? nullptr : rule.args.data());
    if (rc != 0) {
      char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, rule.syscall);
      std::string text = std::string("seccomp: ") + role_name(role) + " list: rule for " +
                         (name ? name : "?") + ": " + std::strerror(-rc);
      free(name);
      release();
      return base::fail(base::Error(text));
    }
  }
  if (mode == SeccompMode::Strict) {
    if (int rc = seccomp_rule_add(filter, SCMP_ACT_KILL_PROCESS, g_death_nr, 0); rc != 0) {
      release();
      return base::fail(base::Error(std::string("seccomp: the kill rule: ") + std::strerror(-rc)));
    }
  }
  // The filter's own installation needs no_new_privs, which install_for_current_thread sets.
  seccomp_attr_set(filter, SCMP_FLTATR_CTL_NNP, 0);
  int memfd = ::memfd_create("vmlaunch-seccomp", MFD_CLOEXEC);
  if (memfd < 0) {
    release();
    return base::fail(base::Error(std::string("seccomp: memfd_create: ") + std::strerror(errno)));
  }
  int rc = seccomp_export_bpf(filter, memfd);
  release();
  std::vector<sock_filter> program;
  if (rc == 0) {
    off_t size = ::lseek(memfd, 0, SEEK_END);
    program.resize(static_cast<size_t>(size) / sizeof(sock_filter));
    if (::pread(memfd, program.data(), program.size() * sizeof(sock_filter), 0) !=
        static_cast<ssize_t>(program.size() * sizeof(sock_filter)))
      rc = -EIO;
  }
  ::close(memfd);
  if (rc != 0) return base::fail(base::Error(std::string("seccomp: export: ") + std::strerror(-rc)));
  return program;
}

}  // namespace

const char* mode_name(SeccompMode mode) {
  switch (mode) {
    case SeccompMode::Strict:
      return "strict";
    case SeccompMode::Log:
      return "log";
    case SeccompMode::Off:
      return "off";
  }
  return "?";
}

base::ErrorOr<SeccompMode> parse_mode(std::string_view text) {
  if (text == "strict") return SeccompMode::Strict;
  if (text == "log") return SeccompMode::Log;
  if (text == "off") return SeccompMode::Off;
  return base::fail(
      base::Error("security.seccomp: unknown mode \"" + std::string(text) + "\" (known: strict, log, off)"));
}

std::vector<RoleSize> role_sizes(const PolicyContext& context) {
  std::vector<RoleSize> sizes;
  for (size_t i = 0; i < kRoleCount; ++i) {
    Role role = static_cast<Role>(i);
    sizes.push_back({role, effective_list(role, context).syscall_count()});
  }
  return sizes;
}

void set_event_log_fd(int fd) {
  g_event_fd.store(fd);
}

std::vector<std::string> threads_without_role() {
  std::set<int> declared;
  for (const ThreadInfo& info : declared_threads()) declared.insert(info.tid);
  std::vector<std::string> missing;
  const int pid = static_cast<int>(::getpid());
  DIR* dir = ::opendir("/proc/self/task");
  if (!dir) return missing;
  while (dirent* entry = ::readdir(dir)) {
    int tid = std::atoi(entry->d_name);
    if (tid <= 0 || tid == pid || declared.count(tid)) continue;  // the main thread: arm() declares it
    std::ifstream in(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string comm;
    std::getline(in, comm);
    // io_uring's workers are kernel threads that run no user code: no filter applies to them.
    if (comm.rfind("iou-", 0) == 0) continue;
    missing.push_back(std::to_string(tid) + " (" + comm + ")");
  }
  ::closedir(dir);
  return missing;
}

base::ErrorOr<void> arm(SeccompMode mode, const PolicyContext& context) {
  if (mode == SeccompMode::Off) {
    (void)detail::arm_and_list_others(Role::Main);  // roles are still declared (names, inspect)
    return {};
  }
  if (mode == SeccompMode::Log && seccomp_api_get() < 3)
    return base::fail(base::Error("seccomp: log mode needs kernel support for SECCOMP_RET_LOG (4.14+)"));
  // Set-up still running on threads of its own (the jit's LLVM tier loading) finishes first.
  if (std::string held = detail::wait_for_arming_holds(60); !held.empty())
    return base::fail(base::Error("seccomp: still waiting after 60 s for set-up to finish (" + held + ")"));
  // A thread started just now may not have reached its role declaration yet: give it a second.
  for (int attempt = 0;; ++attempt) {
    auto missing = threads_without_role();
    if (missing.empty()) break;
    if (attempt == 200)
      return base::fail(base::Error("seccomp: thread " + missing.front() +
                                    " runs without a role (security::ThreadRole); refusing to arm"));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // VMLAUNCH_TEST_SECCOMP_VIOLATION=ROLE: threads of that role make a forbidden call once filtered,
  // so tests see the real kill end to end. The environment is the host user's, never the guest's
  // or a control client's, and all it can do is stop the VMM, which its starter can do anyway.
  if (const char* test = std::getenv("VMLAUNCH_TEST_SECCOMP_VIOLATION")) {
    for (size_t i = 0; i < kRoleCount; ++i)
      if (std::strcmp(test, role_name(static_cast<Role>(i))) == 0)
        detail::set_test_violation(static_cast<int>(i));
  }
  g_death_nr = seccomp_syscall_resolve_name(kDeathCall);
  for (int nr = 0; nr < kMaxSyscall; ++nr)
    g_syscall_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

  // Programs live for the process's life (threads declared later install them).
  static std::vector<sock_filter> programs[kRoleCount];
  detail::Program table[kRoleCount];
  for (size_t i = 0; i < kRoleCount; ++i) {
    programs[i] = TRY(compile(static_cast<Role>(i), mode, context));
    table[i] = {programs[i].data(), static_cast<uint16_t>(programs[i].size())};
  }
  detail::set_programs(table);

  struct sigaction action {};
  action.sa_sigaction = on_sigsys;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (::sigaction(SIGSYS, &action, nullptr) != 0)
    return base::fail(base::Error(std::string("seccomp: sigaction(SIGSYS): ") + std::strerror(errno)));
  action.sa_sigaction = on_arm_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;  // interrupted reads and writes carry on
  if (::sigaction(arm_signal(), &action, nullptr) != 0)
    return base::fail(base::Error(std::string("seccomp: sigaction: ") + std::strerror(errno)));

  std::vector<int> others = detail::arm_and_list_others(Role::Main);
  const pid_t pid = ::getpid();
  for (int tid : others) ::syscall(SYS_tgkill, pid, tid, arm_signal());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!detail::all_filtered(others)) {
    if (std::chrono::steady_clock::now() > deadline)
      return base::fail(base::Error("seccomp: a thread did not install its filter within 5 s"));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (int rc = detail::install_for_current_thread(); rc != 0)
    return base::fail(
        base::Error(std::string("seccomp: installing the main thread's filter: ") + std::strerror(-rc)));
  return {};
}

}  // namespace security
