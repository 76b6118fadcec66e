# Traps and interrupts: ecall from M/S/U, delegation to S, illegal instructions (bad encodings,
# unimplemented CSRs, privilege violations, xRET from the wrong mode), counter access rules,
# access faults, ebreak, interrupts raised through Vm::set_irq_line (direct and vectored mtvec,
# delegated to S, priority), wfi wake-up from another thread, Sstc stimecmp.
.include "macros.inc"
.section .text.init
.globl _start
_start:
  MTVEC fail

  TEST 1                  # ecall from M
  MTVEC t1_trap
t1_ecall:
  ecall
  j fail
.balign 4
t1_trap:
  csrr t0, mcause
  EXPECT t0, 11
  csrr t0, mepc
  la t1, t1_ecall
  bne t0, t1, fail

  TEST 2                  # ecall from U, not delegated: M sees cause 8 and MPP = U
  MTVEC t2_trap
  ENTER_U t2_user
t2_user:
  ecall
  j fail
.balign 4
t2_trap:
  csrr t0, mcause
  EXPECT t0, 8
  csrr t0, mstatus
  srli t0, t0, 11
  andi t0, t0, 3
  EXPECT t0, 0

  TEST 3                  # ecall from S: cause 9, MPP = S
  MTVEC t3_trap
  ENTER_S t3_super
t3_super:
  ecall
  j fail
.balign 4
t3_trap:
  csrr t0, mcause
  EXPECT t0, 9
  csrr t0, mstatus
  srli t0, t0, 11
  andi t0, t0, 3
  EXPECT t0, 1

  TEST 4                  # U ecall delegated to S; S then ecalls to M
  MTVEC t4_mtrap
  la t0, t4_strap
  csrw stvec, t0
  li t0, 1 << 8
  csrw medeleg, t0
  csrr t1, medeleg
  bne t0, t1, fail
  ENTER_U t4_user
t4_user:
  ecall
  j fail
.balign 4
t4_strap:
  csrr s1, scause
  csrr s2, sstatus
  csrr s3, sepc
  ecall                   # from S: not delegated
.balign 4
t4_mtrap:
  csrr t0, mcause
  EXPECT t0, 9
  EXPECT s1, 8
  andi t0, s2, 1 << 8     # SPP = U
  bnez t0, fail
  la t0, t4_user
  bne s3, t0, fail
  csrw medeleg, zero

  TEST 5                  # illegal encoding: cause 2, mtval = the instruction
  MTVEC t5_trap
  .word 0xffffffff
  j fail
.balign 4
t5_trap:
  csrr t0, mcause
  EXPECT t0, 2
  csrr t0, mtval
  EXPECT t0, 0xffffffff

  TEST 6                  # unimplemented CSR: illegal, mtval has the csrr bits
  MTVEC t6_trap
t6_insn:
  csrr a0, 0x7c0
  j fail
.balign 4
t6_trap:
  csrr t0, mcause
  EXPECT t0, 2
  csrr t0, mtval
  EXPECT t0, 0x7c002573

  TEST 7                  # S reading an M CSR is illegal
  MTVEC t7_trap
  ENTER_S t7_super
t7_super:
  csrr a0, mstatus
  j fail
.balign 4
t7_trap:
  csrr t0, mcause
  EXPECT t0, 2

  TEST 8                  # mret from S is illegal; sret from U is illegal
  MTVEC t8_trap
  ENTER_S t8_super
t8_super:
  mret
  j fail
.balign 4
t8_trap:
  csrr t0, mcause
  EXPECT t0, 2
  MTVEC t8_trap2
  ENTER_U t8_user
t8_user:
  sret
  j fail
.balign 4
t8_trap2:
  csrr t0, mcause
  EXPECT t0, 2

  TEST 9                  # writing a read-only CSR is illegal
  MTVEC t9_trap
  csrw mhartid, zero
  j fail
.balign 4
t9_trap:
  csrr t0, mcause
  EXPECT t0, 2

  TEST 10                 # counters from U need mcounteren and scounteren
  MTVEC t10_trap
  csrw mcounteren, zero
  ENTER_U t10_user
t10_user:
  rdcycle a0
  j fail
.balign 4
t10_trap:
  csrr t0, mcause
  EXPECT t0, 2
  li t0, 7
  csrw mcounteren, t0
  csrw scounteren, t0
  MTVEC t10_trap2
  ENTER_U t10_user2
t10_user2:
  rdtime a0
  rdinstret a1
  rdcycle a2
  ecall
.balign 4
t10_trap2:
  csrr t0, mcause
  EXPECT t0, 8
  beqz a1, fail

  TEST 11                 # load / store / fetch access faults with tval
  MTVEC t11_load
  li a0, 0x50000000
  ld a1, 0(a0)
  j fail
.balign 4
t11_load:
  csrr t0, mcause
  EXPECT t0, 5
  csrr t0, mtval
  bne t0, a0, fail
  MTVEC t11_store
  sw a1, 8(a0)
  j fail
.balign 4
t11_store:
  csrr t0, mcause
  EXPECT t0, 7
  csrr t0, mtval
  addi a1, a0, 8
  bne t0, a1, fail
  MTVEC t11_fetch
  jr a0
.balign 4
t11_fetch:
  csrr t0, mcause
  EXPECT t0, 1
  csrr t0, mepc
  bne t0, a0, fail

  TEST 12                 # ebreak: cause 3
  MTVEC t12_trap
  ebreak
  j fail
