// The LLVM tier (jit/tier.h), built as its own shared object, libvmlaunch_jit_llvm.so: ORC LLJIT
// compiling a region (instructions of one 4 KiB page reachable from an entry, up to
// kJitMaxRegionInsns) into one function on CpuState.
//
// Shape of the generated code: guest registers live in allocas that SROA turns into SSA; every
// guest instruction is its own basic block; internal branches are LLVM branches; anything leaving
// the region goes to one exit block that writes back the registers the region writes, the exact
// pc and returns the number of instructions run. Loads and stores look up the hart's TLB inline
// (JitMemView) and call the engine's slow paths on a miss, for MMIO and on faults; a fault exits
// with the faulting instruction's pc, as the interpreter leaves it. Back-edges check the budget so
// a hart in a loop still reaches its chunk boundary (kick, park, interrupts) in bounded time.
// LLVM errors become strings in the caller's buffer; nothing throws across the ABI.
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/JITLink/JITLink.h>
#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/ExecutionEngine/Orc/ExecutorProcessControl.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ObjectLinkingLayer.h>
#include <llvm/ExecutionEngine/Orc/TaskDispatch.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/PassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/EarlyCSE.h>
#include <llvm/Transforms/Scalar/SROA.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "jit/cpu_state.h"
#include "jit/decode.h"
#include "jit/tier.h"

namespace {

void put_error(char* buffer, size_t size, const std::string& message) {
  if (buffer && size > 0) std::snprintf(buffer, size, "%s", message.c_str());
}

const char* describe() {
  return "LLVM " LLVM_VERSION_STRING
         " ORC LLJIT (regions: RV64IMC integer, loads/stores, branches; F/D and A through helpers)";
}

// A short pass list (SROA first: it turns the register allocas into SSA), built
// once per compiler instance: registering the analyses costs more than running the passes on a
// small region. InstCombine only for optimised code: it cost half of the IR passes' time (perf,
// tier llvm boot).
class Passes {
 public:
  explicit Passes(bool instcombine) {
    m_pb.registerModuleAnalyses(m_mam);
    m_pb.registerCGSCCAnalyses(m_cgam);
    m_pb.registerFunctionAnalyses(m_fam);
    m_pb.registerLoopAnalyses(m_lam);
    m_pb.crossRegisterProxies(m_lam, m_fam, m_cgam, m_mam);
    m_fpm.addPass(llvm::SROAPass(llvm::SROAOptions::ModifyCFG));
    m_fpm.addPass(llvm::EarlyCSEPass());
    if (instcombine) m_fpm.addPass(llvm::InstCombinePass());
    m_fpm.addPass(llvm::SimplifyCFGPass());
  }
  void run(llvm::Module& module) {
    for (llvm::Function& f : module)
      if (!f.isDeclaration()) m_fpm.run(f, m_fam);
    // The module goes on to codegen and its functions die with it: drop what was cached on them.
    m_fam.clear();
    m_mam.clear();
  }

 private:
  llvm::LoopAnalysisManager m_lam;
  llvm::FunctionAnalysisManager m_fam;
  llvm::CGSCCAnalysisManager m_cgam;
  llvm::ModuleAnalysisManager m_mam;
  llvm::PassBuilder m_pb;
  llvm::FunctionPassManager m_fpm;
};

// Counts the bytes JITLink allocates for each linked module (code, constants, GOT/stubs): the code
// cache's size for `up --stats`.
class CodeSizePlugin : public llvm::orc::ObjectLinkingLayer::Plugin {
 public:
  explicit CodeSizePlugin(std::atomic<uint64_t>* bytes) : m_bytes(bytes) {}
  void modifyPassConfig(llvm::orc::MaterializationResponsibility&, llvm::jitlink::LinkGraph&,
                        llvm::jitlink::PassConfiguration& config) override {
    config.PostAllocationPasses.push_back([bytes = m_bytes](llvm::jitlink::LinkGraph& graph) {
      for (llvm::jitlink::Section& section : graph.sections())
        bytes->fetch_add(llvm::jitlink::SectionRange(section).getSize(), std::memory_order_relaxed);
      return llvm::Error::success();
    });
  }
  llvm::Error notifyFailed(llvm::orc::MaterializationResponsibility&) override {
    return llvm::Error::success();
  }
  llvm::Error notifyRemovingResources(llvm::orc::JITDylib&, llvm::orc::ResourceKey) override {
    return llvm::Error::success();
  }
  void notifyTransferringResources(llvm::orc::JITDylib&, llvm::orc::ResourceKey,
                                   llvm::orc::ResourceKey) override {}

