// Every thread: what any thread of a C++ program does without asking for anything (memory, locks,
// clocks, ending), plus installing its own filter. Nothing here opens, creates or names a file.
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

#include <cerrno>

#include "security/allow/allow_list.h"

namespace security {

void allow_common(AllowList& list, const PolicyContext& context) {
  allow_memory_no_exec(list);
  list.allow("futex", "std::mutex, std::condition_variable, thread joins");
  list.allow("sched_yield", "spin loops back off (atomics with waiting)");
  list.allow("clock_gettime", "steady and wall clocks when the vDSO falls back to the kernel");
  list.allow("clock_nanosleep", "sleep_for, condition variable timeouts");
  list.allow("nanosleep", "sleep_for on older glibc paths");
  list.allow("gettid", "thread ids (registration, pthread_kill)");
  list.allow("getpid", "pthread_kill and raise address the own process");
  list.allow_if("tgkill", {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(context.pid))},
                "signals to this process's own threads: vCPU kicks, waking the signal watcher");
  list.allow("rt_sigprocmask", "glibc blocks signals around thread creation and in pthread_kill");
  list.allow("rt_sigreturn", "returning from any signal handler (the vCPU kick, the arming signal)");
  list.allow("restart_syscall", "a sleep interrupted by a signal continues");
  list.allow("write", "the stderr diagnostics every layer prints; data sinks of each role");
  list.allow("close", "dropping descriptors a thread owns");
  list.allow("exit", "a thread ends");
  list.allow("exit_group", "the process ends (fatal errors, std::exit)");
  list.allow("getrandom", "libstdc++ and glibc seeding (hash tables, malloc)");
  list.allow("set_robust_list", "a new thread registers its robust futex list");
  list.allow("rseq", "a new thread registers restartable sequences (glibc 2.35+)");
  list.allow("sched_getaffinity", "std::thread::hardware_concurrency");
  // glibc's malloc reads /proc/sys/vm/overcommit_memory the first time a thread's arena shrinks,
  // whatever thread that is, and treats a failed open as "do not shrink". That exact open (read-only,
  // close-on-exec) fails with EACCES instead of killing; any other open still kills.
  list.refuse_if("openat", {SCMP_A2(SCMP_CMP_EQ, O_RDONLY | O_CLOEXEC)}, EACCES,
                 "malloc's overcommit check when an arena shrinks (it copes with the failure)");
  list.allow_ioctls(
      {TCGETS, TCSETS, TCSETSW},
      "the stdio backend's fatal-signal handler restores the terminal on whatever thread crashed");
  list.allow_if("prctl", {SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME)}, "a new thread names itself after its role");
  list.allow_if("prctl", {SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS)},
                "a new thread sets no_new_privs before installing its filter");
  list.allow_if("seccomp", {SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER)},
                "a new thread adds its role's filter (filters only ever narrow what is allowed)");
}

}  // namespace security
