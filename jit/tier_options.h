// How a jit machine uses the compiled tier: the `accel` entry's options ({type: jit, tier: ...,
// hot-threshold: N, compile-threads: N}), as the engine takes them. No LLVM here.
#pragma once

#include <cstdint>
#include <string>

namespace jit {

struct TierOptions {
  enum class Mode {
    kAuto,    // interpreter first; hot code compiled in the background (libLLVM loaded if present)
    kInterp,  // interpreter only; libLLVM never loaded
    kLlvm,    // every block compiled (synchronously) before it runs; libLLVM required
  };
  // The interpreter alone until the compiled tier wins on a whole Linux boot: measured in
  // docs/benchmarks.md, `auto` still boots slower (compiles arrive after the hot boot code ran).
  Mode mode = Mode::kInterp;
  uint32_t hot_threshold = 0;    // block entries before promotion; 0 = the mode's default
  uint32_t compile_threads = 0;  // background compile threads (auto); 0 = the default (1)
  std::string library;           // the tier's shared object; empty = jit::default_tier_path()
  // Lockstep (jit/lockstep.h): every compiled region entered is also run on the interpreter from
  // the same state and compared at its exit; the first difference stops the hart. For tests: slow.
  bool lockstep = false;
  // Generated code kept at most (bytes); 0 = the default. Past it all compiled code is dropped
  // (every hart forgets its regions, and the code is freed once no hart can be running it) and hot
  // code compiles again.
  uint64_t code_cache_bytes = 0;
  static constexpr uint64_t kDefaultCodeCache = 128ull << 20;
  // auto: a region entry that has run this many guest instructions (with what it chained to) has
  // its region recompiled with -O1 codegen (tier-up, TierManager::quality); 0 = the default. Tests set it
  // low.
  uint64_t tier_up_retired = 0;
  static constexpr uint64_t kDefaultTierUpRetired = 16ull << 20;

  static constexpr uint32_t kDefaultAutoThreshold = 16384;
};

const char* mode_name(TierOptions::Mode mode);

}  // namespace jit
