#include "security/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

namespace security {

namespace {

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::optional<unsigned long> number(const std::string& text) {
  unsigned long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Capability sets of the calling thread (capget, version 3: two 32-bit words each).
struct Caps {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};
std::optional<Caps> current_caps() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return std::nullopt;
  Caps caps;
  caps.effective = data[0].effective | (uint64_t{data[1].effective} << 32);
  caps.permitted = data[0].permitted | (uint64_t{data[1].permitted} << 32);
  caps.inheritable = data[0].inheritable | (uint64_t{data[1].inheritable} << 32);
  return caps;
}

}  // namespace

base::ErrorOr<std::optional<DropTarget>> resolve_drop(const std::string& user, const std::string& group) {
  if (user.empty()) {
    if (!group.empty()) return base::fail(base::Error("security.group needs security.user"));
    return std::optional<DropTarget>();
  }
  DropTarget target;
  target.user = user;
  if (auto id = number(user)) {
    target.uid = static_cast<uid_t>(*id);
    const passwd* entry = ::getpwuid(target.uid);
    target.gid = entry ? entry->pw_gid : static_cast<gid_t>(*id);
  } else {
    const passwd* entry = ::getpwnam(user.c_str());
    if (!entry) return base::fail(base::Error("security.user: no user \"" + user + "\" on this host"));
    target.uid = entry->pw_uid;
    target.gid = entry->pw_gid;
  }
  if (!group.empty()) {
    target.group = group;
    if (auto id = number(group)) {
      target.gid = static_cast<gid_t>(*id);
    } else {
      const struct group* entry = ::getgrnam(group.c_str());
      if (!entry) return base::fail(base::Error("security.group: no group \"" + group + "\" on this host"));
      target.gid = entry->gr_gid;
    }
  } else {
    target.group = std::to_string(target.gid);
  }
  if (target.uid == 0)
    return base::fail(base::Error("security.user: dropping to root (uid 0) drops nothing"));
  return std::optional<DropTarget>(target);
}

base::ErrorOr<void> drop_privileges(const DropTarget& target) {
  if (::geteuid() != 0)
    return base::fail(base::Error("security.user: vmlaunch is not running as root, so it cannot become " +
                                  target.user + " (run it as that user instead)"));
  // The bounding set first (needs CAP_SETPCAP, gone after the uid change): nothing executed later
  // could regain a capability. It is per thread; threads started from here inherit it.
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      return base::fail(base::Error(errno_text("PR_CAPBSET_DROP")));
  (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (::setgroups(0, nullptr) != 0) return base::fail(base::Error(errno_text("setgroups")));
  if (::setresgid(target.gid, target.gid, target.gid) != 0)
    return base::fail(base::Error(errno_text("setresgid(" + std::to_string(target.gid) + ")")));
  // From root to another uid with keep-caps off, the kernel clears the permitted and effective sets.
  if (::setresuid(target.uid, target.uid, target.uid) != 0)
    return base::fail(base::Error(errno_text("setresuid(" + std::to_string(target.uid) + ")")));
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return base::fail(base::Error(errno_text("no_new_privs")));
  // Check rather than trust: a uid change that left capabilities behind is an error.
  uid_t r = 0, e = 0, s = 0;
  if (::getresuid(&r, &e, &s) != 0 || r != target.uid || e != target.uid || s != target.uid)
    return base::fail(base::Error("security.user: the uid did not change on every id"));
  auto caps = current_caps();
  if (!caps || caps->effective || caps->permitted || caps->inheritable)
    return base::fail(base::Error("security.user: capabilities remain after the uid change"));
  // Back to root must fail now.
  if (::setresuid(0, 0, 0) == 0) return base::fail(base::Error("security.user: could become root again"));
  return {};
}

base::ErrorOr<void> set_limits() {
  auto cap_limit = [](int resource, rlim_t wanted, const char* name) -> base::ErrorOr<void> {
    rlimit now{};
    if (::getrlimit(resource, &now) != 0)
      return base::fail(base::Error(errno_text(std::string("getrlimit ") + name)));
    rlim_t value = now.rlim_max == RLIM_INFINITY || now.rlim_max > wanted ? wanted : now.rlim_max;
    rlimit next{value, value};
    if (::setrlimit(resource, &next) != 0)
      return base::fail(base::Error(errno_text(std::string("setrlimit ") + name)));
    return {};
  };
  TRY(cap_limit(RLIMIT_NOFILE, 8192, "RLIMIT_NOFILE"));
  TRY(cap_limit(RLIMIT_NPROC, 4096, "RLIMIT_NPROC"));
  TRY(cap_limit(RLIMIT_CORE, 0, "RLIMIT_CORE"));
  return {};
}

void close_inherited_fds() {
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
}

}  // namespace security
