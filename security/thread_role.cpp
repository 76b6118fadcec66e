#include "security/thread_role.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace security {

namespace {

struct Slot {
  int tid = 0;
  Role role = Role::Main;
  std::atomic<bool> filtered{false};
};

struct Registry {
  std::mutex lock;
  std::vector<Slot*> slots;
  bool armed = false;
  detail::Program programs[kRoleCount];
};

Registry& registry() {
  static Registry* instance = new Registry;  // never destroyed: threads may outlive static teardown
  return *instance;
}

// Tests only (VMLAUNCH_TEST_SECCOMP_VIOLATION): the role whose threads make a forbidden call as soon
// as their filter is installed; -1 for none.
std::atomic<int> g_violation_role{-1};

// Initial-exec TLS of the executable: safe to read in signal handlers.
thread_local Slot* t_slot = nullptr;

constexpr const char* kRoleNames[kRoleCount] = {
    "main",    "vcpu",       "device-io", "block-io", "net",      "chardev",
    "control", "translator", "lifecycle", "signals",  "gdb-stub", "snapshot",
};
constexpr const char* kThreadNames[kRoleCount] = {
    "vmlaunch",    "vml-vcpu",        "vml-dev-io",    "vml-blk-io",  "vml-net",      "vml-chardev",
    "vml-control", "vml-jit-compile", "vml-lifecycle", "vml-signals", "vml-gdb-stub", "vml-snapshot",
};

}  // namespace

const char* role_name(Role role) {
  size_t index = static_cast<size_t>(role);
  return index < kRoleCount ? kRoleNames[index] : "?";
}

const char* thread_name(Role role) {
  size_t index = static_cast<size_t>(role);
  return index < kRoleCount ? kThreadNames[index] : "vml-?";
}

const char* current_role_name() {
  return t_slot ? role_name(t_slot->role) : nullptr;
}

const char* current_thread_name() {
  return t_slot ? thread_name(t_slot->role) : "an undeclared thread";
}

ThreadRole::ThreadRole(Role role) {
  if (t_slot) return;  // declared already (a nested declaration keeps the first)
  // The name carries the role into /proc, top -H and the kernel's seccomp log lines.
  if (role != Role::Main) ::prctl(PR_SET_NAME, thread_name(role), 0, 0, 0);
  Slot* slot = new Slot;
  slot->tid = static_cast<int>(::gettid());
  slot->role = role;
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  r.slots.push_back(slot);
  t_slot = slot;
  if (r.armed) {
    int failed = detail::install_for_current_thread();
    if (failed != 0) {
      // Running on unfiltered would be the silent failure this feature exists to prevent.
      static const char text[] = "vmlaunch: seccomp: a new thread could not install its filter; stopping\n";
      (void)!::write(STDERR_FILENO, text, sizeof text - 1);
      ::_exit(1);
    }
  }
}

ThreadRole::~ThreadRole() {
  Slot* slot = t_slot;
  if (!slot) return;
  Registry& r = registry();
  {
    std::lock_guard guard(r.lock);
    std::erase(r.slots, slot);
  }
  t_slot = nullptr;
  delete slot;
}

std::vector<ThreadInfo> declared_threads() {
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  std::vector<ThreadInfo> out;
  for (const Slot* slot : r.slots) out.push_back({slot->tid, slot->role, slot->filtered.load()});
  return out;
}

namespace {
std::mutex g_holds_lock;
std::condition_variable g_holds_released;
std::vector<std::string> g_holds;  // what each ArmingHold waits for, one entry per hold
}  // namespace

ArmingHold::ArmingHold(std::string what) : m_what(std::move(what)) {
  std::lock_guard guard(g_holds_lock);
  g_holds.push_back(m_what);
}

void ArmingHold::release() {
  {
    std::lock_guard guard(g_holds_lock);
    if (!m_held) return;
    m_held = false;
    auto it = std::find(g_holds.begin(), g_holds.end(), m_what);
    if (it != g_holds.end()) g_holds.erase(it);
  }
  g_holds_released.notify_all();
}

namespace detail {

void set_programs(const Program (&programs)[kRoleCount]) {
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  for (size_t i = 0; i < kRoleCount; ++i) r.programs[i] = programs[i];
}

int install_for_current_thread() {
  Slot* slot = t_slot;
  if (!slot) return -EINVAL;
  const Program& program = registry().programs[static_cast<size_t>(slot->role)];
  if (program.filter) {
    // no_new_privs is what lets an unprivileged thread install a filter, and what keeps an exec
    // from shedding it; it is per thread, like the filter itself.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    sock_fprog prog{program.length,
                    const_cast<sock_filter*>(static_cast<const sock_filter*>(program.filter))};
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) return -errno;
  }
  slot->filtered.store(true);
  if (program.filter && g_violation_role.load() == static_cast<int>(slot->role))
    (void)::syscall(SYS_getppid);  // on no role's list: the filter stops the process here
  return 0;
}

void set_test_violation(int role) {
  g_violation_role.store(role);
}

std::vector<int> arm_and_list_others(Role caller) {
  if (!t_slot) {
    // The caller (the main thread) is declared for the process's life.
    static ThreadRole* main_role = new ThreadRole(caller);
    (void)main_role;
  }
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  r.armed = true;
  std::vector<int> others;
  for (const Slot* slot : r.slots)
    if (slot != t_slot && !slot->filtered.load()) others.push_back(slot->tid);
  return others;
}

bool all_filtered(const std::vector<int>& tids) {
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  for (int tid : tids)
    for (const Slot* slot : r.slots)
      if (slot->tid == tid && !slot->filtered.load()) return false;
  return true;
}

std::string wait_for_arming_holds(double seconds) {
  std::unique_lock guard(g_holds_lock);
  g_holds_released.wait_for(guard, std::chrono::duration<double>(seconds), [] { return g_holds.empty(); });
  return g_holds.empty() ? std::string() : g_holds.front();
}

}  // namespace detail

}  // namespace security
