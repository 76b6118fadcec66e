# Sv39: translation through 1 GiB, 2 MiB and 4 KiB pages, A/D updates by the walker, permission
# faults (R/W/X, U vs S, SUM, MXR), invalid and reserved PTEs, misaligned superpages,
# non-canonical addresses, sfence.vma, MPRV, U-mode code on a user page, WARL satp.
# Faults go to M (no delegation); the M handler records mcause/mtval in s10/s9 and resumes at s11.
.include "macros.inc"
.equ ROOT, 0x80200000
.equ L1,   0x80201000
.equ L0,   0x80202000
.equ DATA, 0x80300000
.equ RWX_AD, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D

.macro EXPECT_FAULT cause, addr
  EXPECT s10, \cause
  li t6, \addr
  bne s9, t6, fail
  li s10, 0
  li s9, 0
.endm

.section .text.init
.globl _start
_start:
  MTVEC mtrap
  li s10, 0
  li s9, 0
  # Root: 1 GiB identity pages for the harness devices and RAM; entry 0 points to L1.
  PTE ROOT + 1 * 8, 0x40000000, RWX_AD
  PTE ROOT + 2 * 8, 0x80000000, RWX_AD
  PTE ROOT + 0 * 8, L1, PTE_V
  # L1 covers VA 0..1 GiB in 2 MiB steps: entry 0x80 (VA 0x10000000) points to L0.
  PTE L1 + 0x80 * 8, L0, PTE_V
  PTE L1 + 0x81 * 8, 0x80400000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D   # 2 MiB page at VA 0x10200000
  PTE L1 + 0x82 * 8, 0x80401000, PTE_V | PTE_R | PTE_A                   # misaligned 2 MiB page
  PTE L0 + 0 * 8, DATA, PTE_V | PTE_R | PTE_W                           # A and D clear
  PTE L0 + 1 * 8, DATA + 0x1000, PTE_V | PTE_R | PTE_A | PTE_D          # read-only
  PTE L0 + 2 * 8, DATA + 0x2000, PTE_V | PTE_X | PTE_A                  # execute-only
  PTE L0 + 3 * 8, DATA + 0x3000, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D  # user data
  PTE L0 + 5 * 8, DATA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D           # alias of page 0
  PTE L0 + 6 * 8, DATA + 0x6000, PTE_V | PTE_W | PTE_A | PTE_D          # W without R: reserved
  # user code page: VA 0x10007000 -> physical page of user_code
  la t0, user_code
  srli t0, t0, 12
  slli t0, t0, 10
  ori t0, t0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A
  li t1, L0 + 7 * 8
  sd t0, 0(t1)
  li t0, (8 << 60) | (ROOT >> 12)
  csrw satp, t0
  sfence.vma
  ENTER_S supervisor

.balign 4
mtrap:
  csrr s10, mcause
  csrr s9, mtval
  li t6, 9                 # ecall from S: continue in M at s11
  bne s10, t6, 2f
  li t6, 3 << 11
  csrs mstatus, t6
  csrw mepc, s11
  mret
2: csrr t6, mstatus        # a trap from U resumes in S (at s11)
  srli t6, t6, 11
  andi t6, t6, 3
  bnez t6, 1f
  li t6, 1 << 11
  csrs mstatus, t6
1: csrw mepc, s11
  mret

supervisor:
  TEST 1                   # store through a fresh page sets A and D; the alias sees the data
  li a0, 0x10000000
  li a1, 0xabcdef
  sd a1, 8(a0)
  li a2, 0x10005000
  ld a3, 8(a2)
  bne a1, a3, fail
  li t0, L0
  ld t1, 0(t0)
  andi t1, t1, PTE_A | PTE_D
  EXPECT t1, PTE_A | PTE_D

  TEST 2                   # read-only page: loads work, stores fault with tval = address
  li a0, 0x10001000
  ld a1, 0(a0)
  la s11, 1f
  sd a1, 16(a0)
  j fail
1: EXPECT_FAULT 15, 0x10001010

  TEST 3                   # invalid PTE
  la s11, 1f
  li a0, 0x10004000
  lw a1, 4(a0)
  j fail
1: EXPECT_FAULT 13, 0x10004004

  TEST 4                   # fetch from a non-executable page
  la s11, 1f
  li a0, 0x10001000
  jr a0
1: EXPECT_FAULT 12, 0x10001000

  TEST 5                   # MXR makes execute-only pages readable
  la s11, 1f
  li a0, 0x10002000
  ld a1, 0(a0)
  j fail
