// The jit's background compile threads (tier: auto): LLVM turns hot guest code into host code in a
// code cache that is written and then made executable, never both at once.
#include <sys/resource.h>

#include "security/allow/allow_list.h"

namespace security {

void allow_translator(AllowList& list, const PolicyContext& context) {
  if (context.jit_code) allow_memory_w_xor_x(list);
  // Each compile thread lowers its own priority (nice 10) so compiles never take a busy hart's core;
  // the first does it after loading the tier, which may be after the filters went on.
  list.allow_if("setpriority", {SCMP_A0(SCMP_CMP_EQ, PRIO_PROCESS)},
                "a compile thread lowering its own priority");
}

}  // namespace security
