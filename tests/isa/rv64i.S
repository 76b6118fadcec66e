# RV64I: arithmetic, logic, shifts, compares, upper immediates, loads/stores of every width with
# sign/zero extension, branches both ways, jal/jalr link values, *W forms.
.include "macros.inc"
.option norvc
.section .text.init
.globl _start
_start:
  MTVEC fail

  TEST 1
  li a0, 5
  li a1, 7
  add a2, a0, a1
  EXPECT a2, 12
  sub a2, a0, a1
  EXPECT a2, -2
  addi a2, a0, -6
  EXPECT a2, -1

  TEST 2
  li a0, 0xff00ff00ff00ff00
  li a1, 0x0ff00ff00ff00ff0
  and a2, a0, a1
  EXPECT a2, 0x0f000f000f000f00
  or a2, a0, a1
  EXPECT a2, 0xfff0fff0fff0fff0
  xor a2, a0, a1
  EXPECT a2, 0xf0f0f0f0f0f0f0f0
  andi a2, a0, -256
  EXPECT a2, 0xff00ff00ff00ff00
  ori a2, zero, 0x7ff
  EXPECT a2, 0x7ff
  xori a2, a0, -1
  EXPECT a2, 0x00ff00ff00ff00ff

  TEST 3
  li a0, 0x8000000000000001
  slli a1, a0, 1
  EXPECT a1, 2
  srli a1, a0, 63
  EXPECT a1, 1
  srai a1, a0, 62
  EXPECT a1, -2
  li a2, 65            # shift amounts use the low 6 bits
  sll a1, a0, a2
  EXPECT a1, 2
  srl a1, a0, a2
  EXPECT a1, 0x4000000000000000
  sra a1, a0, a2
  EXPECT a1, 0xc000000000000000

  TEST 4
  li a0, -1
  li a1, 1
  slt a2, a0, a1
  EXPECT a2, 1
  sltu a2, a0, a1
  EXPECT a2, 0
  slti a2, a0, 0
  EXPECT a2, 1
  sltiu a2, a1, -1     # immediate sign-extended then compared unsigned
  EXPECT a2, 1
  sltiu a2, zero, 1    # seqz
  EXPECT a2, 1

  TEST 5
  lui a0, 0x80000      # sign-extends on RV64
  EXPECT a0, 0xffffffff80000000
  auipc a1, 0
  la a2, test5_here
test5_here:
  addi a1, a1, 12      # auipc was 3 instructions (12 bytes) before test5_here
  bne a1, a2, fail

  TEST 6
  la s0, data
  li a0, 0x8899aabbccddeeff
  sd a0, 0(s0)
  lb a1, 0(s0)
  EXPECT a1, -1
  lbu a1, 0(s0)
  EXPECT a1, 0xff
  lh a1, 2(s0)
  EXPECT a1, 0xffffffffffffccdd
  lhu a1, 2(s0)
  EXPECT a1, 0xccdd
  lw a1, 4(s0)
  EXPECT a1, 0xffffffff8899aabb
  lwu a1, 4(s0)
  EXPECT a1, 0x8899aabb
  ld a1, 0(s0)
  bne a1, a0, fail
  li a2, 0x11
  sb a2, 1(s0)
  li a2, 0x2233
  sh a2, 2(s0)
  li a2, 0x44556677
  sw a2, 4(s0)
  ld a1, 0(s0)
  EXPECT a1, 0x445566772233 << 16 | 0x11ff

  TEST 7                # misaligned accesses are handled (not trapped)
  li a0, 0x0102030405060708
  sd a0, 3(s0)
  ld a1, 3(s0)
  bne a0, a1, fail
  lw a1, 5(s0)
  EXPECT a1, 0x03040506
  lh a1, 9(s0)
  EXPECT a1, 0x0102

  TEST 8                # branches, taken and not
  li a0, -3
  li a1, 4
  beq a0, a1, fail
  bne a0, a0, fail
  blt a1, a0, fail
  bge a0, a1, fail
  bltu a0, a1, fail
  bgeu a1, a0, fail
  blt a0, a1, 1f
  j fail
1: bge a1, a0, 1f
  j fail
1: bltu a1, a0, 1f
  j fail
1: bgeu a0, a1, 1f
  j fail
1: beq a0, a0, 1f
  j fail
1: bne a0, a1, 1f
  j fail
1:

  TEST 9                # jal/jalr link addresses, jalr clears bit 0
  jal ra, 1f
test9_ret:
  j 2f
1: la a0, test9_ret
  bne ra, a0, fail
  la a1, 3f
  addi a1, a1, 1
  jalr t0, 0(a1)
4: j fail
3: la a2, 4b
  bne t0, a2, fail
  jalr zero, 0(ra)
2:

  TEST 10               # *W forms sign-extend 32-bit results
  li a0, 0x7fffffff
  addiw a1, a0, 1
  EXPECT a1, 0xffffffff80000000
  addw a1, a0, a0
  EXPECT a1, -2
  subw a1, zero, a0
  EXPECT a1, 0xffffffff80000001
  slliw a1, a0, 1
  EXPECT a1, -2
  li a0, 0x80000000
  srliw a1, a0, 4
  EXPECT a1, 0x08000000
  sraiw a1, a0, 4
  EXPECT a1, 0xfffffffff8000000
  li a2, 36             # *W shifts use 5 bits
  sllw a1, a0, a2
  EXPECT a1, 0
  srlw a1, a0, a2
  EXPECT a1, 0x08000000
  sraw a1, a0, a2
  EXPECT a1, 0xfffffffff8000000
  li a0, 0xffffffff00000005
  addiw a1, a0, 0       # sext.w
  EXPECT a1, 5

  TEST 11               # x0 stays zero
  li a0, 5
  add zero, a0, a0
  addi zero, zero, 1
  lui zero, 1
  bnez zero, fail

  TEST 12               # MMIO loads reach the harness's device
  li a0, MAGIC
  ld a1, 0(a0)
  EXPECT a1, 0x1234567887654321
  lw a1, 0(a0)
  EXPECT a1, 0xffffffff87654321

  PASS
.balign 4
fail:
  FAIL

.data
.align 4
data: .dword 0, 0, 0, 0
