// RV64GC decoder: turns one instruction (32-bit, or 16-bit compressed) into a flat `Insn` the
// interpreter dispatches on. Decoding is a pure function, so it is tested without a hart, and the
// interpreter calls it once per instruction slot of a page (the decoded-page cache in hart.cpp).
#pragma once

#include <cstdint>

namespace jit {

// Register index the decoder puts in `rd` when the architectural destination is x0: writes land in
// a scratch slot (x[32]) so the hot path needs no "is rd zero?" test and x[0] stays 0.
inline constexpr uint8_t kZeroSink = 32;

enum class Op : uint8_t {
  kUndecoded = 0,  // slot of a decoded page not yet filled (pages start zeroed)
  kCrossPage,      // 32-bit instruction straddling a page end: fetched and decoded every time
  kIllegal,        // imm holds the raw instruction bits (reported in mtval/stval)
  // RV64I
  kLui,
  kAuipc,
  kJal,
  kJalr,
  kBeq,
  kBne,
  kBlt,
  kBge,
  kBltu,
  kBgeu,
  kLb,
  kLh,
  kLw,
  kLd,
  kLbu,
  kLhu,
  kLwu,
  kSb,
  kSh,
  kSw,
  kSd,
  kAddi,
  kSlti,
  kSltiu,
  kXori,
  kOri,
  kAndi,
  kSlli,
  kSrli,
  kSrai,
  kAdd,
  kSub,
  kSll,
  kSlt,
  kSltu,
  kXor,
  kSrl,
  kSra,
  kOr,
  kAnd,
  kAddiw,
  kSlliw,
  kSrliw,
  kSraiw,
  kAddw,
  kSubw,
  kSllw,
  kSrlw,
  kSraw,
  kFence,
  kFenceI,
  kEcall,
  kEbreak,
  kMret,
  kSret,
  kWfi,
  kSfenceVma,
  kCsrrw,
  kCsrrs,
  kCsrrc,
  kCsrrwi,
  kCsrrsi,
  kCsrrci,  // imm = csr number, rs1 = uimm for *i
  // M
  kMul,
  kMulh,
  kMulhsu,
  kMulhu,
  kDiv,
  kDivu,
  kRem,
  kRemu,
  kMulw,
  kDivw,
  kDivuw,
  kRemw,
  kRemuw,
  // A (W then D)
  kLrW,
  kScW,
  kAmoswapW,
  kAmoaddW,
  kAmoxorW,
  kAmoandW,
  kAmoorW,
  kAmominW,
  kAmomaxW,
  kAmominuW,
  kAmomaxuW,
  kLrD,
  kScD,
  kAmoswapD,
  kAmoaddD,
  kAmoxorD,
  kAmoandD,
  kAmoorD,
  kAmominD,
  kAmomaxD,
  kAmominuD,
  kAmomaxuD,
  // F and D: everything from here on needs mstatus.FS != Off (see is_fp()).
  kFlw,
  kFsw,
  kFld,
  kFsd,
  kFmaddS,
  kFmsubS,
  kFnmsubS,
  kFnmaddS,
  kFmaddD,
  kFmsubD,
  kFnmsubD,
  kFnmaddD,
  kFaddS,
  kFsubS,
  kFmulS,
  kFdivS,
  kFsqrtS,
  kFaddD,
  kFsubD,
  kFmulD,
  kFdivD,
  kFsqrtD,
  kFsgnjS,
  kFsgnjnS,
  kFsgnjxS,
  kFsgnjD,
  kFsgnjnD,
  kFsgnjxD,
  kFminS,
  kFmaxS,
  kFminD,
  kFmaxD,
  kFcvtSD,
  kFcvtDS,
  kFeqS,
  kFltS,
  kFleS,
  kFeqD,
  kFltD,
  kFleD,
  kFclassS,
  kFclassD,
  kFcvtWS,
  kFcvtWuS,
  kFcvtLS,
  kFcvtLuS,
  kFcvtWD,
  kFcvtWuD,
  kFcvtLD,
  kFcvtLuD,
  kFcvtSW,
  kFcvtSWu,
  kFcvtSL,
  kFcvtSLu,
  kFcvtDW,
  kFcvtDWu,
  kFcvtDL,
  kFcvtDLu,
  kFmvXW,
  kFmvWX,
  kFmvXD,
  kFmvDX,
  kCount,
  // Not an instruction: a decoded-page slot whose code the translator tier compiled; imm indexes
  // the hart's table of compiled regions (which keeps the original Insn). Never produced by decode().
  kCompiled,
};

inline constexpr bool is_fp(Op op) {
  return op >= Op::kFlw && op < Op::kCount;
}

// One decoded instruction. Field meaning depends on op; `len` is 2 or 4. For FP ops rd/rs* are
// f-register numbers except where an integer register is read or written (fmv, fcvt, compares,
// fclass, loads/stores' base). `rm` is the static rounding-mode field (7 = dynamic).
struct Insn {
  Op op = Op::kUndecoded;
  uint8_t rd = 0, rs1 = 0, rs2 = 0, rs3 = 0;
  uint8_t len = 4;
  uint8_t rm = 0;
  uint8_t pad = 0;
  int64_t imm = 0;
};
static_assert(sizeof(Insn) == 16);

// Decodes `raw`: if its low two bits are 11 it is a 32-bit instruction, else the low 16 bits are
// a compressed one. Unknown or reserved encodings give Op::kIllegal with imm = the raw bits.
Insn decode(uint32_t raw);

// Human-readable op name for diagnostics and tests.
const char* op_name(Op op);

}  // namespace jit
