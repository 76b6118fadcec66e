// The riscv64 reference interpreter: one `Hart` per guest hart, each run on its own host thread,
// sharing a `Platform` (RAM mappings, device access, the timebase).
//
// Design (see docs/benchmarks.md for numbers):
// - Instructions are decoded once into per-physical-page arrays of `Insn` (one slot per 2 bytes,
//   filled lazily) and dispatched from there. A page's decoded copy is dropped when this hart
//   stores into a decoded part of it, and re-checked against the page's bytes after fence.i;
//   other harts' stores need fence.i, as the ISA says (Linux and OpenSBI issue it via SBI).
// - Three small direct-mapped TLBs (fetch/read/write) per translation context map guest-virtual
//   pages straight to host pointers; a miss walks Sv39/Sv48 page tables (A/D updated atomically).
//   The write TLB never holds a page that has decoded code, so stores need no extra check.
// - Guest faults are values: helpers record (cause, tval) and return false; the loop then enters
//   the trap handler. Nothing a guest does throws or aborts.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "accel/accelerator.h"
#include "base/guest_memory.h"
#include "base/timebase.h"
#include "jit/arch_bits.h"
#include "jit/code_cache.h"
#include "jit/cpu_state.h"
#include "jit/decode.h"
#include "jit/lockstep.h"
#include "jit/tier.h"

namespace jit {

class TierManager;

// What all harts of a VM share. RAM regions are fixed before the harts start running.
class Platform {
 public:
  Platform(accel::VmOps& ops, const base::Timebase& timebase, CpuConfig config = {})
      : m_ops(ops), m_timebase(timebase), m_config(config) {}

  // Idempotent: mapping the same region twice is fine.
  void add_ram(const base::GuestMemory::Region& region);

  // Host bytes of guest-physical [pa, pa+len) when they lie inside one RAM region, else nullptr.
  uint8_t* ram(uint64_t pa, uint64_t len) const {
    for (const auto& r : m_ram) {
      if (pa >= r.guest_base && pa - r.guest_base <= r.size && len <= r.size - (pa - r.guest_base))
        return r.host + (pa - r.guest_base);
    }
    return nullptr;
  }

  accel::VmOps& ops() const { return m_ops; }
  const base::Timebase& timebase() const { return m_timebase; }
  const CpuConfig& config() const { return m_config; }
  // Lockstep mode with several harts: they run one chunk at a time (jit/lockstep.h).
  LockstepTurns& lockstep_turns() { return m_lockstep_turns; }

 private:
  LockstepTurns m_lockstep_turns;
  accel::VmOps& m_ops;
  const base::Timebase& m_timebase;
  CpuConfig m_config;
  std::vector<base::GuestMemory::Region> m_ram;
};

class Hart {
 public:
  Hart(Platform& platform, unsigned hart_id);
  ~Hart();
  Hart(const Hart&) = delete;
  Hart& operator=(const Hart&) = delete;

  // Power-on state: M-mode at pc, a0..a2 as given, everything else zero.
  void reset(uint64_t pc, uint64_t a0, uint64_t a1, uint64_t a2);

  // Runs guest code until kick(). Only from this hart's thread.
  void run();
  // Makes run() return soon; sticky: a kick before run() makes the next run() return at once.
  void kick();
  // Sets or clears a mip bit driven from outside (MSIP, MTIP, SEIP, MEIP). Any thread.
  void set_irq(unsigned bit, bool level);

  // Inspection (tests, debugging). Not synchronised with run().
  uint64_t x(unsigned i) const { return i < 32 ? m_s.x[i] : 0; }
  void set_x(unsigned i, uint64_t v) {
    if (i > 0 && i < 32) m_s.x[i] = v;
  }
  uint64_t f(unsigned i) const { return m_s.f[i & 31]; }
  uint64_t pc() const { return m_s.pc; }
  Priv priv() const { return m_s.priv; }
  uint64_t instret() const { return m_s.instret; }
  // Reads a CSR as M-mode would (nullopt-like false for unimplemented ones).
  bool read_csr(uint16_t csr, uint64_t* value);
  unsigned hart_id() const { return m_hart_id; }

  // Runs at most `max_instructions` and returns (for tests and the benchmark); wfi returns too.
  void step(uint64_t max_instructions);

