// The compiled tier as the harts use it: loads the tier's shared object (jit/tier_loader.h), owns
// its compiler instances and the background compile threads, and keeps the numbers `up --stats`
// prints. One per Engine; shared by its harts. No LLVM here: the tier is reached only through the
// C table of jit/tier.h.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "jit/tier.h"
#include "jit/tier_options.h"
#include "security/thread_role.h"

namespace jit {

class LoadedTier;

struct TierStats {
  std::string mode;                // "auto", "interp", "llvm"
  std::string tier;                // the tier's describe() line; empty when none is loaded
  uint64_t regions_compiled = 0;   // successful compiles
  uint64_t regions_reused = 0;     // requests answered with code compiled before (another hart or page)
  uint64_t regions_installed = 0;  // of those, entered into a hart's decoded page (auto: may be late)
  uint64_t regions_failed = 0;     // compiles the tier refused (counted, interpreter used instead)
  std::string last_failure;        // the tier's message for the latest refusal
  uint64_t regions_dropped = 0;    // auto: requests dropped unserved (stale, or the queue was full)
  uint64_t batches = 0;            // LLVM modules compiled (auto batches several regions into one)
  uint64_t compile_ns_total = 0;   // wall clock, per region (a batch's time split over its regions)
  uint64_t compile_ns_p50 = 0, compile_ns_p99 = 0;
  uint64_t compile_cpu_ns = 0;           // CPU time of the compiling threads spent compiling
  uint64_t load_cpu_ns = 0;              // CPU time of loading the tier (libLLVM) and making its compilers
  uint64_t compiled_guest_insns = 0;     // guest instructions in the regions compiled (static count)
  uint64_t guest_instructions = 0;       // retired by all harts
  uint64_t compiled_instructions = 0;    // of those, in compiled regions
  bool lockstep = false;                 // lockstep mode (jit/lockstep.h), filled in by the Engine
  uint64_t lockstep_compared = 0;        // region exits checked against the interpreter
  uint64_t lockstep_device_exits = 0;    // of those, exits before a device access (made by the interpreter)
  uint64_t code_bytes = 0;               // generated code and data held (all compiler instances)
  uint64_t code_cache_limit = 0;         // bytes; past it the code cache is flushed
  uint64_t code_cache_flushes = 0;       // times all compiled code was dropped for the limit
  uint64_t exits[kJitExitReasons] = {};  // region exits by JitExitReason
  uint64_t chains = 0;                   // region-to-region tail calls (exits that did not return)
  uint64_t regions_optimised = 0;        // auto: hot regions recompiled at kJitCompileHot (tier-up)
  uint64_t optimise_cpu_ns = 0;          // CPU time of those recompiles (also in compile_cpu_ns)
};

// The name of a JitExitReason in `up --stats` ("branch", "trap", "indirect", "budget", "code_store").
const char* exit_reason_name(unsigned reason);

// A region to compile, formed by a hart from its decoded page.
struct CompileJob {
  std::vector<JitRegionInsn> insns;
  uint32_t entry_offset = 0;
  uint64_t ppn = 0, generation = 0;  // the decoded page it came from, for installing the result
  const void* source = nullptr;      // the hart that asked (requests merge per hart and page)
  uint32_t heat = 0;                 // block entries when asked; the hart asks again as it doubles
  std::chrono::steady_clock::time_point asked{};
  // Called on the compile thread with the result (nullptr when the tier refused the region).
  std::function<void(const CompileJob&, RegionEntry)> done;
};

class TierManager {
 public:
  // Loads the tier for `options` (nothing for kInterp). kAuto without a loadable tier gives a
  // manager that compiles nothing (stats say why); kLlvm without one is an error.
  // harts: the guest's harts (the compile threads yield to them when they fill the host's cores).
  static base::Result<std::unique_ptr<TierManager>, std::string> create(const TierOptions& options,
                                                                        unsigned harts = 1);
  ~TierManager();
  TierManager(const TierManager&) = delete;
  TierManager& operator=(const TierManager&) = delete;

