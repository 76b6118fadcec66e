#include "jit/tier_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>

namespace jit {

LoadedTier::~LoadedTier() {
  // The tier's compiled code and its instances must be gone before this (their owner destroys
  // them first); unloading libLLVM under live code would leave dangling function pointers.
  dlclose(m_handle);
}

base::Result<std::unique_ptr<LoadedTier>, std::string> load_tier(const std::string& path) {
  // RTLD_LOCAL: LLVM's symbols stay private to the tier, never interposing on the launcher's.
  // RTLD_NODELETE: the machine rebuilt after a guest reset finds the tier already mapped, so it
  // loads without opening or mapping files, which the seccomp filters armed after the first build
  // forbid (security/allow/main.cpp).
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!handle) {
    const char* why = dlerror();
    return base::fail("jit tier " + path + ": " + (why ? why : "dlopen failed"));
  }
  // Safety: the symbol is declared in jit/tier.h with exactly this type (JitTierEntry).
  auto entry = reinterpret_cast<JitTierEntry>(dlsym(handle, "vmlaunch_jit_tier_v5"));
  if (!entry) {
    dlclose(handle);
    return base::fail("jit tier " + path + ": no vmlaunch_jit_tier_v5 symbol");
  }
  const JitTierApi* api = entry();
  if (!api || api->abi_version != kJitTierAbiVersion) {
    dlclose(handle);
    return base::fail("jit tier " + path + ": ABI version " + std::to_string(api ? api->abi_version : 0) +
                      ", vmlaunch needs " + std::to_string(kJitTierAbiVersion));
  }
  return std::unique_ptr<LoadedTier>(new LoadedTier(handle, api));
}

std::string default_tier_path() {
  if (const char* env = std::getenv("VMLAUNCH_JIT_TIER"); env && *env) return env;
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "libvmlaunch_jit_llvm.so";
  const std::string exe(self, static_cast<size_t>(n));
  const std::string beside = exe.substr(0, exe.rfind('/') + 1) + "libvmlaunch_jit_llvm.so";
  // A Bazel-built binary (bazel run, tests) finds it in its runfiles when it is a data dependency.
  if (access(beside.c_str(), R_OK) == 0) return beside;
  const std::string runfiles = exe + ".runfiles/vmlaunch/jit/libvmlaunch_jit_llvm.so";
  if (access(runfiles.c_str(), R_OK) == 0) return runfiles;
  // Under `bazel test` the binary's own runfiles tree may not exist yet (it is built alongside the
  // test), but the test's runfiles hold the tier as vmlaunch's data dependency.
  for (const char* root : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    const char* dir = std::getenv(root);
    if (!dir || !*dir) continue;
    const std::string in_test = std::string(dir) + "/vmlaunch/jit/libvmlaunch_jit_llvm.so";
    if (access(in_test.c_str(), R_OK) == 0) return in_test;
  }
  return beside;
}

}  // namespace jit
