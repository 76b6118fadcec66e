# RV64A: every AMO in both widths (old value returned, sign-extended for .w), LR/SC success and the
# failure cases (no reservation, reservation broken by a store, SC to another address, a second
# SC), and the misaligned-AMO trap.
.include "macros.inc"
.section .text.init
.globl _start
_start:
  MTVEC fail
  la s0, word

  TEST 1
  li a0, 5
  sd a0, 0(s0)
  li a1, 3
  amoadd.d a2, a1, (s0)
  EXPECT a2, 5
  ld a2, 0(s0)
  EXPECT a2, 8
  amoswap.d a2, a1, (s0)
  EXPECT a2, 8
  li a1, 0xf0
  amoor.d a2, a1, (s0)
  amoand.d a2, a1, (s0)
  EXPECT a2, 0xf3
  amoxor.d a2, a1, (s0)
  EXPECT a2, 0xf0
  ld a2, 0(s0)
  EXPECT a2, 0

  TEST 2                  # min/max, signed and unsigned
  li a0, -5
  sd a0, 0(s0)
  li a1, 3
  amomin.d a2, a1, (s0)
  EXPECT a2, -5
  ld a2, 0(s0)
  EXPECT a2, -5
  amomax.d a2, a1, (s0)
  ld a2, 0(s0)
  EXPECT a2, 3
  li a1, -1
  amominu.d a2, a1, (s0)
  ld a2, 0(s0)
  EXPECT a2, 3
  amomaxu.d a2, a1, (s0)
  ld a2, 0(s0)
  EXPECT a2, -1

  TEST 3                  # .w forms touch 32 bits and sign-extend
  li a0, 0x7fffffff
  sw a0, 0(s0)
  sw zero, 4(s0)
  li a1, 1
  amoadd.w a2, a1, (s0)
  EXPECT a2, 0x7fffffff
  lw a2, 0(s0)
  EXPECT a2, 0xffffffff80000000
  lw a2, 4(s0)
  EXPECT a2, 0
  li a1, 5
  amomin.w a2, a1, (s0)
  lw a2, 0(s0)
  EXPECT a2, 0xffffffff80000000
  amominu.w a2, a1, (s0)
  lw a2, 0(s0)
  EXPECT a2, 5
  li a1, -1
  amomaxu.w a2, a1, (s0)
  amomax.w a2, a1, (s0)
  EXPECT a2, -1
  amoswap.w a2, zero, (s0)
  amoxor.w a2, a1, (s0)
  amoor.w a2, a1, (s0)
  amoand.w a2, zero, (s0)
  EXPECT a2, -1

  TEST 4                  # LR/SC success
  li a0, 10
  sd a0, 0(s0)
  lr.d a1, (s0)
  EXPECT a1, 10
  addi a1, a1, 1
  sc.d a2, a1, (s0)
  EXPECT a2, 0
  ld a1, 0(s0)
  EXPECT a1, 11

  TEST 5                  # a second SC without LR fails
  sc.d a2, a1, (s0)
  EXPECT a2, 1
  ld a1, 0(s0)
  EXPECT a1, 11

  TEST 6                  # SC to a different address fails
  lr.d a1, (s0)
  addi a4, s0, 8
  sc.d a2, a1, (a4)
  EXPECT a2, 1

  TEST 7                  # a store changing the value in between breaks the reservation
  lr.w a1, (s0)
  li a3, 99
  sw a3, 0(s0)
  sc.w a2, a1, (s0)
  EXPECT a2, 1
  lw a1, 0(s0)
  EXPECT a1, 99

  TEST 8                  # lr.w sign-extends
  li a0, -2
  sw a0, 0(s0)
  lr.w a1, (s0)
  EXPECT a1, -2
  li a3, 7
  sc.w a2, a3, (s0)
  EXPECT a2, 0
  lw a1, 0(s0)
  EXPECT a1, 7

  TEST 9                  # a trap clears the reservation
  lr.d a1, (s0)
  MTVEC 1f
  ecall
.balign 4
1:
  MTVEC fail
  sc.d a2, a1, (s0)
  EXPECT a2, 1

  TEST 10                 # misaligned AMO traps with cause 6 and tval = address
  MTVEC misaligned
  addi a0, s0, 2
  amoadd.w a2, a1, (a0)
  j fail
.balign 4
misaligned:
  csrr t0, mcause
  EXPECT t0, 6
  csrr t0, mtval
  bne t0, a0, fail
  MTVEC fail

  TEST 11                 # misaligned LR traps as a load (cause 4)
  MTVEC misaligned_lr
  addi a0, s0, 4
  lr.d a2, (a0)
  j fail
.balign 4
misaligned_lr:
  csrr t0, mcause
  EXPECT t0, 4
  MTVEC fail

  TEST 12                 # AMO to a device address: store/AMO access fault
  MTVEC amo_fault
  li a0, MAGIC
  amoadd.d a2, a1, (a0)
  j fail
.balign 4
amo_fault:
  csrr t0, mcause
  EXPECT t0, 7

  PASS
.balign 4
fail:
  FAIL

.data
.align 4
word: .dword 0, 0
