# PMP: WARL read-back (address bits, W-without-R), NAPOT / NA4 / TOR matching in priority order,
# partially covered accesses, S-mode checks with M-mode exempt, locked entries binding M and
# ignoring writes. Faults resume at s11 with cause/tval in s10/s9 (M handler).
.include "macros.inc"
.equ DATA, 0x80010000
.macro EXPECT_FAULT cause, addr
  EXPECT s10, \cause
  li t6, \addr
  bne s9, t6, fail
  li s10, 0
.endm

.section .text.init
.globl _start
_start:
  MTVEC mtrap
  li s10, 0

  TEST 1                   # address register width and reserved permission combination
  li t0, -1
  csrw pmpaddr3, t0
  csrr t1, pmpaddr3
  li t2, (1 << 54) - 1
  bne t1, t2, fail
  li t0, 0x1a << 24        # entry 3: NAPOT | W (without R)
  csrw pmpcfg0, t0
  csrr t1, pmpcfg0
  srli t1, t1, 24
  andi t1, t1, 0xff
  EXPECT t1, 0x18          # R/W dropped
  csrw pmpcfg0, zero
  csrw pmpaddr3, zero

  TEST 2                   # program the regions
  li t0, (DATA >> 2) | 0x1ff                 # NAPOT 4 KiB at DATA
  csrw pmpaddr0, t0
  li t0, (DATA + 0x1000) >> 2                # NA4 at DATA+0x1000, then TOR base
  csrw pmpaddr1, t0
  li t0, (DATA + 0x2000) >> 2                # TOR top
  csrw pmpaddr2, t0
  li t0, -1
  csrw pmpaddr15, t0                         # NAPOT everything
  li t0, 0x19 | (0x10 << 8) | (0x0c << 16)   # R | NAPOT, NA4 no access, X | TOR
  csrw pmpcfg0, t0
  li t0, 0x1f << 56                          # entry 15: RWX NAPOT
  csrw pmpcfg2, t0
  ENTER_S super

.balign 4
mtrap:
  csrr s10, mcause
  csrr s9, mtval
  li t6, 9                 # ecall from S: continue in M; faults resume in the faulting mode
  bne s10, t6, 1f
  li t6, 3 << 11
  csrs mstatus, t6
1: csrw mepc, s11
  mret

super:
  TEST 3                   # read-only region: load ok, store faults
  li a0, DATA
  ld a1, 0(a0)
  la s11, 1f
  sd a1, 0(a0)
  j fail
1: EXPECT_FAULT 7, DATA

  TEST 4                   # NA4 entry without permissions wins over the TOR entry after it
  la s11, 1f
  li a0, DATA + 0x1000
  lw a1, 0(a0)
  j fail
1: EXPECT_FAULT 5, DATA + 0x1000

  TEST 5                   # TOR execute-only: loads fault
  la s11, 1f
  li a0, DATA + 0x1008
  ld a1, 0(a0)
  j fail
1: EXPECT_FAULT 5, DATA + 0x1008

  TEST 6                   # an access straddling two regions fails even if both would allow it
  la s11, 1f
  li a0, DATA + 0xffc
  ld a1, 0(a0)
  j fail
1: EXPECT s10, 5

  TEST 7                   # everything else is reachable through entry 15
  la a0, scratch
  sd a0, 0(a0)
  ld a1, 0(a0)
  bne a0, a1, fail
  la s11, back_in_m
  ecall
.balign 4
back_in_m:
  EXPECT s10, 9

  TEST 8                   # M is exempt from unlocked entries
  li a0, DATA
  sd a0, 0(a0)

  TEST 9                   # a locked entry binds M and ignores writes
  li t0, 0x80
  csrs pmpcfg0, t0
  la s11, 1f
  li a0, DATA
  sd a0, 8(a0)
  j fail
1: EXPECT_FAULT 7, DATA + 8
  csrw pmpaddr0, zero
  csrr t0, pmpaddr0
  li t1, (DATA >> 2) | 0x1ff
  bne t0, t1, fail
  csrci pmpcfg0, 1
  csrr t0, pmpcfg0
  andi t0, t0, 0xff
  EXPECT t0, 0x99

  PASS
.balign 4
fail:
  FAIL

.data
.align 4
scratch: .dword 0
