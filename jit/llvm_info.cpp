#include "jit/llvm_info.h"

#include <llvm/Config/llvm-config.h>

namespace jit {

std::string llvm_version() {
  return LLVM_VERSION_STRING;
}

}  // namespace jit