  // Whether harts should count and promote hot code (auto: the tier may still be loading).
  bool active() const { return m_active; }
  bool synchronous() const { return m_options.mode == TierOptions::Mode::kLlvm; }
  // Both modes compile fast code (-O0, FastISel, guest registers in CpuState). The optimised
  // quality (SSA registers, InstCombine, -O1) makes ~2x faster tight loops (bench/interp_loop) but
  // cost ~870 us of CPU per guest instruction against ~120 us (bench/jit_compute, 2026-12-07):
  // with it, auto's results came so late that busybox's md5sum, gzip and sort ran slower than on
  // the interpreter alone, and a Linux boot spent ~0.5 s of CPU compiling 15 regions. Recompiling
  // only the regions that stay hot at the optimised quality (tier-up) did not pay on those
  // programs either: most regions run ~25 instructions per entry, and SSA code loads and stores
  // every register it uses at each entry and exit.
  //
  // So hot code is recompiled instead (tier-up, auto only) at kJitCompileHot: the fast code's shape
  // (registers in CpuState, so no phis per register and exit) through -O1 codegen. A region whose
  // entry has run tier_up_retired() guest instructions (with what it chained to) is compiled again
  // on a compile thread when no fast compile is waiting, and each hart swaps its function for the
  // new one between chunks (request_tier_up). At the optimised quality (SSA) the same tier-up made
  // every jit_compute program slower (2026-12-07 18:28, docs/benchmarks.md): its compiles cost
  // more than its code saved.
  int quality() const { return kJitCompileFast; }
  uint64_t tier_up_retired() const {
    return m_options.tier_up_retired ? m_options.tier_up_retired : TierOptions::kDefaultTierUpRetired;
  }
  uint32_t hot_threshold() const { return m_threshold; }
  std::string note() const {  // why an `auto` tier is inactive
    std::lock_guard<std::mutex> lock(m_queue_mutex);
    return m_note;
  }

  // Compiles now, on the calling (hart) thread. nullptr when the tier refuses the region.
  RegionEntry compile_now(const std::vector<JitRegionInsn>& insns, uint32_t entry_offset);
  // Queues a region for the background threads (auto). A request for an entry already queued
  // (same hart, page contents and offset) updates it (heat, time); when the queue is full the
  // coldest request is dropped. The threads take the hottest first (entries x size) and drop
  // requests not renewed for kStaleAfter: the boot code that asked has moved on.
  void enqueue(CompileJob job);
  static constexpr std::chrono::milliseconds kStaleAfter{2000};
  // Requests one compile thread takes at once into one LLVM module.
  static constexpr size_t kBatchJobs = 32;
  // Tier-up (auto): asks for `fn` (a region of code epoch `epoch`) at kJitCompileHot. `done`
  // is called once, on a compile thread or at once, with the new code (its entries keep fn's
  // indices), or not at all when the region is not known, its epoch is gone or the compile fails.
  void request_tier_up(JitRegionFn fn, uint64_t epoch, std::function<void(JitRegionFn, RegionEntry)> done);
  // Stops and joins the compile threads (before the harts that receive results go away).
  void stop();

  void count_instructions(uint64_t total, uint64_t compiled) {
    m_guest_instructions.fetch_add(total, std::memory_order_relaxed);
    m_compiled_instructions.fetch_add(compiled, std::memory_order_relaxed);
  }
  // Adds a hart's region exits (by JitExitReason) and chains, and zeroes them.
  void count_exits(uint64_t (&exits)[kJitExitReasons], uint64_t* chains) {
    for (unsigned i = 0; i < kJitExitReasons; ++i) {
      if (exits[i]) m_exits[i].fetch_add(exits[i], std::memory_order_relaxed);
      exits[i] = 0;
    }
    if (*chains) m_chains.fetch_add(*chains, std::memory_order_relaxed);
    *chains = 0;
  }
  TierStats stats() const;
  void note_installed() { m_installed.fetch_add(1, std::memory_order_relaxed); }

  // The bounded code cache. Past the limit all compiled code is dropped at once: the epoch moves
  // on, each hart forgets its regions when it next enters execute() (Hart::enter_code_epoch) and
  // the old code is freed once every hart is outside execute() or has entered the new epoch.
  // Each attached hart publishes the epoch it runs compiled code of (kIdle: none) in `running`.
  static constexpr uint64_t kIdle = ~0ull;
  uint64_t epoch() const { return m_epoch.load(std::memory_order_seq_cst); }
  void attach(const std::atomic<uint64_t>* running);
  void detach(const std::atomic<uint64_t>* running);

