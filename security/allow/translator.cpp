// The jit's background compile threads (tier: auto): LLVM turns hot guest code into host code in a
// code cache that is written and then made executable, never both at once.
#include "security/allow/allow_list.h"

namespace security {

void allow_translator(AllowList& list, const PolicyContext& context) {
  if (context.jit_code) allow_memory_w_xor_x(list);
}

}  // namespace security