 private:
  std::atomic<uint64_t>* m_bytes;
};

struct Tier {
  Tier(std::unique_ptr<llvm::orc::LLJIT> jit, const JitHelpers& helpers, bool optimised)
      : jit(std::move(jit)), helpers(helpers), passes(optimised), optimised(optimised) {}
  std::unique_ptr<llvm::orc::LLJIT> jit;
  JitHelpers helpers;
  Passes passes;
  bool optimised = false;
  uint64_t next_region = 0;
  std::atomic<uint64_t> code_bytes{0};
};

void* create(const JitHelpers* helpers, int quality, char* error, size_t error_len) {
  if (!helpers || !helpers->load || !helpers->store || !helpers->exec) {
    put_error(error, error_len, "create: no helpers");
    return nullptr;
  }
  static std::once_flag targets;
  std::call_once(targets, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    // Debugging aid: VMLAUNCH_LLVM_ARGS="-time-passes -fast-isel-report-on-fallback" passes options to
    // LLVM as llc takes them (process-wide, read once).
    if (std::getenv("VMLAUNCH_LLVM_ARGS")) {
      const char* argv[] = {"vmlaunch"};
      llvm::cl::ParseCommandLineOptions(1, argv, "", nullptr, "VMLAUNCH_LLVM_ARGS");
    }
  });
  // Fast (tier llvm: every block compiled before it runs): -O0 codegen (FastISel, fast register
  // allocation) after the short pass list; -O1's SelectionDAG costs several times more per region.
  // Optimised (tier auto: only hot code): InstCombine too and -O1 codegen; 2.5x the compiled
  // MIPS on bench/interp_loop. Either way one TargetMachine per instance (one per compile thread),
  // built here and reused for every module: LLJIT's default concurrent compiler builds one per
  // module.
  const bool optimised = quality == kJitCompileOptimised;
  const bool hot = quality == kJitCompileHot;
  auto machine = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!machine) {
    put_error(error, error_len, "host target: " + llvm::toString(machine.takeError()));
    return nullptr;
  }
  machine->setCodeGenOptLevel(optimised || hot ? llvm::CodeGenOptLevel::Less : llvm::CodeGenOptLevel::None);
  // Compiles run on the thread that asks (the vCPU for tier: llvm, a compile thread for auto): by
  // default LLVM 19 hands ORC's work to a pool of threads it starts on its own, which would run
  // without a vmlaunch thread role and outside the seccomp allow-lists (security/).
  auto control = llvm::orc::SelfExecutorProcessControl::Create(
      nullptr, std::make_unique<llvm::orc::InPlaceTaskDispatcher>());
  if (!control) {
    put_error(error, error_len, "executor: " + llvm::toString(control.takeError()));
    return nullptr;
  }
  auto jit = llvm::orc::LLJITBuilder()
                 .setJITTargetMachineBuilder(std::move(*machine))
                 .setExecutorProcessControl(std::move(*control))
                 .setCompileFunctionCreator(
                     [](llvm::orc::JITTargetMachineBuilder builder)
                         -> llvm::Expected<std::unique_ptr<llvm::orc::IRCompileLayer::IRCompiler>> {
                       auto target = builder.createTargetMachine();
                       if (!target) return target.takeError();
                       return std::make_unique<llvm::orc::TMOwningSimpleCompiler>(std::move(*target));
                     })
                 .create();
  if (!jit) {
    put_error(error, error_len, "LLJIT: " + llvm::toString(jit.takeError()));
    return nullptr;
  }
  auto* tier = new (std::nothrow) Tier{std::move(*jit), *helpers, optimised};
  if (!tier) {
    put_error(error, error_len, "out of memory");
    return nullptr;
  }
  if (auto* linker = llvm::dyn_cast<llvm::orc::ObjectLinkingLayer>(&tier->jit->getObjLinkingLayer()))
    linker->addPlugin(std::make_unique<CodeSizePlugin>(&tier->code_bytes));
  tier->jit->getIRTransformLayer().setTransform(
      [tier](llvm::orc::ThreadSafeModule module,
             llvm::orc::MaterializationResponsibility&) -> llvm::Expected<llvm::orc::ThreadSafeModule> {
        module.withModuleDo([tier](llvm::Module& m) { tier->passes.run(m); });
        return module;
      });
  return tier;
}

void destroy(void* tier) {
  delete static_cast<Tier*>(tier);
}

class RegionEmitter {
 public:
  // registers_in_state: guest registers are read and written in CpuState itself rather than kept
  // in SSA. Less code quality, but no phi per live register at every join: with SSA, a region's
  // one exit block joins every exit (each load and store has a fault exit) with every register it
  // writes, and the fast codegen's cost grew with exits x registers (~130 us of CPU per guest
  // instruction on a Linux boot's regions; QEMU's translator needs about 1).
  RegionEmitter(llvm::LLVMContext& context, llvm::Function* function, const JitHelpers& helpers,
                bool registers_in_state)
      : m_ctx(context), m_fn(function), m_b(context), m_helpers(helpers), m_in_state(registers_in_state) {}