1: EXPECT_FAULT 13, 0x10002000
  li t0, 1 << 19
  csrs sstatus, t0
  ld a1, 0(a0)
  csrc sstatus, t0
  la s11, 1f
  ld a1, 0(a0)             # and not after clearing it again
  j fail
1: EXPECT_FAULT 13, 0x10002000

  TEST 6                   # S touching a user page needs SUM
  la s11, 1f
  li a0, 0x10003000
  ld a1, 0(a0)
  j fail
1: EXPECT_FAULT 13, 0x10003000
  li t0, 1 << 18
  csrs sstatus, t0
  sd a0, 0(a0)
  ld a1, 0(a0)
  bne a0, a1, fail
  csrc sstatus, t0
  la s11, 1f
  sd a0, 0(a0)
  j fail
1: EXPECT_FAULT 15, 0x10003000

  TEST 7                   # S may never execute a user page, even with SUM
  li t0, 1 << 18
  csrs sstatus, t0
  la s11, 1f
  li a0, 0x10007000
  jr a0
1: EXPECT_FAULT 12, 0x10007000
  li t0, 1 << 18
  csrc sstatus, t0

  TEST 8                   # U code on a user page: user data OK, a supervisor page faults
  la s11, 1f
  li t0, 1 << 8            # SPP = U
  csrc sstatus, t0
  li t0, 0x10007000
  csrw sepc, t0
  sret
1: EXPECT_FAULT 13, 0x10001000
  EXPECT a5, 0x5555

  TEST 9                   # 2 MiB page
  li a0, 0x10200000 + 0x1234
  li a1, 0x77
  sb a1, 0(a0)
  li a2, 0x80400000 + 0x1234
  lbu a3, 0(a2)
  EXPECT a3, 0x77

  TEST 10                  # misaligned superpage
  la s11, 1f
  li a0, 0x10400000
  ld a1, 0(a0)
  j fail
1: EXPECT_FAULT 13, 0x10400000

  TEST 11                  # W without R is reserved
  la s11, 1f
  li a0, 0x10006000
  sd a1, 0(a0)
  j fail
1: EXPECT_FAULT 15, 0x10006000

  TEST 12                  # after changing a PTE, sfence.vma makes the new mapping visible
  li a0, 0x10005000
  ld a1, 0(a0)             # cached: page 0
  li t0, DATA + 0x1000
  li t1, 0x3131
  sd t1, 0(t0)
  PTE L0 + 5 * 8, DATA + 0x1000, PTE_V | PTE_R | PTE_A | PTE_D
  sfence.vma
  ld a1, 0(a0)
  EXPECT a1, 0x3131

  TEST 13                  # non-canonical address
  la s11, 1f
  li a0, 0x0000008000000000
  ld a1, 0(a0)
  j fail
1: EXPECT_FAULT 13, 0x0000008000000000

  TEST 14                  # A clear on a read-only page: the walker sets A on a load
  PTE L0 + 8 * 8, DATA + 0x8000, PTE_V | PTE_R
  sfence.vma
  li a0, 0x10008000
  ld a1, 0(a0)
  li t0, L0 + 8 * 8
  ld t1, 0(t0)
  andi t1, t1, PTE_A | PTE_D
  EXPECT t1, PTE_A

  TEST 15                  # satp writes with an unsupported mode are ignored
  csrr a0, satp
  li t0, (10 << 60) | 0x1234
  csrw satp, t0
  csrr a1, satp
  bne a0, a1, fail

  TEST 16                  # MPRV: M-mode loads/stores translated as S (MPP) while fetches are not
  la s11, in_m
  ecall
.balign 4
in_m:
  li t0, 3 << 11
  csrc mstatus, t0
  li t0, (1 << 11) | (1 << 17)   # MPP = S, MPRV = 1
  csrs mstatus, t0
  li a0, 0x10005000              # currently maps DATA + 0x1000 (test 12)
  ld a1, 0(a0)
  li t0, 1 << 17
  csrc mstatus, t0
  EXPECT a1, 0x3131
  csrs mstatus, t0               # a fault under MPRV is an S-style page fault taken in M
  la s11, 1f
  li a0, 0x10004000
  ld a1, 0(a0)
  j fail
1: li t0, 1 << 17
  csrc mstatus, t0
  EXPECT s10, 13

  PASS
.balign 4
fail:
  FAIL

# U-mode code: reads its own data page, tries a supervisor page, then ecalls.
.balign 4096
user_code:
  li a0, 0x10003000
  li a5, 0x5555
  sd a5, 8(a0)
  ld a5, 8(a0)
  li a0, 0x10001000
  ld a1, 0(a0)             # U reading a supervisor page: faults to M, which resumes S at s11
1: j 1b
