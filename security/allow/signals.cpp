// The launcher's signal watcher: collects SIGTERM, SIGINT and SIGHUP with sigwaitinfo and turns
// them into controller requests (power button, grace period, stop).
#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"

namespace security {

void allow_signals(AllowList& list, const PolicyContext&) {
  allow_thread_start(list);    // the grace-period helper and the power button's release thread
  allow_kvm_interrupts(list);  // the power button's interrupt
  allow_kvm_pause(list);       // a stop resumes a paused machine first
  list.allow("rt_sigtimedwait", "sigwaitinfo: the signals it turns into requests");
  list.allow("sendto", "events to control clients");
}

}  // namespace security