  // Entered at entries[view->entry] (the first entry when there is only one).
  bool emit(const JitRegionInsn* insns, size_t count, const uint32_t* entries, size_t entry_count,
            std::string* why) {
    for (size_t i = 0; i < count; ++i) {
      const jit::Insn& in = insns[i].insn;
      if (!jit::tier_compiles(in.op)) {
        *why = "instruction at offset " + std::to_string(insns[i].offset) + " (" + jit::op_name(in.op) +
               ") is not compiled by this tier";
        return false;
      }
      if (insns[i].offset >= 4096 || insns[i].offset % 2 || insns[i].offset + in.len > 4096) {
        *why = "instruction offset " + std::to_string(insns[i].offset) + " outside the page";
        return false;
      }
      m_insns[insns[i].offset] = &in;
      for (unsigned r : {unsigned(in.rs1), unsigned(in.rs2), unsigned(in.rd)})
        if (r > 0 && r < 32) m_used[r] = true;
      if (in.rd > 0 && in.rd < 32 && writes_rd(in.op)) m_dirty[in.rd] = true;
    }
    if (entry_count == 0 || !entries) {
      *why = "a region without an entry";
      return false;
    }
    for (size_t k = 0; k < entry_count; ++k) {
      if (!m_insns.count(entries[k])) {
        *why = "entry offset " + std::to_string(entries[k]) + " is not one of the region's instructions";
        return false;
      }
    }
    llvm::BasicBlock* entry = llvm::BasicBlock::Create(m_ctx, "entry", m_fn);
    m_exit = llvm::BasicBlock::Create(m_ctx, "exit", m_fn);
    m_b.SetInsertPoint(entry);
    m_state = m_fn->getArg(0);
    m_hart = m_fn->getArg(1);
    m_page_va = m_fn->getArg(2);
    m_budget_limit = m_b.CreateSub(m_fn->getArg(3), m_b.getInt64(kJitMaxRegionInsns));
    llvm::Value* view = m_fn->getArg(4);
    m_read_tlb = m_b.CreateLoad(ptr(), field_of(view, offsetof(JitMemView, read_tlb)));
    m_write_tlb = m_b.CreateLoad(ptr(), field_of(view, offsetof(JitMemView, write_tlb)));
    m_view = view;
    m_read_gen = m_b.CreateLoad(i64(), field_of(view, offsetof(JitMemView, read_gen)));
    m_write_gen = m_b.CreateLoad(i64(), field_of(view, offsetof(JitMemView, write_gen)));
    m_done = m_b.CreateAlloca(i64(), nullptr, "done");
    m_exit_pc = m_b.CreateAlloca(i64(), nullptr, "exit_pc");
    m_exit_status = m_b.CreateAlloca(i64(), nullptr, "exit_status");
    m_scratch = m_b.CreateAlloca(i64(), nullptr, "scratch");
    m_b.CreateStore(m_b.getInt64(0), m_done);
    for (unsigned r = 1; r < 32; ++r) {
      if (!m_used[r]) continue;
      if (m_in_state) {
        m_regs[r] = reg_field(r);
        m_dirty[r] = false;  // written in place: nothing to write back at the exit
        continue;
      }
      m_regs[r] = m_b.CreateAlloca(i64(), nullptr, "x" + std::to_string(r));
      m_b.CreateStore(m_b.CreateLoad(i64(), reg_field(r)), m_regs[r]);
    }
    // Basic blocks only where control can arrive other than by falling through from the previous
    // instruction (entries, branch targets, after a branch or jump, after a gap): a block per
    // instruction gave FastISel and the register allocator a phi for every live guest register at
    // every instruction, most of a region's compile time.
    std::set<uint32_t> leaders(entries, entries + entry_count);
    uint32_t expected = ~0u;  // where the previous instruction falls through to
    for (const auto& [offset, in] : m_insns) {
      if (offset != expected) leaders.insert(offset);
      const bool jumps = in->op == jit::Op::kJal || in->op == jit::Op::kJalr || jit::tier_ends_block(in->op);
      if (jit::tier_ends_block(in->op) && in->op != jit::Op::kJalr) {
        const int64_t target = static_cast<int64_t>(offset) + in->imm;
        if (target >= 0 && target < 4096) leaders.insert(static_cast<uint32_t>(target));
      }
      expected = jumps ? ~0u : offset + in->len;
    }
    for (uint32_t offset : leaders)
      if (m_insns.count(offset))
        m_blocks[offset] = llvm::BasicBlock::Create(m_ctx, "i" + std::to_string(offset), m_fn);
    if (entry_count == 1) {
      m_b.CreateBr(m_blocks[entries[0]]);
    } else {
      llvm::Value* index = m_fn->getArg(5);
      llvm::SwitchInst* which =
          m_b.CreateSwitch(index, m_blocks[entries[0]], static_cast<unsigned>(entry_count));
      for (size_t k = 1; k < entry_count; ++k) which->addCase(m_b.getInt64(k), m_blocks[entries[k]]);
    }

    for (const auto& [offset, in] : m_insns) {
      // Not a leader: the previous instruction fell through and left the insertion point here.
      if (auto block = m_blocks.find(offset); block != m_blocks.end()) m_b.SetInsertPoint(block->second);
      m_b.CreateStore(m_b.CreateAdd(m_b.CreateLoad(i64(), m_done), m_b.getInt64(1)), m_done);
      emit_insn(*in, offset);
    }

    // The one exit: registers the region writes, the exact pc, and what ran.
    m_b.SetInsertPoint(m_exit);
    for (unsigned r = 1; r < 32; ++r)
      if (m_dirty[r]) m_b.CreateStore(m_b.CreateLoad(i64(), m_regs[r]), reg_field(r));
    llvm::Value* exit_pc = m_b.CreateLoad(i64(), m_exit_pc);
    m_b.CreateStore(exit_pc, field(offsetof(jit::CpuState, pc)));
    llvm::Value* done = m_b.CreateLoad(i64(), m_done);
    llvm::Value* status = m_b.CreateLoad(i64(), m_exit_status);
    emit_chain(exit_pc, done, status);
    llvm::Value* result = llvm::UndefValue::get(m_fn->getReturnType());
    result = m_b.CreateInsertValue(result, done, 0);
    result = m_b.CreateInsertValue(result, status, 1);
    m_b.CreateRet(result);
    return true;
  }

 private:
  static bool writes_rd(jit::Op op) {
    using jit::Op;
    return !(op >= Op::kBeq && op <= Op::kBgeu) && !(op >= Op::kSb && op <= Op::kSd) && op != Op::kFence;
  }

