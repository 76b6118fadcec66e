// Loads a compiled tier's shared object (jit/tier.h) at run time. Only a jit machine that wants
// the tier calls this; nothing links libLLVM at build time.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "jit/tier.h"

namespace jit {

class LoadedTier {
 public:
  ~LoadedTier();
  LoadedTier(const LoadedTier&) = delete;
  LoadedTier& operator=(const LoadedTier&) = delete;

  const JitTierApi& api() const { return *m_api; }

 private:
  friend base::Result<std::unique_ptr<LoadedTier>, std::string> load_tier(const std::string& path);
  LoadedTier(void* handle, const JitTierApi* api) : m_handle(handle), m_api(api) {}
  void* m_handle;
  const JitTierApi* m_api;
};

// dlopen(path) and check its ABI version. Errors name the path and dlerror()'s reason.
base::Result<std::unique_ptr<LoadedTier>, std::string> load_tier(const std::string& path);

// Where the LLVM tier is looked for: $VMLAUNCH_JIT_TIER, else libvmlaunch_jit_llvm.so beside the
// running executable (or in its Bazel runfiles).
std::string default_tier_path();

}  // namespace jit
