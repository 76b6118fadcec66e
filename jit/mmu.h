// The MMU's slow paths with a C ABI (plain pointers and integers), for code a translator emits:
// it inlines the TLB hit and calls these on a miss, for MMIO, and for LR/SC/AMOs. The interpreter
// uses the same functions through Hart's members (jit/mmu.cpp).
//
// Contract: 1 = done; 0 = the access faulted and a trap is pending on the hart. The caller then
// stores the faulting instruction's pc in CpuState::pc, writes back the registers it holds, and
// calls jit_take_pending_trap(), which enters the guest's trap handler exactly as the interpreter
// would. Nothing here throws or unwinds through generated frames.
#pragma once

#include <cstdint>

namespace jit {
class Hart;
}

extern "C" {

// size is 1, 2, 4 or 8; va may be misaligned and may cross a page.
int jit_mmu_load(jit::Hart* hart, uint64_t va, void* out, uint32_t size);
int jit_mmu_store(jit::Hart* hart, uint64_t va, const void* in, uint32_t size);
// One LR/SC/AMO as decoded (op is a jit::Op value, registers as jit::Insn holds them, rd 32 =
// discard): reads x[rs1], x[rs2], writes x[rd] in the hart's CpuState.
int jit_mmu_amo(jit::Hart* hart, uint32_t op, uint32_t rd, uint32_t rs1, uint32_t rs2);
void jit_take_pending_trap(jit::Hart* hart);

// The same for the compiled tier's JitHelpers (jit/tier.h; hart is a jit::Hart*). jit_tier_store
// returns 2 when the store changed decoded code: the region must not run further.
int jit_tier_load(void* hart, uint64_t va, void* out, uint32_t size);
int jit_tier_store(void* hart, uint64_t va, const void* in, uint32_t size);
// Runs one F/D/LR/SC/AMO instruction (16 bytes of jit::Insn in insn_lo/insn_hi) at pc; returns 2
// when it changed decoded code.
int jit_tier_exec(void* hart, uint64_t pc, uint64_t insn_lo, uint64_t insn_hi);

}  // extern "C"
