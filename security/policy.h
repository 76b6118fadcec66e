// Confining a running VMM with seccomp: each thread runs under its role's allow-list
// (security/allow/<role>.cpp), installed once set-up is done (images, /dev/kvm, tap, sockets open,
// helper processes such as virtiofsd started). A forbidden system call kills the process with
// SIGSYS after a message naming the call and the thread (stderr and, when set, the event log).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "security/allow/allow_list.h"
#include "security/thread_role.h"

namespace security {

enum class SeccompMode {
  Strict,  // a forbidden call kills the process (SIGSYS) after saying which call and thread
  Log,     // a forbidden call is allowed and logged by the kernel (dmesg / audit, "type=1326")
  Off,     // no filters
};
const char* mode_name(SeccompMode mode);
// "strict", "log", "off"; anything else is an error naming the choices.
base::ErrorOr<SeccompMode> parse_mode(std::string_view text);

struct RoleSize {
  Role role;
  size_t syscalls = 0;  // distinct system calls its effective list allows
};
// The size of each role's effective list (common + own + roles it starts), for `inspect`.
std::vector<RoleSize> role_sizes(const PolicyContext& context);

// Where the SIGSYS handler also appends a JSON event line (events.log); -1: stderr only.
void set_event_log_fd(int fd);

// Installs the filters: every thread that declared a role and runs now (they are signalled and
// install their own), then the calling thread as Role::Main; threads declared later install theirs
// when they declare. Call once, from the main thread, when set-up is done. Off: only declares the
// caller. Errors say what could not be applied (an old kernel, a thread that did not answer).
base::ErrorOr<void> arm(SeccompMode mode, const PolicyContext& context);

// Threads of this process that run without a declared role (io_uring's kernel workers excepted),
// as "TID (comm)". Reads /proc/self/task: call before arming, or from tests.
std::vector<std::string> threads_without_role();

}  // namespace security
