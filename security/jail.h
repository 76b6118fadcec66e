// The jail (`security: {jail: true}`, `up --jail`), after Firecracker's jailer: the VMM runs as
// pid 1 of a new pid namespace, in new mount, ipc and uts namespaces (and a new, empty network
// namespace when the machine has no network backend), with a root of its own: a tmpfs holding only
// what the machine needs, each host file bind-mounted at its own path (read-only unless the machine
// writes it), /dev with only the nodes it uses, a /proc of its own pid namespace.
//
// Namespaces are per thread until a thread starts, so the jail is entered before the VMM starts
// any: the calling process forks; the parent stays outside (it forwards SIGINT/SIGTERM/SIGHUP to
// the VMM, ends with its status and can clean up the state directory, which the VMM inside cannot
// unmount), the child builds and enters the jail and returns to run the machine.
//
// What this host cannot give (no root, or a cgroup v2 hierarchy it cannot write) is reported in
// the outcome's `not_applied`, never silently left out.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

namespace security {

struct JailBind {
  std::string path;  // absolute host path, mounted at the same path inside
  bool writable = false;
  bool directory = false;
};

struct JailSpec {
  std::string root;                  // an empty directory the jail's tmpfs is mounted on
  std::string hostname;              // the machine's name (uts namespace)
  std::vector<JailBind> binds;       // files and directories the machine uses
  std::vector<std::string> devices;  // device nodes under /dev: "/dev/kvm", "/dev/net/tun"
  bool pty = false;                  // a devpts instance and /dev/ptmx (pty chardevs)
  bool network = true;               // false: a new, empty network namespace
  uint64_t memory_limit = 0;         // cgroup v2 memory.max in bytes; 0: none
  unsigned cpu_limit = 0;            // cgroup v2 cpu.max in whole CPUs; 0: none
  std::string cgroup_name;           // the machine's cgroup under vmlaunch/ (its name)
};

struct JailEntered {
  bool inside = false;                   // true: this is the VMM in the jail; run the machine and return
  int status = 0;                        // outside: the VMM's exit status (128 + signal if a signal ended it)
  pid_t host_pid = 0;                    // the VMM's pid as the host sees it (ps, down, machine.json)
  std::vector<std::string> not_applied;  // what this host could not give, each with why
  std::string error;  // inside: the jail could not be made (the VMM must exit 1 after saying so)
};

// Forks. In the parent: runs `forked` (to let go of what only the VMM may hold), waits for the
// jailed VMM and returns {inside = false, status}. In the child: returns {inside = true} once
// inside the jail, or {inside = true, error} when it could not be made. An error result: nothing
// was forked (not root, no pid namespace).
base::ErrorOr<JailEntered> enter_jail(const JailSpec& spec, const std::function<void()>& forked = {});

}  // namespace security