.balign 4
t12_trap:
  csrr t0, mcause
  EXPECT t0, 3

  TEST 13                 # machine software interrupt through set_irq_line, direct mode
  MTVEC t13_trap
  li t0, 1 << 3
  csrw mie, t0
  IRQ 3, 1
  csrr t0, mip
  andi t0, t0, 1 << 3
  beqz t0, fail           # pending, but mstatus.MIE = 0: not taken yet
  csrsi mstatus, 1 << 3   # MIE = 1: taken right after this instruction
  j fail
.balign 4
t13_trap:
  csrr t0, mcause
  EXPECT t0, 0x8000000000000003
  csrr t0, mstatus
  andi t0, t0, 1 << 3     # MIE cleared on entry
  bnez t0, fail
  IRQ 3, 0
  csrr t0, mip
  andi t0, t0, 1 << 3
  bnez t0, fail

  TEST 14                 # vectored mtvec: timer interrupt lands at base + 4 * 7
  la t0, vectors
  ori t0, t0, 1
  csrw mtvec, t0
  li t0, 1 << 7
  csrw mie, t0
  IRQ 7, 1
  csrsi mstatus, 1 << 3
  j fail
t14_handler:
  csrr t0, mcause
  EXPECT t0, 0x8000000000000007
  IRQ 7, 0

  TEST 15                 # priority: MEI before MSI before MTI
  MTVEC t15_trap
  li t0, (1 << 3) | (1 << 7) | (1 << 11)
  csrw mie, t0
  IRQ 7, 1
  IRQ 3, 1
  IRQ 11, 1
  csrsi mstatus, 1 << 3
  j fail
.balign 4
t15_trap:
  csrr t0, mcause
  EXPECT t0, 0x800000000000000b
  IRQ 3, 0
  IRQ 7, 0
  IRQ 11, 0
  csrw mie, zero

  TEST 16                 # supervisor external interrupt delegated to S, taken in U
  MTVEC t16_mtrap
  la t0, t16_strap
  csrw stvec, t0
  li t0, 1 << 9
  csrw mideleg, t0
  csrw mie, t0
  ENTER_U t16_user
t16_user:
  IRQ 9, 1                # the harness device is reachable from U (no translation)
1: j 1b
.balign 4
t16_strap:
  csrr t0, scause
  EXPECT t0, 0x8000000000000009
  csrr t0, sip
  andi t0, t0, 1 << 9
  beqz t0, fail
  IRQ 9, 0
  ecall
.balign 4
t16_mtrap:
  csrw mideleg, zero
  csrw mie, zero

  TEST 17                 # wfi sleeps until another thread raises MEIP (MIE = 0: no trap)
  MTVEC fail
  li t0, 1 << 11
  csrw mie, t0
  li t6, IRQ_LATER
  li t5, 11
  sd t5, 0(t6)
  rdtime s1
1: wfi
  csrr t0, mip
  srli t0, t0, 11
  andi t0, t0, 1
  beqz t0, 1b             # wfi may return early; loop until the line is up
  rdtime s2
  sub s2, s2, s1
  li t0, 100000           # >= 10 ms at 10 MHz: it really waited for the other thread
  bltu s2, t0, fail
  IRQ 11, 0
  csrw mie, zero

  TEST 18                 # Sstc: stimecmp raises STIP, delegated to S, wakes wfi in S
  MTVEC t18_mtrap
  li t0, 1ull << 63
  csrs menvcfg, t0
  li t0, 2                # mcounteren.TM lets S use stimecmp
  csrw mcounteren, t0
  la t0, t18_strap
  csrw stvec, t0
  li t0, 1 << 5
  csrw mideleg, t0
  csrw mie, t0
  ENTER_S t18_super
t18_super:
  rdtime t0
  li t1, 20000            # 2 ms
  add t0, t0, t1
  csrw stimecmp, t0
  csrsi sstatus, 1 << 1   # SIE
1: wfi
  j 1b
.balign 4
t18_strap:
  csrr t0, scause
  EXPECT t0, 0x8000000000000005
  li t0, -1
  csrw stimecmp, t0
  csrr t0, sip
  andi t0, t0, 1 << 5
  bnez t0, fail           # cleared by moving stimecmp
  ecall
.balign 4
t18_mtrap:
  csrw mideleg, zero
  csrw mie, zero

  TEST 19                 # S software interrupt set by S itself through sip
  MTVEC t19_mtrap
  la t0, t19_strap
  csrw stvec, t0
  li t0, 1 << 1
  csrw mideleg, t0
  csrw mie, t0
  ENTER_S t19_super
t19_super:
  csrsi sstatus, 1 << 1
  csrsi sip, 1 << 1
  j fail
.balign 4
t19_strap:
  csrr t0, scause
  EXPECT t0, 0x8000000000000001
  csrci sip, 1 << 1
  ecall
.balign 4
t19_mtrap:

  TEST 20                 # csrs/csrc on mip must not latch the external SEIP line into the
  IRQ 9, 1                # software SEIP bit (the bug that livelocked Linux under OpenSBI)
  csrr t0, mip
  srli t0, t0, 9
  andi t0, t0, 1
  beqz t0, fail           # the line shows in mip
  csrsi mip, 1 << 1       # RMW of mip while the line is high (SSIP set)
  csrci mip, 1 << 1
  IRQ 9, 0
  csrr t0, mip
  srli t0, t0, 9
  andi t0, t0, 1
  bnez t0, fail           # gone with the line
  li t0, 1 << 9           # the software bit itself still works
  csrs mip, t0
  csrr t1, mip
  and t1, t1, t0
  beqz t1, fail
  csrc mip, t0

  PASS
.balign 4
fail:
  FAIL

.balign 64
.option push
.option norvc
vectors:
  .rept 7
  j fail
  .endr
  j t14_handler
  .rept 8
  j fail
  .endr
.option pop
