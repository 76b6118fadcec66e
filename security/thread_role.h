// Every thread vmlaunch starts says what it is for, on its first line:
//
//   m_thread = std::thread([this] {
//     security::ThreadRole role(security::Role::Net);
//     ...
//
// The role names the thread (`vml-net` in /proc/PID/task/*/comm, top -H, the kernel's seccomp log)
// and picks the seccomp allow-list the thread runs under (security/allow/<role>.cpp). A thread
// started after the filters are armed installs its role's filter right here; one that already runs
// when they are armed gets it from security::arm() (security/policy.h). This library is tiny and
// has no libseccomp dependency, so every layer (hw/, backends/, jit/, vmm/) can declare roles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace security {

enum class Role : uint8_t {
  Main,        // the controller thread: builds the machine (again on every guest reset), waits
  Vcpu,        // runs guest code; device emulation (MMIO, PIO, virtqueues) happens here too
  DeviceIo,    // device-side helpers: timers (CLINT deadlines), vhost-user call forwarding, buttons
  BlockIo,     // block request workers and the io_uring completion thread
  Net,         // network backends: slirp, tap, stream sockets
  Chardev,     // character backends (stdio, pty, socket) and the console socket server
  Control,     // the control socket server (QMP-like JSON requests)
  Translator,  // the jit's background LLVM compile threads (the only code that maps code pages)
  Lifecycle,   // controller helpers: the grace period of a graceful stop, pausing after a panic
  Signals,     // the launcher's signal watcher (SIGTERM/SIGINT/SIGHUP become controller requests)
  GdbStub,     // the gdb remote stub (declared for it; the stub wires itself to this role)
  Snapshot,    // snapshot save (quiesce, state and RAM files, zstd workers) and restore's RAM loaders
  kCount,
};
inline constexpr size_t kRoleCount = static_cast<size_t>(Role::kCount);

// "vcpu", "device-io", ... as `vmlaunch inspect` and the seccomp messages print them.
const char* role_name(Role role);
// The thread name: "vml-" + a short form, at most 15 bytes ("vml-vcpu", "vml-blk-io").
const char* thread_name(Role role);

// Declares the calling thread's role for its whole life (create it first thing in the thread; the
// destructor forgets the thread). Not for the main thread: security::arm() declares it.
class ThreadRole {
 public:
  explicit ThreadRole(Role role);
  ~ThreadRole();
  ThreadRole(const ThreadRole&) = delete;
  ThreadRole& operator=(const ThreadRole&) = delete;
};

// Set-up that must finish before the seccomp filters go on, though it runs on a thread of its own
// while the machine starts (the jit's LLVM tier maps libLLVM and builds its compilers on its first
// compile thread: the translator's allow-list has no dlopen). security::arm() waits until every
// hold is released (bounded: a hold still there after 60 s fails arming, naming it). Released by
// release() or the destructor, whichever comes first.
class ArmingHold {
 public:
  explicit ArmingHold(std::string what);
  ~ArmingHold() { release(); }
  ArmingHold(const ArmingHold&) = delete;
  ArmingHold& operator=(const ArmingHold&) = delete;
  void release();

 private:
  std::string m_what;
  bool m_held = true;
};

// The calling thread's role, or nullptr when it declared none. Async-signal-safe.
const char* current_role_name();
// Its thread name ("vml-vcpu"), or "an undeclared thread". Async-signal-safe.
const char* current_thread_name();

struct ThreadInfo {
  int tid = 0;
  Role role = Role::Main;
  bool filtered = false;  // its role's filter is installed
};
// The threads that declared a role and still run (the main thread once armed).
std::vector<ThreadInfo> declared_threads();

namespace detail {
// Used by policy.cpp. A BPF program per role, installed by threads that declare a role once
// armed; null entries install nothing (mode off). Set once, before `armed` becomes true.
struct Program {
  const void* filter = nullptr;  // struct sock_filter[]
  uint16_t length = 0;
};
void set_programs(const Program (&programs)[kRoleCount]);
// Installs the calling thread's program (no_new_privs first). Async-signal-safe. Returns 0 or -errno.
int install_for_current_thread();
// Marks the process armed and returns the tids of the threads that run with a role but unfiltered
// (the caller signals them to install). Declares the calling thread as Role::Main.
std::vector<int> arm_and_list_others(Role caller);
// Tests only: threads of role index `role` make a forbidden call (getppid) right after installing
// their filter (-1: none). Set by arm() from VMLAUNCH_TEST_SECCOMP_VIOLATION.
void set_test_violation(int role);
// Waits until no ArmingHold is held; returns what still holds after `seconds` ("" when none).
std::string wait_for_arming_holds(double seconds);
// Whether each listed thread has installed its filter.
bool all_filtered(const std::vector<int>& tids);
}  // namespace detail

}  // namespace security
