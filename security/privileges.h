// The VMM started as root keeps nothing of it once set-up is done: it becomes the configured user
// and group (`security: {user, group}`), holds no capabilities, sets no_new_privs and runs with
// resource limits of its own. Called after everything that needs root is open, before seccomp.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/result.h"

namespace security {

struct DropTarget {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;   // as configured (a name or a number)
  std::string group;  // as configured, or the user's primary group
};

// Resolves `security.user` / `security.group` (names or numbers; the group defaults to the user's
// primary group). Empty user: nothing to drop to. Call early: name lookups read /etc files.
base::ErrorOr<std::optional<DropTarget>> resolve_drop(const std::string& user, const std::string& group);

// Becomes target (supplementary groups cleared, real, effective and saved ids) and checks that no
// capability is left in any set of this thread; every thread follows (glibc applies set*id to all
// threads). Needs root. Also empties the capability bounding set and sets no_new_privs.
base::ErrorOr<void> drop_privileges(const DropTarget& target);

// RLIMIT_NOFILE (images, 9p files, sockets: 8192), RLIMIT_NPROC (threads count: 4096) and
// RLIMIT_CORE 0 (a crashed VMM must not write guest memory to disk), hard limits included, so a
// compromised VMM cannot raise them again.
base::ErrorOr<void> set_limits();

// Closes every descriptor from 3 up: what the caller of vmlaunch left open must not reach the VMM.
void close_inherited_fds();

}  // namespace security
