// Controller helpers: the grace period of a graceful stop (then a forced stop), pausing the vCPUs
// after a guest panic. They wait, then act on the machine (kicks, parking vCPUs) and send events.
#include "security/allow/allow_list.h"

namespace security {

void allow_lifecycle(AllowList& list, const PolicyContext&) {
  list.allow("sendto", "events to control clients");
}

}  // namespace security
