// The LLVM tier's skeleton, built as its own shared object (libvmlaunch_jit_llvm.so, see
// jit/tier.h): ORC LLJIT compiling one straight-line block of integer instructions into a function
// on CpuState. Guest registers live in SSA values inside the block; each is loaded on first use and
// stored back once at the exit if written, with pc and instret, so the state after the call is the
// interpreter's. LLVM errors become strings in the caller's buffer; nothing throws across the ABI.
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

#include <cstddef>
#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "jit/cpu_state.h"
#include "jit/decode.h"
#include "jit/tier.h"

namespace {

struct Tier {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  uint64_t next_block = 0;
};

void put_error(char* buffer, size_t size, const std::string& message) {
  if (buffer && size > 0) std::snprintf(buffer, size, "%s", message.c_str());
}

const char* describe() {
  return "LLVM " LLVM_VERSION_STRING " ORC LLJIT (skeleton: straight-line integer blocks)";
}

void* create(char* error, size_t error_len) {
  static std::once_flag targets;
  std::call_once(targets, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
  auto jit = llvm::orc::LLJITBuilder().create();
  if (!jit) {
    put_error(error, error_len, "LLJIT: " + llvm::toString(jit.takeError()));
    return nullptr;
  }
  auto* tier = new (std::nothrow) Tier{std::move(*jit)};
  if (!tier) put_error(error, error_len, "out of memory");
  return tier;
}

void destroy(void* tier) {
  delete static_cast<Tier*>(tier);
}

// Emits IR for one block; false (with a message) at the first instruction it cannot translate.
bool emit_block(llvm::IRBuilder<>& b, llvm::Value* state, const jit::Insn* insns, size_t count, uint64_t pc,
                std::string* why) {
  llvm::Type* i64 = b.getInt64Ty();
  llvm::Type* i32 = b.getInt32Ty();
  auto field = [&](size_t offset) { return b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), state, offset); };
  llvm::Value* regs[33] = {};
  bool dirty[33] = {};
  auto get = [&](unsigned r) -> llvm::Value* {
    if (r == 0 || r >= 32) return b.getInt64(0);  // x0 reads zero; 32 is the write sink
    if (!regs[r]) regs[r] = b.CreateLoad(i64, field(offsetof(jit::CpuState, x) + 8 * r));
    return regs[r];
  };
  auto set = [&](unsigned r, llvm::Value* v) {
    if (r == 0 || r >= 32) return;  // writes to x0 vanish, as the interpreter's sink register
    regs[r] = v;
    dirty[r] = true;
  };
  auto sext32 = [&](llvm::Value* v) { return b.CreateSExt(b.CreateTrunc(v, i32), i64); };
  auto lo32 = [&](llvm::Value* v) { return b.CreateTrunc(v, i32); };
  auto bool64 = [&](llvm::Value* v) { return b.CreateZExt(v, i64); };

