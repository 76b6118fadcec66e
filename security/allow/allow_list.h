// The builder each role's allow-list file fills in (security/allow/<role>.cpp). A list is data: the
// system calls a thread of that role needs, each with the reason it is there and, where the call's
// arguments decide what it can do, the argument values it may use. policy.cpp turns the lists into
// seccomp filters with libseccomp.
#pragma once

#include <seccomp.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "security/thread_role.h"

namespace security {

// What the machine being confined has, where that widens what its threads need.
struct PolicyContext {
  // The jit's LLVM tier is on (tier: auto | llvm): compiling threads map code pages, W^X.
  bool jit_code = false;
  // 9p shares: the 9P server runs on the vCPU thread that notifies its queue and works on host files.
  bool p9_shares = false;
  // User networking (libslirp): slirp runs the guest's transmitted frames on the vCPU thread that
  // notifies virtio-net, and opens host sockets for the guest's connections there.
  bool user_net = false;
  // This process: signals go to its own threads only.
  int pid = 0;
};

struct AllowRule {
  int syscall = 0;
  std::vector<scmp_arg_cmp> args;  // all must hold; empty: any arguments
  const char* why = "";
  int refuse_errno = 0;  // non-zero: the call fails with this errno instead of being allowed
};

class AllowList {
 public:
  // Allows `name` (resolved by libseccomp for this architecture) with any arguments.
  void allow(const char* name, const char* why);
  // Allows `name` when every comparison holds; several allow_if of one call are alternatives.
  void allow_if(const char* name, std::initializer_list<scmp_arg_cmp> args, const char* why);
  // Makes `name` fail with `error` (not kill): for calls glibc tries first and falls back from.
  // A refusal yields to any allow rule of the same call (in this role or one it includes).
  void refuse(const char* name, int error, const char* why);
  void refuse_if(const char* name, std::initializer_list<scmp_arg_cmp> args, int error, const char* why);
  // ioctl on any descriptor with one of these request numbers (argument 1).
  void allow_ioctls(std::initializer_list<unsigned long> requests, const char* why);
  // Adds every rule of `other`.
  void include(const AllowList& other);

  const std::vector<AllowRule>& rules() const { return m_rules; }
  // Distinct system calls allowed (in any form).
  size_t syscall_count() const;
  // Names that did not resolve on this architecture (a list bug; tests check it is empty).
  const std::vector<std::string>& unknown() const { return m_unknown; }

 private:
  int resolve(const char* name);
  std::vector<AllowRule> m_rules;
  std::vector<std::string> m_unknown;
};

// One function per role, each in its own file under security/allow/. common() is what every thread
// needs to be a thread of a C++ program at all (memory, locks, time, exiting).
void allow_common(AllowList& list, const PolicyContext& context);
void allow_main(AllowList& list, const PolicyContext& context);
void allow_vcpu(AllowList& list, const PolicyContext& context);
void allow_device_io(AllowList& list, const PolicyContext& context);
void allow_block_io(AllowList& list, const PolicyContext& context);
void allow_net(AllowList& list, const PolicyContext& context);
void allow_chardev(AllowList& list, const PolicyContext& context);
void allow_control(AllowList& list, const PolicyContext& context);
void allow_translator(AllowList& list, const PolicyContext& context);
void allow_lifecycle(AllowList& list, const PolicyContext& context);
void allow_signals(AllowList& list, const PolicyContext& context);
void allow_gdb_stub(AllowList& list, const PolicyContext& context);
void allow_snapshot(AllowList& list, const PolicyContext& context);

// The shared forms of memory mapping: never executable (everything but the translator's code cache).
void allow_memory_no_exec(AllowList& list);
// Starting threads (never processes): clone with CLONE_THREAD; clone3, whose flags live in memory
// a filter cannot read, fails with ENOSYS so glibc falls back to clone.
void allow_thread_start(AllowList& list);
// The host sockets libslirp opens for the guest's connections (security/allow/net.cpp).
void allow_slirp_sockets(AllowList& list);
// Code-cache pages: writable or executable, never both at once (W^X).
void allow_memory_w_xor_x(AllowList& list);

// The complete list a thread of `role` runs under: common, its own, and (because a thread inherits
// the filter of the thread that starts it, and filters only ever narrow) the lists of every role a
// thread of this role starts.
AllowList effective_list(Role role, const PolicyContext& context);

}  // namespace security
