#include "jit/decode.h"

#include <doctest/doctest.h>

#include <string>

using jit::decode;
using jit::Op;

TEST_CASE("decode: base integer forms and the x0 sink") {
  auto in = decode(0x00a00513);  // addi a0, zero, 10
  CHECK(in.op == Op::kAddi);
  CHECK(in.rd == 10);
  CHECK(in.rs1 == 0);
  CHECK(in.imm == 10);
  CHECK(in.len == 4);
  in = decode(0x00000013);  // nop = addi x0, x0, 0: rd goes to the sink
  CHECK(in.op == Op::kAddi);
  CHECK(in.rd == jit::kZeroSink);
  in = decode(0xfff00593);  // addi a1, zero, -1
  CHECK(in.imm == -1);
  in = decode(0x40b50533);  // sub a0, a0, a1
  CHECK(in.op == Op::kSub);
  CHECK(in.rs2 == 11);
  in = decode(0x02b50533);  // mul a0, a0, a1
  CHECK(in.op == Op::kMul);
  in = decode(0x4035d593);  // srai a1, a1, 3
  CHECK(in.op == Op::kSrai);
  CHECK(in.imm == 3);
}

TEST_CASE("decode: branch, jump and store immediates") {
  auto in = decode(0xfe0516e3);  // bnez a0, -20
  CHECK(in.op == Op::kBne);
  CHECK(in.imm == -20);
  in = decode(0x0080006f);  // j +8
  CHECK(in.op == Op::kJal);
  CHECK(in.imm == 8);
  CHECK(in.rd == jit::kZeroSink);
  in = decode(0x00b53423);  // sd a1, 8(a0)
  CHECK(in.op == Op::kSd);
  CHECK(in.imm == 8);
  CHECK(in.rs1 == 10);
  CHECK(in.rs2 == 11);
  in = decode(0xfeb53c23);  // sd a1, -8(a0)
  CHECK(in.imm == -8);
}

TEST_CASE("decode: compressed instructions expand to their base forms") {
  auto in = decode(0x4529);  // c.li a0, 10
  CHECK(in.op == Op::kAddi);
  CHECK(in.rd == 10);
  CHECK(in.rs1 == 0);
  CHECK(in.imm == 10);
  CHECK(in.len == 2);
  in = decode(0x1141);  // c.addi sp, -16
  CHECK(in.op == Op::kAddi);
  CHECK(in.rd == 2);
  CHECK(in.imm == -16);
  in = decode(0xe406);  // c.sdsp ra, 8(sp)
  CHECK(in.op == Op::kSd);
  CHECK(in.rs1 == 2);
  CHECK(in.rs2 == 1);
  CHECK(in.imm == 8);
  in = decode(0x60a2);  // c.ldsp ra, 8(sp)
  CHECK(in.op == Op::kLd);
  CHECK(in.rd == 1);
  CHECK(in.imm == 8);
  in = decode(0x8082);  // c.jr ra (ret)
  CHECK(in.op == Op::kJalr);
  CHECK(in.rs1 == 1);
  CHECK(in.rd == jit::kZeroSink);
  in = decode(0x9002);  // c.ebreak
  CHECK(in.op == Op::kEbreak);
  in = decode(0x0000);  // all zeros: defined illegal
  CHECK(in.op == Op::kIllegal);
  in = decode(0x6141);  // c.addi16sp sp, 16
  CHECK(in.op == Op::kAddi);
  CHECK(in.imm == 16);
  in = decode(0x0808);  // c.addi4spn a0, sp, 16
  CHECK(in.op == Op::kAddi);
  CHECK(in.rd == 10);
  CHECK(in.rs1 == 2);
  CHECK(in.imm == 16);
}

TEST_CASE("decode: system, CSR, atomics and FP") {
  CHECK(decode(0x00000073).op == Op::kEcall);
  CHECK(decode(0x30200073).op == Op::kMret);
  CHECK(decode(0x10500073).op == Op::kWfi);
  CHECK(decode(0x12000073).op == Op::kSfenceVma);
  auto in = decode(0x30529073);  // csrw mtvec, t0
  CHECK(in.op == Op::kCsrrw);
  CHECK(in.imm == 0x305);
  CHECK(in.rs1 == 5);
  in = decode(0x100522af);  // lr.w t0, (a0)
  CHECK(in.op == Op::kLrW);
  in = decode(0x00b5302f);  // amoadd.d zero, a1, (a0)
  CHECK(in.op == Op::kAmoaddD);
  in = decode(0x02b57553);  // fadd.d fa0, fa0, fa1 (dyn rm)
  CHECK(in.op == Op::kFaddD);
  CHECK(in.rm == 7);
  CHECK(jit::is_fp(in.op));
  CHECK(decode(0xffffffff).op == Op::kIllegal);
  CHECK(decode(0x00000007 | (5 << 12)).op == Op::kIllegal);  // fp load width 5
}

TEST_CASE("decode: op names cover every op") {
  for (int i = 0; i < static_cast<int>(Op::kCount); ++i) CHECK(jit::op_name(static_cast<Op>(i)) != nullptr);
  CHECK(std::string(jit::op_name(Op::kFcvtLuD)) == "fcvt.lu.d");
}
