#include "jit/decode.h"

#include <cstddef>

namespace jit {
namespace {

uint8_t int_rd(uint32_t rd) {
  return rd == 0 ? kZeroSink : static_cast<uint8_t>(rd);
}

Insn make(Op op, uint32_t rd, uint32_t rs1, uint32_t rs2, int64_t imm, uint8_t len) {
  Insn in;
  in.op = op;
  in.rd = static_cast<uint8_t>(rd);
  in.rs1 = static_cast<uint8_t>(rs1);
  in.rs2 = static_cast<uint8_t>(rs2);
  in.imm = imm;
  in.len = len;
  return in;
}

// Integer-destination form: rd x0 goes to the sink.
Insn make_i(Op op, uint32_t rd, uint32_t rs1, uint32_t rs2, int64_t imm, uint8_t len) {
  return make(op, int_rd(rd), rs1, rs2, imm, len);
}

Insn illegal(uint32_t raw, uint8_t len) {
  Insn in;
  in.op = Op::kIllegal;
  in.imm = len == 2 ? (raw & 0xffff) : raw;
  in.len = len;
  return in;
}

int64_t sext(uint64_t value, int bits) {
  return static_cast<int64_t>(value << (64 - bits)) >> (64 - bits);
}

Insn decode32(uint32_t raw) {
  const uint32_t opcode = raw & 0x7f;
  const uint32_t rd = (raw >> 7) & 31;
  const uint32_t f3 = (raw >> 12) & 7;
  const uint32_t rs1 = (raw >> 15) & 31;
  const uint32_t rs2 = (raw >> 20) & 31;
  const uint32_t f7 = raw >> 25;
  const int64_t imm_i = static_cast<int32_t>(raw) >> 20;
  const int64_t imm_s = sext(((raw >> 20) & 0xfe0) | ((raw >> 7) & 31), 12);
  const int64_t imm_b =
      sext(((raw >> 19) & 0x1000) | ((raw << 4) & 0x800) | ((raw >> 20) & 0x7e0) | ((raw >> 7) & 0x1e), 13);
  const int64_t imm_u = static_cast<int32_t>(raw & 0xfffff000u);
  const int64_t imm_j =
      sext(((raw >> 11) & 0x100000) | (raw & 0xff000) | ((raw >> 9) & 0x800) | ((raw >> 20) & 0x7fe), 21);
  const Insn bad = illegal(raw, 4);

  switch (opcode) {
    case 0x37:
      return make_i(Op::kLui, rd, 0, 0, imm_u, 4);
    case 0x17:
      return make_i(Op::kAuipc, rd, 0, 0, imm_u, 4);
    case 0x6f:
      return make_i(Op::kJal, rd, 0, 0, imm_j, 4);
    case 0x67:
      return f3 == 0 ? make_i(Op::kJalr, rd, rs1, 0, imm_i, 4) : bad;
    case 0x63: {
      static constexpr Op ops[8] = {Op::kBeq, Op::kBne, Op::kIllegal, Op::kIllegal,
                                    Op::kBlt, Op::kBge, Op::kBltu,    Op::kBgeu};
      if (ops[f3] == Op::kIllegal) return bad;
      return make(ops[f3], 0, rs1, rs2, imm_b, 4);
    }
    case 0x03: {
      static constexpr Op ops[8] = {Op::kLb,  Op::kLh,  Op::kLw,  Op::kLd,
                                    Op::kLbu, Op::kLhu, Op::kLwu, Op::kIllegal};
      if (ops[f3] == Op::kIllegal) return bad;
      return make_i(ops[f3], rd, rs1, 0, imm_i, 4);
    }
    case 0x23: {
      static constexpr Op ops[4] = {Op::kSb, Op::kSh, Op::kSw, Op::kSd};
      if (f3 > 3) return bad;
      return make(ops[f3], 0, rs1, rs2, imm_s, 4);
    }
    case 0x13: {
      const uint32_t shamt = (raw >> 20) & 63;
      const uint32_t f6 = raw >> 26;
      switch (f3) {
        case 0:
          return make_i(Op::kAddi, rd, rs1, 0, imm_i, 4);
        case 2:
          return make_i(Op::kSlti, rd, rs1, 0, imm_i, 4);
        case 3:
          return make_i(Op::kSltiu, rd, rs1, 0, imm_i, 4);
        case 4:
          return make_i(Op::kXori, rd, rs1, 0, imm_i, 4);
        case 6:
          return make_i(Op::kOri, rd, rs1, 0, imm_i, 4);
        case 7:
          return make_i(Op::kAndi, rd, rs1, 0, imm_i, 4);
        case 1:
          return f6 == 0 ? make_i(Op::kSlli, rd, rs1, 0, shamt, 4) : bad;
        case 5:
          if (f6 == 0) return make_i(Op::kSrli, rd, rs1, 0, shamt, 4);
          if (f6 == 0x10) return make_i(Op::kSrai, rd, rs1, 0, shamt, 4);
          return bad;
      }
      return bad;
    }
    case 0x1b: {
      const uint32_t shamt = (raw >> 20) & 31;
      switch (f3) {
        case 0:
          return make_i(Op::kAddiw, rd, rs1, 0, imm_i, 4);
        case 1:
          return f7 == 0 ? make_i(Op::kSlliw, rd, rs1, 0, shamt, 4) : bad;
        case 5:
          if (f7 == 0) return make_i(Op::kSrliw, rd, rs1, 0, shamt, 4);
          if (f7 == 0x20) return make_i(Op::kSraiw, rd, rs1, 0, shamt, 4);
          return bad;
      }
      return bad;
    }
    case 0x33: {
      if (f7 == 0) {
        static constexpr Op ops[8] = {Op::kAdd, Op::kSll, Op::kSlt, Op::kSltu,
                                      Op::kXor, Op::kSrl, Op::kOr,  Op::kAnd};
        return make_i(ops[f3], rd, rs1, rs2, 0, 4);
      }
      if (f7 == 0x20) {
        if (f3 == 0) return make_i(Op::kSub, rd, rs1, rs2, 0, 4);
        if (f3 == 5) return make_i(Op::kSra, rd, rs1, rs2, 0, 4);
        return bad;
      }
      if (f7 == 1) {
        static constexpr Op ops[8] = {Op::kMul, Op::kMulh, Op::kMulhsu, Op::kMulhu,
                                      Op::kDiv, Op::kDivu, Op::kRem,    Op::kRemu};
        return make_i(ops[f3], rd, rs1, rs2, 0, 4);
      }
      return bad;
    }
    case 0x3b: {
      if (f7 == 0) {
        if (f3 == 0) return make_i(Op::kAddw, rd, rs1, rs2, 0, 4);
        if (f3 == 1) return make_i(Op::kSllw, rd, rs1, rs2, 0, 4);
        if (f3 == 5) return make_i(Op::kSrlw, rd, rs1, rs2, 0, 4);
        return bad;
      }
      if (f7 == 0x20) {
        if (f3 == 0) return make_i(Op::kSubw, rd, rs1, rs2, 0, 4);
        if (f3 == 5) return make_i(Op::kSraw, rd, rs1, rs2, 0, 4);
        return bad;
      }
      if (f7 == 1) {
        static constexpr Op ops[8] = {Op::kMulw, Op::kIllegal, Op::kIllegal, Op::kIllegal,
                                      Op::kDivw, Op::kDivuw,   Op::kRemw,    Op::kRemuw};
        if (ops[f3] == Op::kIllegal) return bad;
        return make_i(ops[f3], rd, rs1, rs2, 0, 4);
      }
      return bad;
    }
    case 0x0f:
      if (f3 == 0) return make(Op::kFence, 0, 0, 0, (raw >> 20) & 0xff, 4);  // imm = pred << 4 | succ
      if (f3 == 1) return make(Op::kFenceI, 0, 0, 0, 0, 4);
      return bad;
    case 0x73: {
      if (f3 == 0) {
        if (raw == 0x00000073) return make(Op::kEcall, 0, 0, 0, 0, 4);
        if (raw == 0x00100073) return make(Op::kEbreak, 0, 0, 0, 0, 4);
        if (raw == 0x30200073) return make(Op::kMret, 0, 0, 0, 0, 4);
        if (raw == 0x10200073) return make(Op::kSret, 0, 0, 0, 0, 4);
        if (raw == 0x10500073) return make(Op::kWfi, 0, 0, 0, 0, 4);
        if (f7 == 0x09 && rd == 0) return make(Op::kSfenceVma, 0, rs1, rs2, 0, 4);
        return bad;
      }
      static constexpr Op ops[8] = {Op::kIllegal, Op::kCsrrw,  Op::kCsrrs,  Op::kCsrrc,
                                    Op::kIllegal, Op::kCsrrwi, Op::kCsrrsi, Op::kCsrrci};
      if (ops[f3] == Op::kIllegal) return bad;
      Insn in = make_i(ops[f3], rd, rs1, 0, raw >> 20, 4);
      return in;
    }
    case 0x2f: {
      const uint32_t f5 = raw >> 27;
      if (f3 != 2 && f3 != 3) return bad;
      const bool d = f3 == 3;
      Op op;
      switch (f5) {
        case 0x02:
          if (rs2 != 0) return bad;
          op = d ? Op::kLrD : Op::kLrW;
          break;
        case 0x03:
          op = d ? Op::kScD : Op::kScW;
          break;
        case 0x01:
          op = d ? Op::kAmoswapD : Op::kAmoswapW;
          break;
        case 0x00:
          op = d ? Op::kAmoaddD : Op::kAmoaddW;
          break;
        case 0x04:
          op = d ? Op::kAmoxorD : Op::kAmoxorW;
          break;
        case 0x0c:
          op = d ? Op::kAmoandD : Op::kAmoandW;
          break;
        case 0x08:
          op = d ? Op::kAmoorD : Op::kAmoorW;
          break;
        case 0x10:
          op = d ? Op::kAmominD : Op::kAmominW;
          break;
        case 0x14:
          op = d ? Op::kAmomaxD : Op::kAmomaxW;
          break;
        case 0x18:
          op = d ? Op::kAmominuD : Op::kAmominuW;
          break;
        case 0x1c:
          op = d ? Op::kAmomaxuD : Op::kAmomaxuW;
          break;
        default:
          return bad;
      }
      return make_i(op, rd, rs1, rs2, 0, 4);
    }
    case 0x07:
      if (f3 == 2) return make(Op::kFlw, rd, rs1, 0, imm_i, 4);
      if (f3 == 3) return make(Op::kFld, rd, rs1, 0, imm_i, 4);
      return bad;
    case 0x27:
      if (f3 == 2) return make(Op::kFsw, 0, rs1, rs2, imm_s, 4);
      if (f3 == 3) return make(Op::kFsd, 0, rs1, rs2, imm_s, 4);
      return bad;
    case 0x43:
    case 0x47:
    case 0x4b:
    case 0x4f: {
      const uint32_t fmt = (raw >> 25) & 3;
      if (fmt > 1) return bad;
      static constexpr Op ops_s[4] = {Op::kFmaddS, Op::kFmsubS, Op::kFnmsubS, Op::kFnmaddS};
      static constexpr Op ops_d[4] = {Op::kFmaddD, Op::kFmsubD, Op::kFnmsubD, Op::kFnmaddD};
      const uint32_t which = (opcode >> 2) & 3;
      Insn in = make(fmt ? ops_d[which] : ops_s[which], rd, rs1, rs2, 0, 4);
      in.rs3 = static_cast<uint8_t>(raw >> 27);
      in.rm = static_cast<uint8_t>(f3);
      return in;
    }
    case 0x53: {
      auto fp = [&](Op op) {
        Insn in = make(op, rd, rs1, rs2, 0, 4);
        in.rm = static_cast<uint8_t>(f3);
        return in;
      };
      auto fp_int_rd = [&](Op op) {
        Insn in = make_i(op, rd, rs1, rs2, 0, 4);
        in.rm = static_cast<uint8_t>(f3);
        return in;
      };
      switch (f7) {
        case 0x00:
          return fp(Op::kFaddS);
        case 0x01:
          return fp(Op::kFaddD);
        case 0x04:
          return fp(Op::kFsubS);
        case 0x05:
          return fp(Op::kFsubD);
        case 0x08:
          return fp(Op::kFmulS);
        case 0x09:
          return fp(Op::kFmulD);
        case 0x0c:
          return fp(Op::kFdivS);
        case 0x0d:
          return fp(Op::kFdivD);
        case 0x2c:
          return rs2 == 0 ? fp(Op::kFsqrtS) : bad;
        case 0x2d:
          return rs2 == 0 ? fp(Op::kFsqrtD) : bad;
        case 0x10:
          if (f3 > 2) return bad;
          return fp(f3 == 0 ? Op::kFsgnjS : f3 == 1 ? Op::kFsgnjnS : Op::kFsgnjxS);
        case 0x11:
          if (f3 > 2) return bad;
          return fp(f3 == 0 ? Op::kFsgnjD : f3 == 1 ? Op::kFsgnjnD : Op::kFsgnjxD);
        case 0x14:
          if (f3 > 1) return bad;
          return fp(f3 == 0 ? Op::kFminS : Op::kFmaxS);
        case 0x15:
          if (f3 > 1) return bad;
          return fp(f3 == 0 ? Op::kFminD : Op::kFmaxD);
        case 0x20:
          return rs2 == 1 ? fp(Op::kFcvtSD) : bad;
        case 0x21:
          return rs2 == 0 ? fp(Op::kFcvtDS) : bad;
        case 0x50:
          if (f3 > 2) return bad;
          return fp_int_rd(f3 == 2 ? Op::kFeqS : f3 == 1 ? Op::kFltS : Op::kFleS);
        case 0x51:
          if (f3 > 2) return bad;
          return fp_int_rd(f3 == 2 ? Op::kFeqD : f3 == 1 ? Op::kFltD : Op::kFleD);
        case 0x60: {
          static constexpr Op ops[4] = {Op::kFcvtWS, Op::kFcvtWuS, Op::kFcvtLS, Op::kFcvtLuS};
          return rs2 < 4 ? fp_int_rd(ops[rs2]) : bad;
        }
        case 0x61: {
          static constexpr Op ops[4] = {Op::kFcvtWD, Op::kFcvtWuD, Op::kFcvtLD, Op::kFcvtLuD};
          return rs2 < 4 ? fp_int_rd(ops[rs2]) : bad;
        }
        case 0x68: {
          static constexpr Op ops[4] = {Op::kFcvtSW, Op::kFcvtSWu, Op::kFcvtSL, Op::kFcvtSLu};
          return rs2 < 4 ? fp(ops[rs2]) : bad;
        }
        case 0x69: {
          static constexpr Op ops[4] = {Op::kFcvtDW, Op::kFcvtDWu, Op::kFcvtDL, Op::kFcvtDLu};
          return rs2 < 4 ? fp(ops[rs2]) : bad;
        }
        case 0x70:
          if (rs2 != 0) return bad;
          if (f3 == 0) return fp_int_rd(Op::kFmvXW);
          if (f3 == 1) return fp_int_rd(Op::kFclassS);
          return bad;
        case 0x71:
          if (rs2 != 0) return bad;
          if (f3 == 0) return fp_int_rd(Op::kFmvXD);
          if (f3 == 1) return fp_int_rd(Op::kFclassD);
          return bad;
        case 0x78:
          return (rs2 == 0 && f3 == 0) ? fp(Op::kFmvWX) : bad;
        case 0x79:
          return (rs2 == 0 && f3 == 0) ? fp(Op::kFmvDX) : bad;
      }
      return bad;
    }
  }
  return bad;
}

Insn decode16(uint32_t raw) {
  const uint32_t c = raw & 0xffff;
  const uint32_t q = c & 3;
  const uint32_t f3 = c >> 13;
  const uint32_t rd = (c >> 7) & 31;  // also rs1 in CI/CR forms
  const uint32_t rs2 = (c >> 2) & 31;
  const uint32_t rdp = 8 + ((c >> 2) & 7);   // rd' / rs2'
  const uint32_t rs1p = 8 + ((c >> 7) & 7);  // rs1' / rd'
  const int64_t imm6 = sext(((c >> 7) & 0x20) | ((c >> 2) & 0x1f), 6);
  const Insn bad = illegal(c, 2);
  // Offsets of the load/store forms.
  const uint64_t off_w = ((c >> 7) & 0x38) | ((c >> 4) & 4) | ((c << 1) & 0x40);
  const uint64_t off_d = ((c >> 7) & 0x38) | ((c << 1) & 0xc0);

  if (q == 0) {
    switch (f3) {
      case 0: {
        const uint64_t nzuimm = ((c >> 7) & 0x30) | ((c >> 1) & 0x3c0) | ((c >> 4) & 4) | ((c >> 2) & 8);
        if (nzuimm == 0) return bad;  // includes the all-zero instruction
        return make_i(Op::kAddi, rdp, 2, 0, nzuimm, 2);
      }
      case 1:
        return make(Op::kFld, rdp, rs1p, 0, off_d, 2);
      case 2:
        return make_i(Op::kLw, rdp, rs1p, 0, off_w, 2);
      case 3:
        return make_i(Op::kLd, rdp, rs1p, 0, off_d, 2);
      case 5:
        return make(Op::kFsd, 0, rs1p, rdp, off_d, 2);
      case 6:
        return make(Op::kSw, 0, rs1p, rdp, off_w, 2);
      case 7:
        return make(Op::kSd, 0, rs1p, rdp, off_d, 2);
    }
    return bad;
  }
  if (q == 1) {
    switch (f3) {
      case 0:
        return make_i(Op::kAddi, rd, rd, 0, imm6, 2);
      case 1:
        if (rd == 0) return bad;
        return make_i(Op::kAddiw, rd, rd, 0, imm6, 2);
      case 2:
        return make_i(Op::kAddi, rd, 0, 0, imm6, 2);
      case 3: {
        if (rd == 2) {
          const uint64_t v = ((c >> 3) & 0x200) | ((c >> 2) & 0x10) | ((c << 1) & 0x40) | ((c << 4) & 0x180) |
                             ((c << 3) & 0x20);
          if (v == 0) return bad;
          return make_i(Op::kAddi, 2, 2, 0, sext(v, 10), 2);
        }
        if (imm6 == 0) return bad;
        return make_i(Op::kLui, rd, 0, 0, imm6 << 12, 2);
      }
      case 4: {
        const uint32_t f2 = (c >> 10) & 3;
        const uint64_t shamt = ((c >> 7) & 0x20) | ((c >> 2) & 0x1f);
        if (f2 == 0) return make_i(Op::kSrli, rs1p, rs1p, 0, shamt, 2);
        if (f2 == 1) return make_i(Op::kSrai, rs1p, rs1p, 0, shamt, 2);
        if (f2 == 2) return make_i(Op::kAndi, rs1p, rs1p, 0, imm6, 2);
        const uint32_t f = (c >> 5) & 3;
        if ((c & 0x1000) == 0) {
          static constexpr Op ops[4] = {Op::kSub, Op::kXor, Op::kOr, Op::kAnd};
          return make_i(ops[f], rs1p, rs1p, rdp, 0, 2);
        }
        if (f == 0) return make_i(Op::kSubw, rs1p, rs1p, rdp, 0, 2);
        if (f == 1) return make_i(Op::kAddw, rs1p, rs1p, rdp, 0, 2);
        return bad;
      }
      case 5: {
        const uint64_t v = ((c >> 1) & 0x800) | ((c >> 7) & 0x10) | ((c >> 1) & 0x300) | ((c << 2) & 0x400) |
                           ((c >> 1) & 0x40) | ((c << 1) & 0x80) | ((c >> 2) & 0xe) | ((c << 3) & 0x20);
        return make_i(Op::kJal, 0, 0, 0, sext(v, 12), 2);
      }
      case 6:
      case 7: {
        const uint64_t v =
            ((c >> 4) & 0x100) | ((c >> 7) & 0x18) | ((c << 1) & 0xc0) | ((c >> 2) & 6) | ((c << 3) & 0x20);
        return make(f3 == 6 ? Op::kBeq : Op::kBne, 0, rs1p, 0, sext(v, 9), 2);
      }
    }
    return bad;
  }
  // q == 2
  switch (f3) {
    case 0: {
      const uint64_t shamt = ((c >> 7) & 0x20) | ((c >> 2) & 0x1f);
      return make_i(Op::kSlli, rd, rd, 0, shamt, 2);
    }
    case 1: {
      const uint64_t off = ((c >> 7) & 0x20) | ((c >> 2) & 0x18) | ((c << 4) & 0x1c0);
      return make(Op::kFld, rd, 2, 0, off, 2);
    }
    case 2: {
      if (rd == 0) return bad;
      const uint64_t off = ((c >> 7) & 0x20) | ((c >> 2) & 0x1c) | ((c << 4) & 0xc0);
      return make_i(Op::kLw, rd, 2, 0, off, 2);
    }
    case 3: {
      if (rd == 0) return bad;
      const uint64_t off = ((c >> 7) & 0x20) | ((c >> 2) & 0x18) | ((c << 4) & 0x1c0);
      return make_i(Op::kLd, rd, 2, 0, off, 2);
    }
    case 4:
      if ((c & 0x1000) == 0) {
        if (rs2 == 0) {
          if (rd == 0) return bad;
          return make_i(Op::kJalr, 0, rd, 0, 0, 2);
        }
        return make_i(Op::kAdd, rd, 0, rs2, 0, 2);
      }
      if (rs2 == 0) {
        if (rd == 0) return make(Op::kEbreak, 0, 0, 0, 0, 2);
        return make_i(Op::kJalr, 1, rd, 0, 0, 2);
      }
      return make_i(Op::kAdd, rd, rd, rs2, 0, 2);
    case 5: {
      const uint64_t off = ((c >> 7) & 0x38) | ((c >> 1) & 0x1c0);
      return make(Op::kFsd, 0, 2, rs2, off, 2);
    }
    case 6: {
      const uint64_t off = ((c >> 7) & 0x3c) | ((c >> 1) & 0xc0);
      return make(Op::kSw, 0, 2, rs2, off, 2);
    }
    case 7: {
      const uint64_t off = ((c >> 7) & 0x38) | ((c >> 1) & 0x1c0);
      return make(Op::kSd, 0, 2, rs2, off, 2);
    }
  }
  return bad;
}

}  // namespace

Insn decode(uint32_t raw) {
  return (raw & 3) == 3 ? decode32(raw) : decode16(raw);
}

const char* op_name(Op op) {
  static const char* const names[] = {
      "undecoded", "crosspage", "illegal",   "lui",        "auipc",     "jal",      "jalr",      "beq",
      "bne",       "blt",       "bge",       "bltu",       "bgeu",      "lb",       "lh",        "lw",
      "ld",        "lbu",       "lhu",       "lwu",        "sb",        "sh",       "sw",        "sd",
      "addi",      "slti",      "sltiu",     "xori",       "ori",       "andi",     "slli",      "srli",
      "srai",      "add",       "sub",       "sll",        "slt",       "sltu",     "xor",       "srl",
      "sra",       "or",        "and",       "addiw",      "slliw",     "srliw",    "sraiw",     "addw",
      "subw",      "sllw",      "srlw",      "sraw",       "fence",     "fence.i",  "ecall",     "ebreak",
      "mret",      "sret",      "wfi",       "sfence.vma", "csrrw",     "csrrs",    "csrrc",     "csrrwi",
      "csrrsi",    "csrrci",    "mul",       "mulh",       "mulhsu",    "mulhu",    "div",       "divu",
      "rem",       "remu",      "mulw",      "divw",       "divuw",     "remw",     "remuw",     "lr.w",
      "sc.w",      "amoswap.w", "amoadd.w",  "amoxor.w",   "amoand.w",  "amoor.w",  "amomin.w",  "amomax.w",
      "amominu.w", "amomaxu.w", "lr.d",      "sc.d",       "amoswap.d", "amoadd.d", "amoxor.d",  "amoand.d",
      "amoor.d",   "amomin.d",  "amomax.d",  "amominu.d",  "amomaxu.d", "flw",      "fsw",       "fld",
      "fsd",       "fmadd.s",   "fmsub.s",   "fnmsub.s",   "fnmadd.s",  "fmadd.d",  "fmsub.d",   "fnmsub.d",
      "fnmadd.d",  "fadd.s",    "fsub.s",    "fmul.s",     "fdiv.s",    "fsqrt.s",  "fadd.d",    "fsub.d",
      "fmul.d",    "fdiv.d",    "fsqrt.d",   "fsgnj.s",    "fsgnjn.s",  "fsgnjx.s", "fsgnj.d",   "fsgnjn.d",
      "fsgnjx.d",  "fmin.s",    "fmax.s",    "fmin.d",     "fmax.d",    "fcvt.s.d", "fcvt.d.s",  "feq.s",
      "flt.s",     "fle.s",     "feq.d",     "flt.d",      "fle.d",     "fclass.s", "fclass.d",  "fcvt.w.s",
      "fcvt.wu.s", "fcvt.l.s",  "fcvt.lu.s", "fcvt.w.d",   "fcvt.wu.d", "fcvt.l.d", "fcvt.lu.d", "fcvt.s.w",
      "fcvt.s.wu", "fcvt.s.l",  "fcvt.s.lu", "fcvt.d.w",   "fcvt.d.wu", "fcvt.d.l", "fcvt.d.lu", "fmv.x.w",
      "fmv.w.x",   "fmv.x.d",   "fmv.d.x",
  };
  static_assert(sizeof(names) / sizeof(names[0]) == static_cast<size_t>(Op::kCount));
  if (op == Op::kCompiled) return "compiled";
  if (op >= Op::kCount) return "?";
  return names[static_cast<size_t>(op)];
}

}  // namespace jit
