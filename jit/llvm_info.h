// What vmlaunch knows about the LLVM it was built against, without its callers seeing LLVM's
// headers (only jit/ may include them) and without linking libLLVM: `vmlaunch accel`, `plan` and
// kvm machines must not map the 129 MB library.
#pragma once

#include <string>

namespace jit {

// "19.1.7": LLVM_VERSION_STRING of the headers the translator tier is built with.
std::string llvm_version();

}  // namespace jit
