#include "security/allow/allow_list.h"

#include <sched.h>
#include <sys/mman.h>

#include <cerrno>
#include <set>

namespace security {

int AllowList::resolve(const char* name) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) m_unknown.emplace_back(name);
  return nr;
}

void AllowList::allow(const char* name, const char* why) {
  int nr = resolve(name);
  if (nr != __NR_SCMP_ERROR) m_rules.push_back({nr, {}, why});
}

void AllowList::allow_if(const char* name, std::initializer_list<scmp_arg_cmp> args, const char* why) {
  int nr = resolve(name);
  if (nr != __NR_SCMP_ERROR) m_rules.push_back({nr, std::vector<scmp_arg_cmp>(args), why});
}

void AllowList::refuse(const char* name, int error, const char* why) {
  int nr = resolve(name);
  if (nr != __NR_SCMP_ERROR) m_rules.push_back({nr, {}, why, error});
}

void AllowList::refuse_if(const char* name, std::initializer_list<scmp_arg_cmp> args, int error,
                          const char* why) {
  int nr = resolve(name);
  if (nr != __NR_SCMP_ERROR) m_rules.push_back({nr, std::vector<scmp_arg_cmp>(args), why, error});
}

void AllowList::allow_ioctls(std::initializer_list<unsigned long> requests, const char* why) {
  int nr = resolve("ioctl");
  if (nr == __NR_SCMP_ERROR) return;
  // The request is an unsigned int in the kernel; compare its low 32 bits only.
  for (unsigned long request : requests)
    m_rules.push_back({nr, {SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, request & 0xffffffffu)}, why});
}

void AllowList::include(const AllowList& other) {
  m_rules.insert(m_rules.end(), other.m_rules.begin(), other.m_rules.end());
  m_unknown.insert(m_unknown.end(), other.m_unknown.begin(), other.m_unknown.end());
}

size_t AllowList::syscall_count() const {
  std::set<int> distinct;
  for (const AllowRule& rule : m_rules) distinct.insert(rule.syscall);
  return distinct.size();
}

void allow_memory_no_exec(AllowList& list) {
  list.allow_if("mmap", {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)},
                "heap and stacks (malloc, thread stacks), never executable");
  list.allow_if("mprotect", {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)},
                "guard pages and malloc arenas, never executable");
  list.allow("munmap", "returning memory");
  list.allow("madvise", "malloc trimming and thread stack release (MADV_DONTNEED)");
  list.allow("mremap", "growing large allocations (realloc)");
  list.allow("brk", "the main heap");
}

void allow_thread_start(AllowList& list) {
  list.allow_if("clone", {SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)},
                "std::thread (threads of this process only: no fork)");
  list.refuse("clone3", ENOSYS, "its flags are out of a filter's sight: glibc falls back to clone");
}

void allow_memory_w_xor_x(AllowList& list) {
  list.allow("sysinfo", "LLVM sizes its caches from the host's memory");
  // LLVM's JIT memory manager maps code read-write, fills it, then flips it to read-execute.
  list.allow_if("mmap", {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE, 0)},
                "code cache pages mapped read-only or read-execute (never writable and executable)");
  list.allow_if("mprotect", {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE, 0)},
                "code cache pages flipped to read-execute once written (W^X)");
}

namespace {

using Adder = void (*)(AllowList&, const PolicyContext&);

constexpr Adder kAdders[kRoleCount] = {
    allow_main,    allow_vcpu,       allow_device_io, allow_block_io, allow_net,      allow_chardev,
    allow_control, allow_translator, allow_lifecycle, allow_signals,  allow_gdb_stub, allow_snapshot,
};

// Which roles' threads a thread of each role starts (see the comment on effective_list).
std::vector<Role> started_by(Role role) {
  switch (role) {
    case Role::Main:  // builds the machine, again on every guest reset
      return {Role::Vcpu, Role::DeviceIo, Role::BlockIo, Role::Translator, Role::Lifecycle};
    case Role::Vcpu:  // a guest driver starting a device starts its threads; on-panic: pause runs on a helper
      return {Role::BlockIo, Role::DeviceIo, Role::Lifecycle};
    case Role::Signals:  // SIGTERM: the power button (held on a device thread) and the grace period
      return {Role::DeviceIo, Role::Lifecycle};
    case Role::Control:  // powerdown: the power button's release thread
      return {Role::DeviceIo};
    case Role::Snapshot:  // its zstd workers; quiesced devices start their I/O threads again
      return {Role::BlockIo, Role::DeviceIo};
    default:
      return {};
  }
}

void add_with_started(Role role, const PolicyContext& context, AllowList& out, std::set<Role>& seen) {
  if (!seen.insert(role).second) return;
  kAdders[static_cast<size_t>(role)](out, context);
  for (Role child : started_by(role)) add_with_started(child, context, out, seen);
}

}  // namespace

AllowList effective_list(Role role, const PolicyContext& context) {
  AllowList list;
  allow_common(list, context);
  std::set<Role> seen;
  add_with_started(role, context, list, seen);
  return list;
}

}  // namespace security
