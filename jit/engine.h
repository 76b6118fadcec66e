// The `jit` accelerator's one front door: everything outside jit/ (accel/jit, benches, tests of the
// accelerator) reaches the execution tiers only through Engine. Today the interpreter (jit::Hart)
// and the LLVM translator tier (jit/tier_manager.h, loaded at run time) sit behind it; its LLVM
// headers stay behind this file.
//
// Threads: each hart's run() is called from that hart's own (vCPU) thread. kick, set_irq, park,
// resume, invalidate_range and halt may be called from any thread. state/set_state of a hart only
// while it is parked or not running.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accel/accelerator.h"
#include "base/guest_memory.h"
#include "base/result.h"
#include "base/timebase.h"
#include "jit/cpu_state.h"
#include "jit/tier_manager.h"
#include "jit/tier_options.h"

namespace jit {

class Hart;
class Platform;

class Engine {
 public:
  Engine(accel::VmOps& ops, const base::Timebase& timebase, unsigned hart_count, const CpuConfig& config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  unsigned hart_count() const { return static_cast<unsigned>(m_harts.size()); }
  // Before the harts run; mapping the same region twice is fine.
  void add_ram(const base::GuestMemory::Region& region);

  // Chooses the execution tier before any hart runs (the default is the interpreter alone):
  // loads the LLVM tier's shared object for `auto` and `llvm` (only now does libLLVM get mapped).
  // Errors: `llvm` without a loadable tier.
  base::Result<bool, std::string> set_tier(const TierOptions& options);
  // Compile and execution counts for `up --stats` (zeros without a tier).
  TierStats tier_stats() const;
  // Lockstep mode (TierOptions::lockstep): the hart's first divergence between compiled code and
  // the interpreter, which stopped it (run() returns at once from then on); empty while none.
  // From the hart's own thread, or while it does not run.
  std::string lockstep_failure(unsigned hart) const;

  // Each returns false for a hart index out of range (nothing happens then).
  // Power-on state: M-mode at pc, a0..a2 as given, everything else zero.
  bool reset(unsigned hart, uint64_t pc, uint64_t a0, uint64_t a1, uint64_t a2);
  // Runs guest code until kick(hart) or halt(); returns at once after halt().
  bool run(unsigned hart);
  // At most max_instructions (tests, benchmarks); returns early in wfi.
  bool step(unsigned hart, uint64_t max_instructions);
  bool kick(unsigned hart);
  // The hart's retired instructions as of its last chunk boundary (any thread; nullopt: no hart).
  std::optional<uint64_t> instructions_retired(unsigned hart) const;
  // Drives a mip input bit (MSIP 3, MTIP 7, SEIP 9, MEIP 11; SSIP 1, STIP 5 for tests).
  bool set_irq(unsigned hart, unsigned bit, bool level);

  // Parks every hart: each stops within a chunk of instructions (or at once from wfi) and waits
  // inside run() with its state intact; a hart outside run() parks when it next enters. False when
  // some hart did not park within `timeout` (the request stays; call resume() to cancel it).
  bool park(std::chrono::milliseconds timeout);
  // Lets parked harts continue where they stopped.
  void resume();

  // The architectural state of a parked (or not running) hart.
  std::optional<CpuState> state(unsigned hart) const;
  bool set_state(unsigned hart, const CpuState& state);

  // Debug control of one hart (only while it is parked or not running): with a step or any
  // breakpoint the hart runs one instruction at a time through the interpreter, whatever the tier,
  // and run() returns at a debug stop; debug_stop() then says which. Empty settings: full speed.
  struct DebugStop {
    enum class Kind { kBreakpoint, kStep, kWatch } kind = Kind::kBreakpoint;
    uint64_t pc = 0;
    uint64_t data_addr = 0;  // kWatch: where the access overlapped a watch
    bool write = false;      // kWatch: a store
  };
  struct Watch {
    uint64_t addr = 0, len = 0;  // guest-virtual
    bool read = false, write = false;
  };
  bool set_debug(unsigned hart, bool single_step, std::vector<uint64_t> breakpoints,
                 const std::vector<Watch>& watches = {});
  // Why the hart's last run() returned: its debug stop (cleared by the call), or nullopt.
  std::optional<DebugStop> debug_stop(unsigned hart);
  // Guest-virtual -> guest-physical under the hart's current data translation, side-effect free
  // (jit::Hart::debug_translate); nullopt when nothing maps it. While parked or not running.
  std::optional<uint64_t> debug_translate(unsigned hart, uint64_t va) const;

  // Forgets decoded (and, later, translated) code for guest-physical [pa, pa+len) on every hart:
  // for device DMA into RAM and loaders. The harts apply it before their next chunk.
  void invalidate_range(uint64_t pa, uint64_t len);

  // Stops the machine: every run() returns now (parked harts included) and at each later call.
  void halt();
  bool halted() const { return m_halted.load(std::memory_order_acquire); }

 private:
  std::unique_ptr<Platform> m_platform;
  std::unique_ptr<TierManager> m_tier;  // outlives the harts: they run its compiled code
  std::vector<std::unique_ptr<Hart>> m_harts;
  std::atomic<bool> m_halted{false};
};

}  // namespace jit