  // Park: request_park() (any thread) makes run() stop between chunks (within kChunk
  // instructions, or at once from wfi) and wait, without returning, until resume(). While parked,
  // state() and set_state() may be used from other threads. wait_parked() waits up to `timeout`
  // and is true once the hart is parked or not inside run() at all.
  void request_park();
  bool wait_parked(std::chrono::milliseconds timeout);
  void resume();
  bool parked() const { return m_parked.load(std::memory_order_acquire); }

  // The architectural state. Only while the hart is not running (parked, or from its own thread).
  const CpuState& state() const { return m_s; }
  // instret as of the last chunk boundary, for other threads (query-stats); state() is the hart's own.
  uint64_t published_instret() const { return m_published_instret.load(std::memory_order_relaxed); }
  // Replaces the architectural state and rebuilds everything derived from it (TLBs, decoded code,
  // PMP summary); a reservation cannot survive (its host address may be stale).
  void set_state(const CpuState& state);

  // Debug control (accel::Vcpu::set_debug), only while the hart is not running. With a step or any
  // breakpoint the hart runs one instruction at a time through the interpreter (compiled regions
  // are not entered) and run() returns with a debug stop; an empty setting restores full speed.
  // The instruction at the pc the hart resumes from runs without its breakpoint stopping it.
  struct Watch {
    uint64_t addr = 0, len = 0;  // guest-virtual [addr, addr+len)
    bool read = false, write = false;
  };
  struct DebugStop {
    enum class Kind { kBreakpoint, kStep, kWatch } kind = Kind::kBreakpoint;
    uint64_t pc = 0;
    uint64_t data_addr = 0;  // kWatch: the first byte of the access that overlapped a watch
    bool write = false;      // kWatch: the access was a store (or an AMO)
  };
  // Watches stop the hart before the load or store that overlaps one, with the pc at its
  // instruction and nothing done: gdb on riscv treats watchpoints as non-steppable (as the debug
  // triggers are: timing "before") and steps over the access itself, then compares the values. The
  // instruction at the pc the hart resumes from runs without its watch stopping it.
  void set_debug(bool single_step, std::vector<uint64_t> breakpoints, std::vector<Watch> watches = {});
  // Why the last run() returned: a debug stop, or nothing (a kick). Clears it.
  std::optional<DebugStop> take_debug_stop() { return std::exchange(m_debug_stop, std::nullopt); }
  // Guest-virtual -> guest-physical as this hart's data accesses would translate now, for a
  // debugger: no A/D updates, no permission or PMP checks, no trap. False when nothing maps it.
  bool debug_translate(uint64_t va, uint64_t* pa) const;

  // Forgets decoded code in guest-physical [pa, pa+len) (device DMA, a loader writing RAM). Any
  // thread; applied before the hart's next chunk.
  void invalidate_range(uint64_t pa, uint64_t len);

  // The compiled tier (jit/tier_manager.h), shared by the engine's harts; before run(). Its
  // threshold and mode say when a block head is promoted and whether compiling waits.
  void set_tier(TierManager* tier);
  // Bumped whenever decoded code is dropped by this hart's own stores (compiled code checks it).
  uint64_t code_epoch() const { return m_code_epoch; }
  // Instructions this hart ran inside compiled regions.
  uint64_t compiled_instructions() const { return m_compiled_retired; }
  // Lockstep mode (jit/lockstep.h): every compiled region entered is also run on the interpreter
  // and compared. Before run(), after set_tier(). lockstep(): nullptr while off; its failure()
  // (the first divergence) stops the hart: run() and step() return.
  void set_lockstep(bool on);
  Lockstep* lockstep() { return m_lockstep.get(); }
  const Lockstep* lockstep() const { return m_lockstep.get(); }

