# Sv48: four-level walks, a 512 GiB "terapage", a 4 KiB page at the top of the 47-bit lower half,
# and the wider canonical-address check.
.include "macros.inc"
.equ ROOT, 0x80200000
.equ L2,   0x80201000
.equ L2B,  0x80202000
.equ L1,   0x80203000
.equ L0,   0x80204000
.equ DATA, 0x80300000
.equ RWX_AD, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D

.section .text.init
.globl _start
_start:
  MTVEC mtrap
  PTE ROOT + 0 * 8, L2, PTE_V
  PTE L2 + 1 * 8, 0x40000000, RWX_AD          # devices, 1 GiB
  PTE L2 + 2 * 8, 0x80000000, RWX_AD          # RAM identity, 1 GiB
  PTE ROOT + 1 * 8, 0, RWX_AD                 # VA 512 GiB.. -> PA 0.. (512 GiB page)
  PTE ROOT + 0xff * 8, L2B, PTE_V             # VA 0x7f80_0000_0000..
  PTE L2B + 511 * 8, L1, PTE_V
  PTE L1 + 511 * 8, L0, PTE_V
  PTE L0 + 511 * 8, DATA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D  # VA 0x7fff_ffff_f000
  li t0, (9 << 60) | (ROOT >> 12)
  csrw satp, t0
  csrr t1, satp
  bne t0, t1, fail
  sfence.vma
  ENTER_S supervisor

.balign 4
mtrap:
  csrr s10, mcause
  csrr s9, mtval
  csrw mepc, s11
  mret

supervisor:
  TEST 1                   # highest 4 KiB page of the lower half
  li a0, 0x00007ffffffff000
  li a1, 0x4848
  sd a1, 0x10(a0)
  li a2, DATA + 0x10
  ld a3, 0(a2)
  EXPECT a3, 0x4848

  TEST 2                   # 512 GiB page maps physical RAM at VA 512 GiB + PA
  li a0, 0x0000008000000000 + DATA + 0x10
  ld a3, 0(a0)
  EXPECT a3, 0x4848

  TEST 3                   # bit 47 set without sign extension: page fault
  la s11, 1f
  li a0, 0x0000800000000000
  ld a1, 0(a0)
  j fail
1: EXPECT s10, 13
  li t0, 0x0000800000000000
  bne s9, t0, fail

  TEST 4                   # unmapped sign-extended upper-half address: page fault
  la s11, 1f
  li a0, 0xffff800000000000
  ld a1, 0(a0)
  j fail
1: EXPECT s10, 13

  PASS
.balign 4
fail:
  FAIL