  // Chaining: a branch or JALR exit to a block head the hart's jump cache knows (entered before
  // under the same translation and decoded code, JitMemView::jump_key) tail-calls its region while
  // at least a region's worth of budget is left, so hot code moves from region to region without
  // going back through the interpreter's dispatch. Leaves the insertion point on the return path.
  void emit_chain(llvm::Value* pc, llvm::Value* done, llvm::Value* status) {
    llvm::BasicBlock* lookup = llvm::BasicBlock::Create(m_ctx, "chain_lookup", m_fn);
    llvm::BasicBlock* call = llvm::BasicBlock::Create(m_ctx, "chain_call", m_fn);
    llvm::BasicBlock* ret = llvm::BasicBlock::Create(m_ctx, "return", m_fn);
    // kJitExitBranch (0) or kJitExitIndirect (2), and budget for a whole region left.
    llvm::Value* chainable = m_b.CreateAnd(
        m_b.CreateICmpEQ(m_b.CreateAnd(status, m_b.getInt64(~uint64_t{kJitExitIndirect})), m_b.getInt64(0)),
        m_b.CreateICmpSLE(done, m_budget_limit));
    m_b.CreateCondBr(chainable, lookup, ret);
    m_b.SetInsertPoint(lookup);
    llvm::Value* jump = m_b.CreateLoad(ptr(), field_of(m_view, offsetof(JitMemView, jump)));
    llvm::Value* index = m_b.CreateAnd(m_b.CreateLShr(pc, 1), m_b.getInt64(kJitJumpEntries - 1));
    llvm::Value* entry =
        m_b.CreateGEP(m_b.getInt8Ty(), jump, m_b.CreateMul(index, m_b.getInt64(sizeof(JitJumpEntry))));
    llvm::Value* key = m_b.CreateLoad(i64(), field_of(m_view, offsetof(JitMemView, jump_key)));
    llvm::Value* hit = m_b.CreateAnd(
        m_b.CreateICmpEQ(m_b.CreateLoad(i64(), field_of(entry, offsetof(JitJumpEntry, pc))), pc),
        m_b.CreateICmpEQ(m_b.CreateLoad(i64(), field_of(entry, offsetof(JitJumpEntry, key))), key));
    m_b.CreateCondBr(hit, call, ret);
    m_b.SetInsertPoint(call);
    llvm::Value* retired_field = field_of(m_view, offsetof(JitMemView, chained_retired));
    m_b.CreateStore(m_b.CreateAdd(m_b.CreateLoad(i64(), retired_field), done), retired_field);
    llvm::Value* chains_field = field_of(m_view, offsetof(JitMemView, chains));
    m_b.CreateStore(m_b.CreateAdd(m_b.CreateLoad(i64(), chains_field), m_b.getInt64(1)), chains_field);
    llvm::Value* fn = m_b.CreateLoad(ptr(), field_of(entry, offsetof(JitJumpEntry, fn)));
    llvm::Value* which = m_b.CreateLoad(i64(), field_of(entry, offsetof(JitJumpEntry, entry)));
    llvm::CallInst* next = m_b.CreateCall(m_fn->getFunctionType(), fn,
                                          {m_state, m_hart, m_b.CreateAnd(pc, m_b.getInt64(~uint64_t{0xfff})),
                                           m_b.CreateSub(m_fn->getArg(3), done), m_view, which});
    // Guaranteed (musttail): a chain of thousands of regions must not grow the host stack.
    next->setTailCallKind(llvm::CallInst::TCK_MustTail);
    m_b.CreateRet(next);
    m_b.SetInsertPoint(ret);
  }

  llvm::Type* i64() { return m_b.getInt64Ty(); }
  llvm::Type* i32() { return m_b.getInt32Ty(); }
  llvm::Type* ptr() { return m_b.getPtrTy(); }
  llvm::Value* field_of(llvm::Value* base, size_t offset) {
    return m_b.CreateConstInBoundsGEP1_64(m_b.getInt8Ty(), base, offset);
  }
  llvm::Value* field(size_t offset) { return field_of(m_state, offset); }
  llvm::Value* reg_field(unsigned r) { return field(offsetof(jit::CpuState, x) + 8 * r); }
  llvm::Value* pc_at(int64_t offset) {
    return m_b.CreateAdd(m_page_va, m_b.getInt64(static_cast<uint64_t>(offset)));
  }

  llvm::Value* get(unsigned r) {
    if (r == 0 || r >= 32) return m_b.getInt64(0);
    return m_b.CreateLoad(i64(), m_regs[r]);
  }
  void set(unsigned r, llvm::Value* v) {
    if (r == 0 || r >= 32) return;  // x0 and the decoder's sink register
    m_b.CreateStore(v, m_regs[r]);
  }

  void exit_to(llvm::Value* pc, uint64_t status) {
    m_b.CreateStore(pc, m_exit_pc);
    m_b.CreateStore(m_b.getInt64(status), m_exit_status);
    m_b.CreateBr(m_exit);
  }
  // Control to `target` (an offset in the page; may lie outside it): inside the region a branch,
  // with a budget check on back-edges; otherwise an exit.
  void go_to(int64_t target, int64_t from) {
    const bool inside = target >= 0 && target < 4096 && m_insns.count(static_cast<uint32_t>(target));
    auto it = inside ? m_blocks.find(static_cast<uint32_t>(target)) : m_blocks.end();
    if (inside && it == m_blocks.end()) return;  // falls through into the same basic block
    if (it == m_blocks.end()) {
      exit_to(pc_at(target), kJitExitBranch);
      return;
    }
    if (target > from) {
      m_b.CreateBr(it->second);
      return;
    }
    llvm::BasicBlock* leave = llvm::BasicBlock::Create(m_ctx, "budget", m_fn);
    llvm::Value* spent = m_b.CreateICmpSGT(m_b.CreateLoad(i64(), m_done), m_budget_limit);
    m_b.CreateCondBr(spent, leave, it->second);
    m_b.SetInsertPoint(leave);
    exit_to(pc_at(target), kJitExitBudget);
  }

  llvm::Value* call_helper(void* fn, llvm::Value* va, uint32_t size) {
    auto* type = llvm::FunctionType::get(i32(), {ptr(), i64(), ptr(), i32()}, false);
    llvm::Value* callee =
        llvm::ConstantExpr::getIntToPtr(m_b.getInt64(reinterpret_cast<uintptr_t>(fn)), ptr());
    return m_b.CreateCall(type, callee, {m_hart, va, m_scratch, m_b.getInt32(size)});
  }

  // The inline TLB probe: a host pointer on a hit, or a branch to `slow`.
  llvm::Value* probe(llvm::Value* tlb, llvm::Value* gen, llvm::Value* va, unsigned size,
                     llvm::BasicBlock* slow) {
    llvm::Value* vpn = m_b.CreateLShr(va, 12);
    llvm::Value* index = m_b.CreateAnd(vpn, kJitTlbEntries - 1);
    llvm::Value* entry =
        m_b.CreateGEP(m_b.getInt8Ty(), tlb, m_b.CreateMul(index, m_b.getInt64(kJitTlbEntrySize)));
    llvm::Value* tag = m_b.CreateLoad(i64(), entry);
    llvm::Value* hit = m_b.CreateAnd(m_b.CreateICmpEQ(tag, m_b.CreateOr(vpn, gen)),
                                     m_b.CreateICmpULE(m_b.CreateAnd(va, 0xfff), m_b.getInt64(4096 - size)));
    llvm::BasicBlock* fast = llvm::BasicBlock::Create(m_ctx, "tlb_hit", m_fn);
    m_b.CreateCondBr(hit, fast, slow);
    m_b.SetInsertPoint(fast);
    llvm::Value* addend = m_b.CreateLoad(i64(), field_of(entry, kJitTlbAddendOffset));
    return m_b.CreateIntToPtr(m_b.CreateAdd(addend, va), ptr());
  }