 private:
  explicit TierManager(const TierOptions& options);
  unsigned m_harts = 1;
  struct Instance {
    void* compiler = nullptr;        // replaced only under mutex (renew)
    std::atomic<uint64_t> epoch{0};  // of the code it holds
    std::atomic<uint64_t> bytes{0};  // code it holds (read after each compile)
    std::mutex mutex;
  };
  // Under instance.mutex: a compiler of the current epoch (an older one is retired and replaced).
  // False when no new compiler could be made (the compile is skipped).
  bool renew(Instance& instance, uint64_t epoch, int quality = kJitCompileFast);
  // After a compile: flushes when the live code is over the limit.
  void enforce_limit();
  // Frees retired compilers no hart can be running code of.
  void reclaim();
  uint64_t live_code_bytes() const;
  RegionEntry compile_on(Instance& instance, const std::vector<JitRegionInsn>& insns, uint32_t entry_offset);
  // Compiled code by content: regions are position independent (every pc is page_va + offset), so
  // the same instructions at the same offsets share one compile across harts and pages.
  struct CompiledCode {
    std::vector<JitRegionInsn> insns;
    uint32_t entry_offset = 0;
    RegionEntry entry;
  };
  static uint64_t content_key(const std::vector<JitRegionInsn>& insns, uint32_t entry_offset);
  RegionEntry find_compiled(uint64_t key, const std::vector<JitRegionInsn>& insns,
                            uint32_t entry_offset) const;
  // Loads the library and creates `instances` compilers; an error message, or empty.
  std::string load(const std::string& path, unsigned instances);
  // Compile thread `index` (auto); thread 0 first loads the tier for all `threads`.
  void worker(unsigned index, const std::string& path, unsigned threads);
  // Under m_queue_mutex: drops stale requests and moves the hottest ones (with the other requests
  // for the same page) into `batch`.
  void take_batch(std::vector<CompileJob>* batch);
  // Compiles `batch` on `instance` as one module, the requests for one page as one region with
  // several entries, and reports each request's result through its `done`.
  void compile_batch(Instance& instance, std::vector<CompileJob>& batch);
  // Tier-up: the region `fn` again at kJitCompileHot on `instance`, answering `waiting`.
  struct TierUpJob {
    JitRegionFn fn = nullptr;
    uint64_t epoch = 0;
    std::function<void(JitRegionFn, RegionEntry)> done;
  };
  void optimise(Instance& instance, std::vector<TierUpJob>& waiting);
  // What a fast-compiled region was made from (auto), for its tier-up: under m_compiled_mutex.
  struct RegionSource {
    std::vector<JitRegionInsn> insns;
    std::vector<uint32_t> entries;
    uint64_t epoch = 0;
    bool queued = false;
    JitRegionFn optimised = nullptr;
  };
  std::unordered_map<JitRegionFn, RegionSource> m_sources;

  TierOptions m_options;
  uint32_t m_threshold = 1;
  std::string m_note;
  std::unique_ptr<LoadedTier> m_library;
  JitHelpers m_helpers{};
  std::vector<std::unique_ptr<Instance>>
      m_instances;  // llvm: one, for synchronous compiles; auto: one per thread
  // tier llvm: compilers for synchronous compiles, added while harts find them all busy.
  static constexpr unsigned kMaxSyncCompilers = 8;
  std::unique_ptr<Instance> m_sync[kMaxSyncCompilers];
  std::atomic<unsigned> m_sync_count{0};
  std::mutex m_sync_grow_mutex;
  bool m_active = false;
  std::atomic<bool> m_ready{false};  // m_library and m_instances are there

  mutable std::mutex m_queue_mutex;
  std::condition_variable m_queue_cv;
  std::vector<CompileJob> m_queue;
  std::vector<TierUpJob> m_tier_up;                     // under m_queue_mutex; taken when m_queue is empty
  std::vector<std::unique_ptr<Instance>> m_optimisers;  // auto: one per compile thread, made lazily
  bool m_stopping = false;
  bool m_load_failed = false;  // auto: the background load failed (m_note says why)
  std::vector<std::thread> m_threads;
  // auto: held while the first compile thread loads the tier (seccomp arms after that).
  std::unique_ptr<security::ArmingHold> m_arming_hold;

  std::atomic<uint64_t> m_epoch{0};
  uint64_t m_limit = 0;
  std::atomic<uint64_t> m_flushes{0};
  mutable std::mutex m_epoch_mutex;  // guards m_running and m_retired
  std::vector<const std::atomic<uint64_t>*> m_running;
  std::vector<std::pair<uint64_t, void*>> m_retired;  // (epoch that made them old, compiler)

  mutable std::mutex m_compiled_mutex;
  std::unordered_multimap<uint64_t, CompiledCode> m_compiled;

  mutable std::mutex m_stats_mutex;
  uint64_t m_reused = 0;
  uint64_t m_dropped = 0;  // under m_queue_mutex
  uint64_t m_batches = 0;
  uint64_t m_compile_cpu_ns = 0;
  std::vector<uint64_t> m_compile_ns;
  uint64_t m_failed = 0;
  uint64_t m_load_cpu_ns = 0;
  uint64_t m_compiled_guest_insns = 0;
  uint64_t m_optimised = 0, m_optimise_cpu_ns = 0;
  std::string m_last_failure;
  std::atomic<uint64_t> m_guest_instructions{0}, m_compiled_instructions{0}, m_installed{0};
  std::atomic<uint64_t> m_exits[kJitExitReasons] = {};
  std::atomic<uint64_t> m_chains{0};
};

}  // namespace jit
