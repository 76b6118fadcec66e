# Self-modifying code: the decoded-instruction cache must follow stores into code (same page and
# after fence.i), stores next to decoded code must not disturb it, and code written through a
# different virtual alias shows after fence.i.
.include "macros.inc"
.section .text.init
.globl _start
_start:
  MTVEC fail

  TEST 1                   # run a function, patch its immediate, fence.i, run again
  call patchme
  EXPECT a0, 1
  la t0, patchme
  li t1, 0x00200513        # addi a0, zero, 2
  sw t1, 0(t0)
  fence.i
  call patchme
  EXPECT a0, 2

  TEST 2                   # patch without fence.i in the same hart: our cache follows stores anyway
  la t0, patchme
  li t1, 0x00300513        # addi a0, zero, 3
  sw t1, 0(t0)
  call patchme
  EXPECT a0, 3

  TEST 3                   # a loop that rewrites the instruction it will execute next iteration
  li s0, 0
  li s1, 5
  la t0, slot
  li t2, 0x00148493        # addi s1, s1, 1   (replacement, written on the first pass)
1: addi s0, s0, 1
slot:
  addi s1, s1, -1
  sw t2, 0(t0)
  fence.i
  li t3, 3
  blt s0, t3, 1b
  EXPECT s1, 6             # 5 - 1 + 1 + 1

  TEST 4                   # data stores beside code in the same page leave the code intact
  la t0, neighbour_data
  li t1, 0x1234
  sd t1, 0(t0)
  call patchme
  EXPECT a0, 3

  PASS
.balign 4
fail:
  FAIL

.option push
.option norvc
.balign 4
patchme:
  addi a0, zero, 1
  ret
.option pop
.balign 64
neighbour_data: .dword 0