  void emit_load(const jit::Insn& in, int64_t offset, unsigned size, bool sign) {
    llvm::Type* type = m_b.getIntNTy(size * 8);
    llvm::Value* va = m_b.CreateAdd(get(in.rs1), m_b.getInt64(static_cast<uint64_t>(in.imm)));
    llvm::BasicBlock* slow = llvm::BasicBlock::Create(m_ctx, "load_slow", m_fn);
    llvm::BasicBlock* fault = llvm::BasicBlock::Create(m_ctx, "load_fault", m_fn);
    llvm::BasicBlock* join = llvm::BasicBlock::Create(m_ctx, "load_done", m_fn);
    auto extend = [&](llvm::Value* v) { return sign ? m_b.CreateSExt(v, i64()) : m_b.CreateZExt(v, i64()); };
    llvm::Value* host = probe(m_read_tlb, m_read_gen, va, size, slow);
    llvm::LoadInst* fast_value = m_b.CreateAlignedLoad(type, host, llvm::MaybeAlign(1));
    set(in.rd, extend(fast_value));
    m_b.CreateBr(join);
    m_b.SetInsertPoint(slow);
    llvm::Value* ok = call_helper(reinterpret_cast<void*>(m_helpers.load), va, size);
    m_b.CreateCondBr(m_b.CreateICmpEQ(ok, m_b.getInt32(0)), fault,
                     join_after_slow_load(in, type, extend, join));
    m_b.SetInsertPoint(fault);
    exit_to(pc_at(offset), kJitExitTrap);
    m_b.SetInsertPoint(join);
  }
  template <typename Extend>
  llvm::BasicBlock* join_after_slow_load(const jit::Insn& in, llvm::Type* type, Extend extend,
                                         llvm::BasicBlock* join) {
    llvm::BasicBlock* got = llvm::BasicBlock::Create(m_ctx, "load_slow_done", m_fn);
    llvm::IRBuilderBase::InsertPointGuard guard(m_b);
    m_b.SetInsertPoint(got);
    set(in.rd, extend(m_b.CreateLoad(type, m_scratch)));
    m_b.CreateBr(join);
    return got;
  }

  void emit_store(const jit::Insn& in, int64_t offset, unsigned size) {
    llvm::Type* type = m_b.getIntNTy(size * 8);
    llvm::Value* va = m_b.CreateAdd(get(in.rs1), m_b.getInt64(static_cast<uint64_t>(in.imm)));
    llvm::Value* value = get(in.rs2);
    llvm::BasicBlock* slow = llvm::BasicBlock::Create(m_ctx, "store_slow", m_fn);
    llvm::BasicBlock* fault = llvm::BasicBlock::Create(m_ctx, "store_fault", m_fn);
    llvm::BasicBlock* check = llvm::BasicBlock::Create(m_ctx, "store_code", m_fn);
    llvm::BasicBlock* code = llvm::BasicBlock::Create(m_ctx, "store_hit_code", m_fn);
    llvm::BasicBlock* join = llvm::BasicBlock::Create(m_ctx, "store_done", m_fn);
    llvm::Value* host = probe(m_write_tlb, m_write_gen, va, size, slow);
    m_b.CreateAlignedStore(m_b.CreateTrunc(value, type), host, llvm::MaybeAlign(1));
    m_b.CreateBr(join);
    m_b.SetInsertPoint(slow);
    m_b.CreateStore(value, m_scratch);  // little-endian: the low `size` bytes are the value
    llvm::Value* result = call_helper(reinterpret_cast<void*>(m_helpers.store), va, size);
    m_b.CreateCondBr(m_b.CreateICmpEQ(result, m_b.getInt32(0)), fault, check);
    m_b.SetInsertPoint(fault);
    exit_to(pc_at(offset), kJitExitTrap);
    m_b.SetInsertPoint(check);
    m_b.CreateCondBr(m_b.CreateICmpEQ(result, m_b.getInt32(2)), code, join);
    m_b.SetInsertPoint(code);
    // The store changed decoded code (perhaps this region's): leave before running any of it.
    exit_to(pc_at(offset + in.len), kJitExitCodeStore);
    m_b.SetInsertPoint(join);
  }

  llvm::Value* sext32(llvm::Value* v) { return m_b.CreateSExt(m_b.CreateTrunc(v, i32()), i64()); }
  llvm::Value* lo32(llvm::Value* v) { return m_b.CreateTrunc(v, i32()); }
  llvm::Value* bool64(llvm::Value* v) { return m_b.CreateZExt(v, i64()); }
  llvm::Value* mul_high(llvm::Value* a, llvm::Value* b, bool a_signed, bool b_signed) {
    llvm::Type* i128 = m_b.getInt128Ty();
    llvm::Value* wa = a_signed ? m_b.CreateSExt(a, i128) : m_b.CreateZExt(a, i128);
    llvm::Value* wb = b_signed ? m_b.CreateSExt(b, i128) : m_b.CreateZExt(b, i128);
    return m_b.CreateTrunc(m_b.CreateLShr(m_b.CreateMul(wa, wb), 64), i64());
  }
  // RISC-V division never traps: x/0 = all ones, x%0 = x, MIN/-1 = MIN, MIN%-1 = 0. LLVM's
  // division is undefined there, so those cases divide by 1 and select the architectural result.
  llvm::Value* divide(llvm::Value* a, llvm::Value* b, bool is_signed, bool remainder) {
    llvm::Type* type = a->getType();
    const unsigned bits = type->getIntegerBitWidth();
    llvm::Value* zero = llvm::ConstantInt::get(type, 0);
    llvm::Value* one = llvm::ConstantInt::get(type, 1);
    llvm::Value* by_zero = m_b.CreateICmpEQ(b, zero);
    llvm::Value* overflow = m_b.getFalse();
    if (is_signed)
      overflow = m_b.CreateAnd(
          m_b.CreateICmpEQ(a, llvm::ConstantInt::get(type, llvm::APInt::getSignedMinValue(bits))),
          m_b.CreateICmpEQ(b, llvm::ConstantInt::getSigned(type, -1)));
    llvm::Value* divisor = m_b.CreateSelect(m_b.CreateOr(by_zero, overflow), one, b);
    llvm::Value* q = remainder ? (is_signed ? m_b.CreateSRem(a, divisor) : m_b.CreateURem(a, divisor))
                               : (is_signed ? m_b.CreateSDiv(a, divisor) : m_b.CreateUDiv(a, divisor));
    if (remainder) {
      q = m_b.CreateSelect(overflow, zero, q);
      return m_b.CreateSelect(by_zero, a, q);
    }
    q = m_b.CreateSelect(overflow, a, q);
    return m_b.CreateSelect(by_zero, llvm::ConstantInt::getSigned(type, -1), q);
  }

