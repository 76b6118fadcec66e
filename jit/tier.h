// The C ABI between the engine and a compiled tier that lives in its own shared object
// (libvmlaunch_jit_llvm.so), loaded with dlopen only when a jit machine asks for it, so `validate`,
// `plan` and kvm machines never map libLLVM. Plain C types and function pointers: no C++
// exceptions, no LLVM types cross it; errors are strings written into caller buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jit/cpu_state.h"
#include "jit/decode.h"

extern "C" {

// The hart's data TLBs as compiled code sees them (jit/hart.h builds one per region call): arrays
// of kJitTlbEntries entries of kJitTlbEntrySize bytes, {tag, host addend, ...}. A hit is
// tag == (va >> 12 | gen) and the access inside the page; the host address is addend + va.
// jump: the hart's jump cache, kJitJumpEntries entries of JitJumpEntry indexed by
// (pc >> 1) % kJitJumpEntries; an entry is valid when its pc and key equal the target pc and
// jump_key (the hart's fetch context and fetch-TLB generation: every change of translation or of
// decoded code changes the key). A region that leaves by a branch or JALR to a pc found there,
// with budget to spare, tail-calls that region instead of returning (chaining), adding what it
// ran to `chained_retired` and counting the hop in `chains`: the caller's total is the last
// region's retired + chained_retired.
struct JitMemView {
  const void* read_tlb;
  const void* write_tlb;
  uint64_t read_gen;
  uint64_t write_gen;
  const void* jump;
  uint64_t jump_key;
  uint64_t chained_retired;
  uint64_t chains;
};
enum { kJitTlbEntries = 256, kJitTlbEntrySize = 24, kJitTlbAddendOffset = 8 };
enum { kJitJumpEntries = 1024 };

// What a region returns. retired: instructions it executed, counting a faulting one as the
// interpreter does. status kJitExitTrap: a trap is pending on the hart (CpuState::pc is the faulting
// instruction, registers written back) and the caller enters it (Hart::take_pending_trap); any
// other status: CpuState::pc is the next instruction, and the status says why the region ended
// (counted for `up --stats`).
enum JitExitReason : uint64_t {
  kJitExitBranch = 0,     // a direct branch, jump or fall-through to code outside the region
  kJitExitTrap = 1,       // a load/store faulted or needs the interpreter's trap entry
  kJitExitIndirect = 2,   // JALR: the target is known only at run time
  kJitExitBudget = 3,     // a back-edge found the chunk's instruction budget spent
  kJitExitCodeStore = 4,  // a store changed decoded code
  kJitExitReasons = 5,
};
struct JitExit {
  uint64_t retired;
  uint64_t status;
};

// A compiled region, entered at its entry instruction. page_va: the guest-virtual address of the
// page it runs in (regions are physically indexed; every pc they compute is page_va + offset).
// budget: instructions it may run (>= kJitMaxRegionInsns); it returns before exceeding it.
// entry: which of the region's entries to start at (an index into JitRegionSpec::entries). Six
// integer arguments, all in registers, so a region can tail-call another (chaining).
typedef JitExit (*JitRegionFn)(jit::CpuState* state, void* hart, uint64_t page_va, int64_t budget,
                               JitMemView* view, uint64_t entry);
// One jump cache entry: the guest-virtual pc of a compiled block head, the key it was entered
// under, its region and which entry of the region it is.
struct JitJumpEntry {
  uint64_t pc;
  uint64_t key;
  JitRegionFn fn;
  uint64_t entry;
};

// The engine's slow paths (jit/mmu.h), called by compiled code. 1 = done, 0 = a trap is pending.
// store additionally returns 2 when the store changed decoded code (the region must exit next).
// exec runs one instruction the tier does not translate inline but need not end a region for (F/D,
// LR/SC, AMOs: jit::tier_calls_out()) with the interpreter's own routine, on the hart's CpuState:
// insn_lo/insn_hi are the 16 bytes of its jit::Insn, pc its address. 1 = done, 0 = a trap is
// pending (the region exits at pc), 2 = done but it changed decoded code.
struct JitHelpers {
  int (*load)(void* hart, uint64_t va, void* out, uint32_t size);
  int (*store)(void* hart, uint64_t va, const void* in, uint32_t size);
  int (*exec)(void* hart, uint64_t pc, uint64_t insn_lo, uint64_t insn_hi);
};

// One instruction of a region: its byte offset in the page and its decoded form.
struct JitRegionInsn {
  uint32_t offset;
  uint32_t reserved;
  jit::Insn insn;
};

// One region of a batch (compile_regions): `count` instructions of one 4 KiB page sorted by offset,
// entered at any of `entry_count` entries (offsets of listed instructions). fn receives its
// function (nullptr when the tier refused the region); a call starts at entries[entry].
struct JitRegionSpec {
  const JitRegionInsn* insns;
  size_t count;
  const uint32_t* entries;
  size_t entry_count;
  JitRegionFn fn;
};

enum { kJitTierAbiVersion = 5, kJitMaxRegionInsns = 256, kJitMaxRegionEntries = 64 };
// kJitCompileHot: fast code's shape (guest registers in CpuState) through -O1 codegen
// (SelectionDAG, the greedy register allocator): for tier-ups of hot regions.
enum { kJitCompileFast = 0, kJitCompileOptimised = 1, kJitCompileHot = 2 };

struct JitTierApi {
  uint32_t abi_version;  // kJitTierAbiVersion of the tier that was built
  // One line for logs and `vmlaunch accel`: "LLVM 19.1.7 ORC LLJIT, host x86_64-pc-linux-gnu".
  const char* (*describe)(void);
  // A compiler instance (one per compile thread; not for concurrent use). nullptr with a message in
  // error on failure. helpers must outlive it. quality: kJitCompileFast (every block, compile time
  // first) or kJitCompileOptimised (hot code, code quality first).
  void* (*create)(const JitHelpers* helpers, int quality, char* error, size_t error_len);
  void (*destroy)(void* tier);
  // Compiles a region: `count` instructions of one 4 KiB page sorted by offset, entered at
  // entry_offset. Control that leaves the listed instructions (a branch target or fall-through not
  // in the list, JALR) returns to the caller with the exact pc. Only ops jit::tier_compiles()
  // accepts may appear; anything else gives nullptr and a message. The code lives until destroy().
  JitRegionFn (*compile_region)(void* tier, const JitRegionInsn* insns, size_t count, uint32_t entry_offset,
                                char* error, size_t error_len);
  // Bytes of generated code and data this instance holds (the code cache's size).
  uint64_t (*code_bytes)(void* tier);
  // Compiles `count` regions in one module (the fixed cost of a module, its link and its memory
  // mapping, is paid once for the batch), each region one function for all its entries (hot block
  // heads of one page that a hart promoted one by one become one region, not one overlapping
  // region each). Returns how many regions compiled; a refused region's fn is nullptr and the
  // last refusal's reason is in error.
  size_t (*compile_regions)(void* tier, JitRegionSpec* regions, size_t count, char* error, size_t error_len);
};

// The one symbol a tier library exports.
const JitTierApi* vmlaunch_jit_tier_v5(void);
typedef const JitTierApi* (*JitTierEntry)(void);

}  // extern "C"

namespace jit {

// Compiled code for one entry: the region's function and which of its entries to start at
// (the `entry` argument).
struct RegionEntry {
  JitRegionFn fn = nullptr;
  uint32_t index = 0;
  uint64_t epoch = 0;  // the code cache's epoch it was compiled in (TierManager::epoch())
  explicit operator bool() const { return fn != nullptr; }
};

// Instructions a region runs through JitHelpers::exec (the interpreter's routines) rather than
// inline code: they change nothing a region depends on (translation, privilege, interrupts).
inline constexpr bool tier_calls_out(Op op) {
  return (op >= Op::kLrW && op <= Op::kAmomaxuD) || (op >= Op::kFlw && op <= Op::kFmvDX);
}
// The instructions the compiled tier translates; region formation stops at anything else, which
// runs in the interpreter (CSR and system instructions).
inline constexpr bool tier_compiles(Op op) {
  return (op >= Op::kLui && op <= Op::kFence) || (op >= Op::kMul && op <= Op::kRemuw) || tier_calls_out(op);
}
inline constexpr bool tier_ends_block(Op op) {
  return op >= Op::kJal && op <= Op::kBgeu;
}

}  // namespace jit