  // Slow paths behind jit/mmu.h's C entry points. false: a trap is pending (take_pending_trap()).
  bool load_slow(uint64_t va, void* out, unsigned size);
  bool store_slow(uint64_t va, const void* in, unsigned size);
  bool exec_amo(const Insn& in);
  // An F/D or atomic instruction at pc for compiled code (jit_tier_exec), as the interpreter runs it.
  bool exec_for_tier(const Insn& in, uint64_t pc) {
    m_s.pc = pc;
    return is_fp(in.op) ? exec_fp(in) : exec_amo(in);
  }
  int raise_access_fault(uint64_t va, bool store) {
    return raise(store ? kStoreAccessFault : kLoadAccessFault, va);
  }
  int raise_illegal() { return raise(kIllegalInstruction, 0); }
  // Enters the trap recorded by a failed slow path, with m_s.pc at the faulting instruction.
  void take_pending_trap() { take_trap(m_trap_cause, m_trap_tval, false); }

 private:
  enum Access : int { kRead = 0, kWrite = 1, kFetch = 2 };
  static constexpr int kTlbBits = 8;
  static constexpr int kTlbSize = 1 << kTlbBits;
  // Translation contexts: separate TLBs so privilege changes and SUM toggles need no flush.
  enum Ctx : int { kCtxU = 0, kCtxS = 1, kCtxSSum = 2, kCtxBare = 3, kCtxCount = 4 };

  struct TlbEntry {
    uint64_t tag = ~0ull;         // guest-virtual page number
    uintptr_t addend = 0;         // host address - guest-virtual address, for RAM pages
    DecodedPage* page = nullptr;  // fetch TLB only
  };
  enum class ChunkEnd { kBudget, kWfi, kStop };  // kStop: a trigger stopped the hart for the debugger

  ChunkEnd execute(int64_t budget);
  bool check_interrupts();
  void wait_for_interrupt();
  uint64_t current_mip() const;

  // Traps.
  bool raise(uint64_t cause, uint64_t tval) {
    m_trap_cause = cause;
    m_trap_tval = tval;
    return false;
  }
  void take_trap(uint64_t cause, uint64_t tval, bool interrupt);
  void set_priv(Priv p);
  void update_contexts();

  // Memory.
  template <typename T>
  bool load(uint64_t va, T* out) {
    const TlbEntry& e = m_tlb[m_data_ctx][kRead][(va >> 12) & (kTlbSize - 1)];
    if (__builtin_expect(e.tag == ((va >> 12) | m_tlb_gen[kRead]) && (va & 0xfff) <= 4096 - sizeof(T), 1)) {
      // Safe: the TLB only holds pages that lie wholly inside a mapped RAM region.
      std::memcpy(out, reinterpret_cast<const void*>(e.addend + va), sizeof(T));
      return true;
    }
    return load_slow(va, out, sizeof(T));
  }
  template <typename T>
  bool store(uint64_t va, T value) {
    const TlbEntry& e = m_tlb[m_data_ctx][kWrite][(va >> 12) & (kTlbSize - 1)];
    if (__builtin_expect(e.tag == ((va >> 12) | m_tlb_gen[kWrite]) && (va & 0xfff) <= 4096 - sizeof(T), 1)) {
      // Safe: as in load(); write entries also exclude pages holding decoded code.
      std::memcpy(reinterpret_cast<void*>(e.addend + va), &value, sizeof(T));
      return true;
    }
    return store_slow(va, &value, sizeof(T));
  }
  // Host pointer for an aligned RAM access inside one page (LR/SC/AMO); raises on failure.
  uint8_t* host_for_atomic(uint64_t va, Access access, unsigned size);
  // va -> pa for an access of `size` bytes at va (within one page), including the PMP check.
  bool translate(uint64_t va, Access access, uint64_t* pa, unsigned size = 1);
  Priv data_priv() const {
    return (m_s.mstatus & (1ull << 17)) ? static_cast<Priv>((m_s.mstatus >> 11) & 3) : m_s.priv;
  }
  // PMP (priv 1.12 section 3.7): whether [pa, pa+size) may be accessed by `priv`. As in QEMU, a hart
  // with no active entry allows everything, so bare-metal code need not program PMP first.
  bool pmp_allows(uint64_t pa, uint64_t size, Access access, Priv priv) const;
  void pmp_changed();
  bool walk(uint64_t va, Access access, bool user, bool sum, uint64_t* pa);
  bool fault(Access access, uint64_t va, bool page_fault);
  void tlb_insert(Access access, uint64_t va, uint64_t pa, uint8_t* host_page);
  void flush_tlb();
  void flush_write_tlb();
  // Invalidates every entry of one kind (fetch/read/write) in O(1): entries carry their table's
  // generation in tag bits 52..63 (a page number needs at most 52 bits), so bumping it makes them
  // all miss. Linux flushes thousands of times a second (sfence.vma, satp writes).
  void bump_tlb(Access access);
  void note_store(uint64_t pa, unsigned size);  // drops decoded code the store overlaps