  // F/D and atomics: one call to the interpreter's routine (JitHelpers::exec), which reads and
  // writes the registers in CpuState; in SSA mode they are written out before and read back after.
  void emit_call_out(const jit::Insn& in, int64_t offset) {
    if (!m_in_state)
      for (unsigned r = 1; r < 32; ++r)
        if (m_used[r]) m_b.CreateStore(m_b.CreateLoad(i64(), m_regs[r]), reg_field(r));
    uint64_t words[2];
    static_assert(sizeof words == sizeof in);
    std::memcpy(words, &in, sizeof in);
    auto* type = llvm::FunctionType::get(i32(), {ptr(), i64(), i64(), i64()}, false);
    llvm::Value* callee =
        llvm::ConstantExpr::getIntToPtr(m_b.getInt64(reinterpret_cast<uintptr_t>(m_helpers.exec)), ptr());
    llvm::Value* result =
        m_b.CreateCall(type, callee, {m_hart, pc_at(offset), m_b.getInt64(words[0]), m_b.getInt64(words[1])});
    if (!m_in_state)
      for (unsigned r = 1; r < 32; ++r)
        if (m_used[r]) m_b.CreateStore(m_b.CreateLoad(i64(), reg_field(r)), m_regs[r]);
    llvm::BasicBlock* fault = llvm::BasicBlock::Create(m_ctx, "exec_fault", m_fn);
    llvm::BasicBlock* check = llvm::BasicBlock::Create(m_ctx, "exec_code", m_fn);
    llvm::BasicBlock* code = llvm::BasicBlock::Create(m_ctx, "exec_hit_code", m_fn);
    llvm::BasicBlock* join = llvm::BasicBlock::Create(m_ctx, "exec_done", m_fn);
    m_b.CreateCondBr(m_b.CreateICmpEQ(result, m_b.getInt32(0)), fault, check);
    m_b.SetInsertPoint(fault);
    exit_to(pc_at(offset), kJitExitTrap);
    m_b.SetInsertPoint(check);
    m_b.CreateCondBr(m_b.CreateICmpEQ(result, m_b.getInt32(2)), code, join);
    m_b.SetInsertPoint(code);
    exit_to(pc_at(offset + in.len), kJitExitCodeStore);
    m_b.SetInsertPoint(join);
  }

