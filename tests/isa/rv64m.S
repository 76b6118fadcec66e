# RV64M: products (all high-half variants), division and remainder incl. the defined results for
# division by zero and signed overflow, and the *W forms.
.include "macros.inc"
.section .text.init
.globl _start
_start:
  MTVEC fail

  TEST 1
  li a0, -7
  li a1, 3
  mul a2, a0, a1
  EXPECT a2, -21
  li a0, 0x7fffffffffffffff
  li a1, 0x7fffffffffffffff
  mulh a2, a0, a1
  EXPECT a2, 0x3fffffffffffffff
  li a0, -1
  li a1, -1
  mulhu a2, a0, a1
  EXPECT a2, -2
  mulh a2, a0, a1
  EXPECT a2, 0
  li a0, -2
  li a1, 3
  mulhsu a2, a0, a1       # -2 * 3 = -6: high half all ones
  EXPECT a2, -1
  li a1, -1               # as unsigned: 2^64-1; -2 * (2^64-1) high half = -2
  mulhsu a2, a0, a1
  EXPECT a2, -2

  TEST 2
  li a0, -20
  li a1, 6
  div a2, a0, a1
  EXPECT a2, -3
  rem a2, a0, a1
  EXPECT a2, -2
  divu a2, a1, a1
  EXPECT a2, 1
  li a0, 20
  remu a2, a0, a1
  EXPECT a2, 2

  TEST 3                  # division by zero
  li a0, 42
  div a2, a0, zero
  EXPECT a2, -1
  divu a2, a0, zero
  EXPECT a2, -1
  rem a2, a0, zero
  EXPECT a2, 42
  remu a2, a0, zero
  EXPECT a2, 42

  TEST 4                  # signed overflow
  li a0, 0x8000000000000000
  li a1, -1
  div a2, a0, a1
  bne a2, a0, fail
  rem a2, a0, a1
  EXPECT a2, 0

  TEST 5                  # W forms
  li a0, 0x12345678
  li a1, 0x100
  mulw a2, a0, a1
  EXPECT a2, 0x34567800
  li a0, 0xffffffff80000000
  li a1, -1
  divw a2, a0, a1
  EXPECT a2, 0xffffffff80000000
  remw a2, a0, a1
  EXPECT a2, 0
  li a0, 0x80000000       # upper bits ignored by the W forms
  li a1, 2
  divuw a2, a0, a1
  EXPECT a2, 0x40000000
  divw a2, a0, a1
  EXPECT a2, 0xffffffffc0000000
  remuw a2, a0, zero
  EXPECT a2, 0xffffffff80000000
  divuw a2, a0, zero
  EXPECT a2, -1
  li a0, -7
  li a1, 2
  remw a2, a0, a1
  EXPECT a2, -1

  PASS
.balign 4
fail:
  FAIL