  // Instruction fetch.
  bool refill_fetch(uint64_t pc);
  DecodedPage* decoded_page(uint64_t ppn, uint8_t* host);
  void invalidate_code(uint64_t pa, uint64_t len);  // this thread's own stores and loaders
  void apply_posted_invalidations();                // invalidate_range() calls from other threads
  void flush_decoded();                             // drops every decoded page (reset, cache full)
  void fence_i();                                   // marks every decoded page stale (see DecodedPage::stale)
  bool fetch_cross_page(uint64_t pc, Insn* out);

  // Instruction groups kept out of the hot loop.
  bool exec_csr(const Insn& in);
  bool exec_system(const Insn& in, uint64_t* pc);
  bool exec_fp(const Insn& in);
  bool csr_read(uint16_t csr, uint64_t* value);
  bool csr_write(uint16_t csr, uint64_t value);
  bool counter_allowed(uint16_t csr) const;
  bool fp_enabled() const { return (m_s.mstatus >> 13 & 3) != 0; }
  void fp_dirty() { m_s.mstatus |= 3ull << 13; }
  uint32_t f32(unsigned r) const;
  void set_f32(unsigned r, uint32_t v);
  void set_f64(unsigned r, uint64_t v);
  void accrue(uint32_t flags);

  // Translator tier. A promoted block head's slot in the decoded page becomes Op::kCompiled with
  // imm indexing m_regions, which keeps the instruction it replaced (run when the chunk has too
  // little budget left for a region). Dropping the decoded page drops the marker with it.
  struct CompiledRegion {
    JitRegionFn fn = nullptr;
    uint32_t entry = 0;  // fn's `entry` argument: where in fn this block head starts
    Insn original;
    uint64_t retired = 0;        // instructions run entering here (with what it chained to)
    bool tier_up_asked = false;  // TierManager::request_tier_up sent for fn
  };
  static constexpr size_t kMaxRegions = 1 << 16;  // per hart; promotion stops beyond it
  // Instructions a region is formed with at most: compile time grows with size, and with every
  // block head compiled (tier llvm) most regions are cold (a Linux boot compiles thousands).
  static constexpr size_t kRegionFormCap = 64;
  struct ReadyRegion {
    uint64_t ppn = 0, generation = 0;
    uint32_t offset = 0;
    RegionEntry code;
  };
  void promote(uint64_t pc, uint32_t heat);  // pc's page is the current fetch page; heat: its entries
  bool form_region(DecodedPage* page, uint32_t entry, std::vector<JitRegionInsn>* out);
  void install(DecodedPage* page, uint32_t offset, RegionEntry code);
  void install_ready();                      // background results and tier-ups, between chunks
  void ask_tier_up(CompiledRegion& region);  // region's code ran tier_up_retired(): optimise it
  // At the start of execute(): forgets every region if the code cache was flushed since, and
  // publishes the epoch whose code this hart may now run (m_running_epoch, for TierManager).
  void enter_code_epoch();
  // Lockstep (jit/lockstep.cpp): runs the region at pc with `budget`, then the interpreter from
  // the state it began with, and compares; leaves the state after the region's exit (its trap
  // entered) and returns the instructions retired.
  uint64_t lockstep_region(JitRegionFn fn, uint32_t entry, uint64_t pc, int64_t budget);
  struct LockstepStep;
  // The interpreter alone from `from` for `count` instructions, its stores logged; with `trace`,
  // the state before each instruction.
  void lockstep_replay(const CpuState& from, uint64_t count, std::vector<LockstepStep>* trace);
  void lockstep_interpret(uint64_t count, std::vector<LockstepStep>* trace);  // from the current state
  std::string lockstep_report(const CpuState& compiled, const std::vector<Lockstep::Store>& compiled_stores,
                              const CpuState& before, uint64_t retired, uint64_t status, uint64_t entry_pc);
  std::string describe_insn(uint64_t pc);
  ChunkEnd lockstep_chunk(int64_t budget);  // one chunk in this hart's turn
  bool lockstep_failed() const { return m_lockstep && !m_lockstep->failure().empty(); }
  // Before a device access: true (with a pending stop) when lockstep's compiled run must not make it.
  bool lockstep_device_stop() {
    if (__builtin_expect(m_lockstep == nullptr, 1) || !m_lockstep->m_stop_devices) return false;
    m_lockstep->m_device_stop = true;
    raise(kEnterDebug, 0);  // a cause take_trap ignores; lockstep_region acts on it instead
    return true;
  }
  std::unique_ptr<Lockstep> m_lockstep;
  uint64_t m_epoch_seen = 0;
  std::atomic<uint64_t> m_running_epoch{~0ull};  // TierManager::kIdle outside execute()
  TierManager* m_tier = nullptr;
  bool m_tier_on = false;
  uint16_t m_hot_threshold = 1;
  bool m_reask = false;                // background compiles: promote again as a waiting entry's heat doubles
  uint64_t m_tier_up_retired = ~0ull;  // TierManager::tier_up_retired()
  uint64_t m_code_epoch = 0;
  uint64_t m_compiled_retired = 0;
  uint64_t m_region_exits[kJitExitReasons] = {};  // this chunk's, by JitExitReason; handed to m_tier
  std::vector<CompiledRegion> m_regions;
  // Compiled block heads by guest-virtual pc, for chaining (JitMemView::jump). Filled when the
  // dispatcher enters a region; an entry holds only under the fetch context and fetch-TLB
  // generation it was made in (its key), and everything that changes translation or drops decoded
  // code bumps that generation (bump_tlb clears the table when the generation wraps).
  JitJumpEntry m_jump[kJitJumpEntries];
  uint64_t m_region_chains = 0;  // this chunk's region-to-region tail calls; handed to m_tier
  std::mutex m_ready_mutex;
  std::vector<ReadyRegion> m_ready;
  std::vector<std::pair<JitRegionFn, RegionEntry>> m_upgrades;  // tier-ups: (old fn, new code)
  std::atomic<bool> m_has_ready{false};