  void emit_insn(const jit::Insn& in, uint32_t offset) {
    using jit::Op;
    const int64_t off = offset;
    if (jit::tier_calls_out(in.op)) {
      emit_call_out(in, off);
      go_to(off + in.len, off);
      return;
    }
    llvm::Value* imm = m_b.getInt64(static_cast<uint64_t>(in.imm));
    llvm::Value* imm32 = m_b.getInt32(static_cast<uint32_t>(in.imm) & 31);
    llvm::Value* rs1;
    switch (in.op) {
      case Op::kLui:
        set(in.rd, imm);
        break;
      case Op::kAuipc:
        set(in.rd, pc_at(off + in.imm));
        break;
      case Op::kJal:
        set(in.rd, pc_at(off + in.len));
        go_to(off + in.imm, off);
        return;
      case Op::kJalr: {
        llvm::Value* target = m_b.CreateAnd(m_b.CreateAdd(get(in.rs1), imm), m_b.getInt64(~1ull));
        set(in.rd, pc_at(off + in.len));
        exit_to(target, kJitExitIndirect);
        return;
      }
      case Op::kBeq:
      case Op::kBne:
      case Op::kBlt:
      case Op::kBge:
      case Op::kBltu:
      case Op::kBgeu: {
        llvm::Value* a = get(in.rs1);
        llvm::Value* b = get(in.rs2);
        llvm::Value* cond = in.op == Op::kBeq    ? m_b.CreateICmpEQ(a, b)
                            : in.op == Op::kBne  ? m_b.CreateICmpNE(a, b)
                            : in.op == Op::kBlt  ? m_b.CreateICmpSLT(a, b)
                            : in.op == Op::kBge  ? m_b.CreateICmpSGE(a, b)
                            : in.op == Op::kBltu ? m_b.CreateICmpULT(a, b)
                                                 : m_b.CreateICmpUGE(a, b);
        llvm::BasicBlock* taken = llvm::BasicBlock::Create(m_ctx, "taken", m_fn);
        llvm::BasicBlock* not_taken = llvm::BasicBlock::Create(m_ctx, "not_taken", m_fn);
        m_b.CreateCondBr(cond, taken, not_taken);
        m_b.SetInsertPoint(taken);
        go_to(off + in.imm, off);
        m_b.SetInsertPoint(not_taken);
        go_to(off + in.len, off);
        return;
      }
      case Op::kLb:
        emit_load(in, off, 1, true);
        break;
      case Op::kLh:
        emit_load(in, off, 2, true);
        break;
      case Op::kLw:
        emit_load(in, off, 4, true);
        break;
      case Op::kLd:
        emit_load(in, off, 8, false);
        break;
      case Op::kLbu:
        emit_load(in, off, 1, false);
        break;
      case Op::kLhu:
        emit_load(in, off, 2, false);
        break;
      case Op::kLwu:
        emit_load(in, off, 4, false);
        break;
      case Op::kSb:
        emit_store(in, off, 1);
        break;
      case Op::kSh:
        emit_store(in, off, 2);
        break;
      case Op::kSw:
        emit_store(in, off, 4);
        break;
      case Op::kSd:
        emit_store(in, off, 8);
        break;
      case Op::kAddi:
        set(in.rd, m_b.CreateAdd(get(in.rs1), imm));
        break;
      case Op::kSlti:
        set(in.rd, bool64(m_b.CreateICmpSLT(get(in.rs1), imm)));
        break;
      case Op::kSltiu:
        set(in.rd, bool64(m_b.CreateICmpULT(get(in.rs1), imm)));
        break;
      case Op::kXori:
        set(in.rd, m_b.CreateXor(get(in.rs1), imm));
        break;
      case Op::kOri:
        set(in.rd, m_b.CreateOr(get(in.rs1), imm));
        break;
      case Op::kAndi:
        set(in.rd, m_b.CreateAnd(get(in.rs1), imm));
        break;
      case Op::kSlli:
        set(in.rd, m_b.CreateShl(get(in.rs1), m_b.getInt64(in.imm & 63)));
        break;
      case Op::kSrli:
        set(in.rd, m_b.CreateLShr(get(in.rs1), m_b.getInt64(in.imm & 63)));
        break;
      case Op::kSrai:
        set(in.rd, m_b.CreateAShr(get(in.rs1), m_b.getInt64(in.imm & 63)));
        break;
      case Op::kAdd:
        set(in.rd, m_b.CreateAdd(get(in.rs1), get(in.rs2)));
        break;
      case Op::kSub:
        set(in.rd, m_b.CreateSub(get(in.rs1), get(in.rs2)));
        break;
      case Op::kSll:
        set(in.rd, m_b.CreateShl(get(in.rs1), m_b.CreateAnd(get(in.rs2), 63)));
        break;
      case Op::kSlt:
        set(in.rd, bool64(m_b.CreateICmpSLT(get(in.rs1), get(in.rs2))));
        break;
      case Op::kSltu:
        set(in.rd, bool64(m_b.CreateICmpULT(get(in.rs1), get(in.rs2))));
        break;
      case Op::kXor:
        set(in.rd, m_b.CreateXor(get(in.rs1), get(in.rs2)));
        break;
      case Op::kSrl:
        set(in.rd, m_b.CreateLShr(get(in.rs1), m_b.CreateAnd(get(in.rs2), 63)));
        break;
      case Op::kSra:
        set(in.rd, m_b.CreateAShr(get(in.rs1), m_b.CreateAnd(get(in.rs2), 63)));
        break;
      case Op::kOr:
        set(in.rd, m_b.CreateOr(get(in.rs1), get(in.rs2)));
        break;
      case Op::kAnd:
        set(in.rd, m_b.CreateAnd(get(in.rs1), get(in.rs2)));
        break;
      case Op::kAddiw:
        set(in.rd, sext32(m_b.CreateAdd(get(in.rs1), imm)));
        break;
      case Op::kSlliw:
        set(in.rd, m_b.CreateSExt(m_b.CreateShl(lo32(get(in.rs1)), imm32), i64()));
        break;
      case Op::kSrliw:
        set(in.rd, m_b.CreateSExt(m_b.CreateLShr(lo32(get(in.rs1)), imm32), i64()));
        break;
      case Op::kSraiw:
        set(in.rd, m_b.CreateSExt(m_b.CreateAShr(lo32(get(in.rs1)), imm32), i64()));
        break;
      case Op::kAddw:
        set(in.rd, sext32(m_b.CreateAdd(get(in.rs1), get(in.rs2))));
        break;
      case Op::kSubw:
        set(in.rd, sext32(m_b.CreateSub(get(in.rs1), get(in.rs2))));
        break;
      case Op::kSllw:
        set(in.rd,
            m_b.CreateSExt(m_b.CreateShl(lo32(get(in.rs1)), m_b.CreateAnd(lo32(get(in.rs2)), 31)), i64()));
        break;
      case Op::kSrlw:
        set(in.rd,
            m_b.CreateSExt(m_b.CreateLShr(lo32(get(in.rs1)), m_b.CreateAnd(lo32(get(in.rs2)), 31)), i64()));
        break;
      case Op::kSraw:
        set(in.rd,
            m_b.CreateSExt(m_b.CreateAShr(lo32(get(in.rs1)), m_b.CreateAnd(lo32(get(in.rs2)), 31)), i64()));
        break;
      case Op::kFence:
        // As the interpreter: only an order of earlier writes before later reads needs a host fence.
        if ((in.imm & 0x50) && (in.imm & 0x0a)) m_b.CreateFence(llvm::AtomicOrdering::SequentiallyConsistent);
        break;
      case Op::kMul:
        set(in.rd, m_b.CreateMul(get(in.rs1), get(in.rs2)));
        break;
      case Op::kMulh:
        set(in.rd, mul_high(get(in.rs1), get(in.rs2), true, true));
        break;
      case Op::kMulhsu:
        set(in.rd, mul_high(get(in.rs1), get(in.rs2), true, false));
        break;
      case Op::kMulhu:
        set(in.rd, mul_high(get(in.rs1), get(in.rs2), false, false));
        break;
      case Op::kDiv:
      case Op::kDivu:
      case Op::kRem:
      case Op::kRemu: {
        const bool is_signed = in.op == Op::kDiv || in.op == Op::kRem;
        set(in.rd, divide(get(in.rs1), get(in.rs2), is_signed, in.op == Op::kRem || in.op == Op::kRemu));
        break;
      }
      case Op::kMulw:
        set(in.rd, sext32(m_b.CreateMul(get(in.rs1), get(in.rs2))));
        break;
      case Op::kDivw:
      case Op::kDivuw:
      case Op::kRemw:
      case Op::kRemuw: {
        const bool is_signed = in.op == Op::kDivw || in.op == Op::kRemw;
        rs1 = lo32(get(in.rs1));
        llvm::Value* q = divide(rs1, lo32(get(in.rs2)), is_signed, in.op == Op::kRemw || in.op == Op::kRemuw);
        set(in.rd, m_b.CreateSExt(q, i64()));
        break;
      }
      default:  // emit() accepted only tier_compiles() ops
        exit_to(pc_at(off), kJitExitBranch);
        return;
    }
    go_to(off + in.len, off);
  }

