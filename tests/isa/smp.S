# Two harts (a0 = hart id at entry): both bump shared counters 20000 times with amoadd.d and with an
# LR/SC loop; hart 0 waits for hart 1 and checks both totals (atomicity across host threads).
.include "macros.inc"
.equ N, 20000
.section .text.init
.globl _start
_start:
  MTVEC fail
  csrr t0, mhartid
  bne t0, a0, fail          # a0 carries the hart id, as for OpenSBI
  la s0, counters
  li s1, N
1: li t0, 1
  amoadd.d zero, t0, (s0)
  addi s2, s0, 8
2: lr.d t1, (s2)
  addi t1, t1, 1
  sc.d t2, t1, (s2)
  bnez t2, 2b
  addi s1, s1, -1
  bnez s1, 1b
  li t0, 1
  addi s3, s0, 16
  amoadd.d zero, t0, (s3)    # done count
  bnez a0, park
  TEST 1
3: ld t0, 16(s0)
  li t1, 2
  bne t0, t1, 3b
  ld t0, 0(s0)
  EXPECT t0, 2 * N
  TEST 2
  ld t0, 8(s0)
  EXPECT t0, 2 * N
  PASS
park:
  wfi
  j park
.balign 4
fail:
  FAIL

.data
.align 6
counters: .dword 0, 0, 0