  Platform& m_platform;
  const unsigned m_hart_id;
  bool m_trace_traps = false;
  bool m_trace_state = false;  // VMLAUNCH_JIT_TRACE=state: a state line per hart each second
  std::chrono::steady_clock::time_point m_next_dump{};
  void dump_state(const char* where);
  bool m_trace_mmio = false;  // VMLAUNCH_JIT_TRACE=mmio: every device access
  void trace_mmio(const char* what, uint64_t pa, const uint8_t* bytes, unsigned size) const;

  CpuState m_s;
  std::atomic<uint64_t> m_published_instret{0};     // m_s.instret, stored once per chunk
  bool m_pmp_active = false, m_pmp_locked = false;  // derived from m_s.pmpcfg by pmp_changed()

  // Interrupt inputs driven by devices, and the wake-up machinery for wfi and kick().
  std::atomic<uint64_t> m_mip_ext{0};
  std::atomic<bool> m_kick{false};
  std::mutex m_wait_mutex;
  std::condition_variable m_wait_cv;

  // Pending trap of the instruction being executed.
  uint64_t m_trap_cause = 0, m_trap_tval = 0;
  int64_t m_chunk_retired = 0;  // instructions retired so far in the current chunk (for instret reads)
  bool m_end_chunk = false;     // an instruction changed state the outer loop must look at

  // Translation and decode caches.
  int m_data_ctx = kCtxBare, m_fetch_ctx = kCtxBare;
  TlbEntry m_tlb[kCtxCount][3][kTlbSize];
  uint64_t m_tlb_gen[3] = {0, 0, 0};  // per Access, in bits 52..63
  uint64_t m_fetch_vpn = ~0ull;
  Insn* m_fetch_insns = nullptr;
  DecodedPage* m_fetch_page = nullptr;
  Insn m_cross_insn;
  CodeCache m_code;

  // Park handshake (request_park/resume), on m_wait_mutex and m_wait_cv.
  std::atomic<bool> m_park_requested{false};
  std::atomic<bool> m_parked{false};
  bool m_in_run = false;  // under m_wait_mutex: a thread is inside run()
  void park_here();
  void run_until_kicked();