  llvm::LLVMContext& m_ctx;
  llvm::Function* m_fn;
  llvm::IRBuilder<> m_b;
  const JitHelpers& m_helpers;
  std::map<uint32_t, const jit::Insn*> m_insns;
  std::map<uint32_t, llvm::BasicBlock*> m_blocks;
  bool m_used[32] = {};
  bool m_dirty[32] = {};
  llvm::Value* m_regs[32] = {};
  llvm::Value *m_state = nullptr, *m_hart = nullptr, *m_page_va = nullptr, *m_budget_limit = nullptr;
  llvm::Value *m_read_tlb = nullptr, *m_write_tlb = nullptr, *m_read_gen = nullptr, *m_write_gen = nullptr;
  llvm::Value* m_view = nullptr;
  llvm::Value *m_done = nullptr, *m_exit_pc = nullptr, *m_exit_status = nullptr, *m_scratch = nullptr;
  llvm::BasicBlock* m_exit = nullptr;
  bool m_in_state = false;
};

// Emits one region into `module` as one function, whichever entry a call starts at (the entries
// share the code: one copy however many block heads of the page were hot). On refusal the
// function is removed from the module again.
bool emit_region(Tier* tier, llvm::Module& module, const JitRegionSpec& spec, std::string* name,
                 std::string* why) {
  llvm::LLVMContext& context = module.getContext();
  if (!spec.insns || spec.count == 0 || spec.count > kJitMaxRegionInsns || spec.entry_count == 0 ||
      spec.entry_count > kJitMaxRegionEntries || !spec.entries) {
    *why = "compile_regions: an empty or oversized region";
    return false;
  }
  *name = "vmlaunch_region_" + std::to_string(tier->next_region++);
  llvm::Type* i64 = llvm::Type::getInt64Ty(context);
  llvm::Type* ptr = llvm::PointerType::getUnqual(context);
  auto* type = llvm::FunctionType::get(llvm::StructType::get(context, {i64, i64}),
                                       {ptr, ptr, i64, i64, ptr, i64}, false);
  llvm::Function* function = llvm::Function::Create(type, llvm::Function::ExternalLinkage, *name, module);
  RegionEmitter emitter(context, function, tier->helpers, !tier->optimised);
  std::string verifier;
  llvm::raw_string_ostream verifier_out(verifier);
  if (!emitter.emit(spec.insns, spec.count, spec.entries, spec.entry_count, why)) {
    function->eraseFromParent();
    return false;
  }
  if (llvm::verifyFunction(*function, &verifier_out)) {
    *why = "generated IR does not verify: " + verifier;
    function->eraseFromParent();
    return false;
  }
  return true;
}

size_t compile_regions(void* opaque, JitRegionSpec* regions, size_t count, char* error, size_t error_len) {
  auto* tier = static_cast<Tier*>(opaque);
  if (!tier || !regions || count == 0) {
    put_error(error, error_len, "compile_regions: no tier or no regions");
    return 0;
  }
  for (size_t i = 0; i < count; ++i) regions[i].fn = nullptr;
  auto context = std::make_unique<llvm::LLVMContext>();
  auto module = std::make_unique<llvm::Module>("vmlaunch_regions", *context);
  std::vector<std::string> names(count);
  size_t emitted = 0;
  for (size_t i = 0; i < count; ++i) {
    std::string why;
    if (emit_region(tier, *module, regions[i], &names[i], &why)) {
      ++emitted;
    } else {
      names[i].clear();
      put_error(error, error_len, why);
    }
  }
  if (emitted == 0) return 0;
  if (auto err = tier->jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(module), std::move(context)))) {
    put_error(error, error_len, "addIRModule: " + llvm::toString(std::move(err)));
    return 0;
  }
  size_t compiled = 0;
  for (size_t i = 0; i < count; ++i) {
    if (names[i].empty()) continue;
    auto symbol = tier->jit->lookup(names[i]);
    if (!symbol) {
      put_error(error, error_len, "lookup: " + llvm::toString(symbol.takeError()));
      continue;
    }
    regions[i].fn = symbol->toPtr<JitRegionFn>();
    ++compiled;
  }
  return compiled;
}

JitRegionFn compile_region(void* opaque, const JitRegionInsn* insns, size_t count, uint32_t entry_offset,
                           char* error, size_t error_len) {
  JitRegionSpec spec{insns, count, &entry_offset, 1, nullptr};
  return compile_regions(opaque, &spec, 1, error, error_len) == 1 ? spec.fn : nullptr;
}

uint64_t code_bytes(void* tier) {
  return tier ? static_cast<Tier*>(tier)->code_bytes.load(std::memory_order_relaxed) : 0;
}

constexpr JitTierApi kApi = {kJitTierAbiVersion, describe,   create,         destroy,
                             compile_region,     code_bytes, compile_regions};

}  // namespace

extern "C" __attribute__((visibility("default"))) const JitTierApi* vmlaunch_jit_tier_v5(void) {
  return &kApi;
}
