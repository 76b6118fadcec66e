// Controller helpers: the grace period of a graceful stop (then a forced stop), pausing the vCPUs
// after a guest panic. They wait, then act on the machine (kicks, parking vCPUs) and send events.
#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"

namespace security {

void allow_lifecycle(AllowList& list, const PolicyContext&) {
  allow_kvm_pause(list);  // the pause after a guest panic; the grace period's stop resumes a paused machine
  list.allow("sendto", "events to control clients");
}

}  // namespace security