  // Debug mode (set_debug): m_breakpoints is sorted.
  bool m_debug_active = false, m_debug_step = false;
  bool m_debug_skip = false;  // the next instruction at m_debug_skip_pc ignores its breakpoint
  uint64_t m_debug_skip_pc = 0;
  std::vector<uint64_t> m_breakpoints;
  std::vector<Watch> m_watches;
  std::optional<DebugStop> m_debug_stop;
  // Before a data access at [va, va+size): false when it overlaps a watch, which stops the hart
  // before the access like a debugger's load/store trigger (a pending kEnterDebug; the instruction
  // neither completes nor retires). Pages with watches never enter the data TLBs, so every access
  // to them comes through the slow paths that call this.
  bool check_watch(uint64_t va, unsigned size, bool write) {
    if (__builtin_expect(m_watches.empty(), 1) || m_trig_quiet) return true;
    for (const Watch& w : m_watches) {
      if (va < w.addr + w.len && w.addr < va + size && (write ? w.write : w.read)) {
        m_debug_stop = DebugStop{DebugStop::Kind::kWatch, 0, std::max(va, w.addr), write};
        m_trig_data_stop = true;
        return raise(kEnterDebug, m_debug_stop->data_addr);
      }
    }
    return true;
  }
  bool page_watched(uint64_t va) const {
    for (const Watch& w : m_watches)
      if ((va & ~0xfffull) < w.addr + w.len && w.addr < (va & ~0xfffull) + 4096) return true;
    return false;
  }
  bool debug_chunk();  // some instructions in debug mode; true on a debug stop

  // Debug triggers (Sdtrig, trigger.cpp). The CSRs live in m_s (tselect, tdata1, tdata2); these
  // flags are derived from them by triggers_changed(), so a hart with no trigger armed pays one
  // flag test per chunk and one per data slow path. While any trigger is armed the hart runs only
  // in the interpreter (execute() neither promotes nor enters compiled regions). Execute triggers
  // (and debugger-owned ones) make it run one instruction at a time (trigger_chunk), tested before
  // each; load/store triggers keep the pages they cover out of the data TLBs, so every access to
  // them reaches the slow paths, which test it before touching memory.
  bool m_trig_armed = false;      // some trigger is enabled
  bool m_trig_exec = false;       // some enabled trigger matches instruction addresses
  bool m_trig_data = false;       // some enabled trigger matches load/store addresses
  bool m_trig_step = false;       // run instruction by instruction (execute triggers, or action 1)
  bool m_trig_quiet = false;      // the instruction the debugger resumes at: debugger triggers hold off
  bool m_trig_skip = false;       // after a debugger trigger stop: its instruction runs once unhindered
  bool m_trig_data_stop = false;  // a load/store trigger with action 1 fired in this instruction
  uint64_t m_trig_skip_pc = 0;
  static constexpr uint64_t kEnterDebug = ~0ull;  // pending "trap" cause: stop for the debugger
  void triggers_changed();
  static uint64_t legal_trigger(uint64_t tdata1);  // as a debugger's write leaves it (dmode kept)
  bool trigger_csr_read(uint16_t csr, uint64_t* value) const;
  bool trigger_csr_write(uint16_t csr, uint64_t value);
  // Before the instruction at m_s.pc: true when a trigger fired (the breakpoint trap is taken, or
  // m_debug_stop is set for action 1).
  bool fire_exec_trigger();
  // Before a load and/or store of [va, va+size): false when a trigger fired (a pending trap:
  // breakpoint, or kEnterDebug with m_debug_stop set).
  bool check_data_trigger(uint64_t va, unsigned size, bool load, bool store) {
    return __builtin_expect(!m_trig_data, 1) || data_trigger_passes(va, size, load, store);
  }
  bool data_trigger_passes(uint64_t va, unsigned size, bool load, bool store);
  bool page_triggered(uint64_t va) const;  // a load/store trigger may match inside va's page
  ChunkEnd execute_one_checked();          // one instruction, execute triggers tested first
  ChunkEnd trigger_chunk(int64_t budget);  // up to budget instructions that way
};

}  // namespace jit