  for (size_t i = 0; i < count; ++i) {
    const jit::Insn& in = insns[i];
    llvm::Value* imm = b.getInt64(static_cast<uint64_t>(in.imm));
    llvm::Value* imm32 = b.getInt32(static_cast<uint32_t>(in.imm) & 31);
    using jit::Op;
    switch (in.op) {
      case Op::kLui:
        set(in.rd, imm);
        break;
      case Op::kAuipc:
        set(in.rd, b.getInt64(pc + static_cast<uint64_t>(in.imm)));
        break;
      case Op::kAddi:
        set(in.rd, b.CreateAdd(get(in.rs1), imm));
        break;
      case Op::kSlti:
        set(in.rd, bool64(b.CreateICmpSLT(get(in.rs1), imm)));
        break;
      case Op::kSltiu:
        set(in.rd, bool64(b.CreateICmpULT(get(in.rs1), imm)));
        break;
      case Op::kXori:
        set(in.rd, b.CreateXor(get(in.rs1), imm));
        break;
      case Op::kOri:
        set(in.rd, b.CreateOr(get(in.rs1), imm));
        break;
      case Op::kAndi:
        set(in.rd, b.CreateAnd(get(in.rs1), imm));
        break;
      case Op::kSlli:
        set(in.rd, b.CreateShl(get(in.rs1), b.getInt64(in.imm & 63)));
        break;
      case Op::kSrli:
        set(in.rd, b.CreateLShr(get(in.rs1), b.getInt64(in.imm & 63)));
        break;
      case Op::kSrai:
        set(in.rd, b.CreateAShr(get(in.rs1), b.getInt64(in.imm & 63)));
        break;
      case Op::kAdd:
        set(in.rd, b.CreateAdd(get(in.rs1), get(in.rs2)));
        break;
      case Op::kSub:
        set(in.rd, b.CreateSub(get(in.rs1), get(in.rs2)));
        break;
      case Op::kSll:
        set(in.rd, b.CreateShl(get(in.rs1), b.CreateAnd(get(in.rs2), 63)));
        break;
      case Op::kSlt:
        set(in.rd, bool64(b.CreateICmpSLT(get(in.rs1), get(in.rs2))));
        break;
      case Op::kSltu:
        set(in.rd, bool64(b.CreateICmpULT(get(in.rs1), get(in.rs2))));
        break;
      case Op::kXor:
        set(in.rd, b.CreateXor(get(in.rs1), get(in.rs2)));
        break;
      case Op::kSrl:
        set(in.rd, b.CreateLShr(get(in.rs1), b.CreateAnd(get(in.rs2), 63)));
        break;
      case Op::kSra:
        set(in.rd, b.CreateAShr(get(in.rs1), b.CreateAnd(get(in.rs2), 63)));
        break;
      case Op::kOr:
        set(in.rd, b.CreateOr(get(in.rs1), get(in.rs2)));
        break;
      case Op::kAnd:
        set(in.rd, b.CreateAnd(get(in.rs1), get(in.rs2)));
        break;
      case Op::kAddiw:
        set(in.rd, sext32(b.CreateAdd(get(in.rs1), imm)));
        break;
      case Op::kSlliw:
        set(in.rd, b.CreateSExt(b.CreateShl(lo32(get(in.rs1)), imm32), i64));
        break;
      case Op::kSrliw:
        set(in.rd, b.CreateSExt(b.CreateLShr(lo32(get(in.rs1)), imm32), i64));
        break;
      case Op::kSraiw:
        set(in.rd, b.CreateSExt(b.CreateAShr(lo32(get(in.rs1)), imm32), i64));
        break;
      case Op::kAddw:
        set(in.rd, sext32(b.CreateAdd(get(in.rs1), get(in.rs2))));
        break;
      case Op::kSubw:
        set(in.rd, sext32(b.CreateSub(get(in.rs1), get(in.rs2))));
        break;
      case Op::kSllw:
        set(in.rd, b.CreateSExt(b.CreateShl(lo32(get(in.rs1)), b.CreateAnd(lo32(get(in.rs2)), 31)), i64));
        break;
      case Op::kSrlw:
        set(in.rd, b.CreateSExt(b.CreateLShr(lo32(get(in.rs1)), b.CreateAnd(lo32(get(in.rs2)), 31)), i64));
        break;
      case Op::kSraw:
        set(in.rd, b.CreateSExt(b.CreateAShr(lo32(get(in.rs1)), b.CreateAnd(lo32(get(in.rs2)), 31)), i64));
        break;
      case Op::kMul:
        set(in.rd, b.CreateMul(get(in.rs1), get(in.rs2)));
        break;
      case Op::kMulw:
        set(in.rd, sext32(b.CreateMul(get(in.rs1), get(in.rs2))));
        break;
      default:
        *why = "instruction " + std::to_string(i) + " (" + jit::op_name(in.op) +
               ") is not a straight-line integer op";
        return false;
    }
    pc += in.len;
  }
  // Exit: write back what the block changed, then the exact pc and the instret delta.
  for (unsigned r = 1; r < 32; ++r)
    if (dirty[r]) b.CreateStore(regs[r], field(offsetof(jit::CpuState, x) + 8 * r));
  b.CreateStore(b.getInt64(pc), field(offsetof(jit::CpuState, pc)));
  llvm::Value* instret = b.CreateLoad(i64, field(offsetof(jit::CpuState, instret)));
  b.CreateStore(b.CreateAdd(instret, b.getInt64(count)), field(offsetof(jit::CpuState, instret)));
  b.CreateRetVoid();
  return true;
}

JitBlockFn compile_block(void* opaque, const jit::Insn* insns, size_t count, uint64_t pc, char* error,
                         size_t error_len) {
  auto* tier = static_cast<Tier*>(opaque);
  if (!tier || !insns || count == 0) {
    put_error(error, error_len, "compile_block: no tier or an empty block");
    return nullptr;
  }
  auto context = std::make_unique<llvm::LLVMContext>();
  auto module = std::make_unique<llvm::Module>("vmlaunch_block", *context);
  const std::string name = "vmlaunch_block_" + std::to_string(tier->next_block++);
  auto* type = llvm::FunctionType::get(llvm::Type::getVoidTy(*context),
                                       {llvm::PointerType::getUnqual(*context)}, false);
  auto* function = llvm::Function::Create(type, llvm::Function::ExternalLinkage, name, module.get());
  llvm::IRBuilder<> builder(llvm::BasicBlock::Create(*context, "entry", function));
  std::string why;
  if (!emit_block(builder, function->getArg(0), insns, count, pc, &why)) {
    put_error(error, error_len, why);
    return nullptr;
  }
  std::string verifier;
  llvm::raw_string_ostream verifier_out(verifier);
  if (llvm::verifyFunction(*function, &verifier_out)) {
    put_error(error, error_len, "generated IR does not verify: " + verifier);
    return nullptr;
  }
  if (auto err = tier->jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(module), std::move(context)))) {
    put_error(error, error_len, "addIRModule: " + llvm::toString(std::move(err)));
    return nullptr;
  }
  auto symbol = tier->jit->lookup(name);
  if (!symbol) {
    put_error(error, error_len, "lookup: " + llvm::toString(symbol.takeError()));
    return nullptr;
  }
  return symbol->toPtr<JitBlockFn>();
}

constexpr JitTierApi kApi = {kJitTierAbiVersion, describe, create, destroy, compile_block};

}  // namespace

extern "C" __attribute__((visibility("default"))) const JitTierApi* vmlaunch_jit_tier_v1(void) {
  return &kApi;
}
