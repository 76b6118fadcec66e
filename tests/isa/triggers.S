# Debug triggers (Sdtrig): tselect/tdata1/tdata2/tdata3/tinfo, mcontrol (type 2) and mcontrol6
# (type 6) execute, load, store and AMO triggers in M, S and U mode, the breakpoint exception they
# raise before the instruction or access (mcause 3, mepc/sepc at the instruction, mtval/stval the
# pc or the first covered byte accessed), delegation to S, what M-mode may not write (dmode,
# action 1), and the match modes beyond "equal" (napot, >=).
# Assembled a second time with QEMU=1 for qemu-system-riscv64 -M spike (HTIF via ELF symbols):
# tests/isa/triggers_qemu_test.sh runs that image, so the parts QEMU 7.2 implements are checked on
# both; the .ifndef QEMU parts are where vmlaunch goes beyond QEMU 7.2 (see jit/trigger.cpp).
.include "macros.inc"
.ifdef QEMU
# QEMU's spike machine finds its HTIF through the ELF symbols tohost/fromhost (8 bytes each); the
# link puts .tohost at TOHOST (ld --section-start), since macros.inc loads it with li.
.equ TOHOST, 0x80010000
.section .tohost, "aw"
.globl tohost, fromhost
tohost:
  .dword 0
.size tohost, 8
fromhost:
  .dword 0
.size fromhost, 8
.endif

.equ MCTL, 2 << 60
.equ MCTL6, 6 << 60
.equ T_M, 1 << 6
.equ T_S, 1 << 4
.equ T_U, 1 << 3
.equ T_X, 4
.equ T_ST, 2
.equ T_LD, 1
.equ NAPOT, 1 << 7
.equ GE, 2 << 7

# tselect = sel, tdata2 = addr, tdata1 = ctl (the address first, so nothing fires at a stale one).
.macro ARM sel, ctl, addr
  li t0, \sel
  csrw tselect, t0
  la t0, \addr
  csrw tdata2, t0
  li t0, \ctl
  csrw tdata1, t0
.endm

.section .text.init
.globl _start
_start:
  MTVEC fail
  # S and U may touch all memory (QEMU 7.2 refuses S/U accesses when no PMP entry is set).
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0

  TEST 1                  # enumeration: two triggers, types 2 and 6, tdata3 reads zero
  csrw tselect, zero
  csrr t0, tselect
  EXPECT t0, 0
  li t0, 1
  csrw tselect, t0
  csrr t0, tselect
  EXPECT t0, 1
  li t0, 2
  csrw tselect, t0        # out of range: ignored
  csrr t0, tselect
  EXPECT t0, 1
  csrr t0, tinfo
  EXPECT t0, 0x44
  csrr t0, tdata1
  srli t0, t0, 60
  EXPECT t0, 2
  csrr t0, tdata3
  EXPECT t0, 0
  MTVEC mtrap

  TEST 2                  # mcontrol execute trigger in M: breakpoint before the instruction
  li s1, 0
  la s11, t2_after
  ARM 0, MCTL | T_M | T_X, t2_target
t2_target:
  li s1, 1
  j fail
t2_after:
  EXPECT s2, 3
  la t0, t2_target
  bne s3, t0, fail
.ifndef QEMU
  bne s4, t0, fail        # mtval = the pc (QEMU 7.2 leaves it 0)
.endif
  EXPECT s1, 0            # the instruction did not run
  csrr t0, tdata1         # the handler disarmed it; the other bits read back as written
  li t1, MCTL
  bne t0, t1, t2_bits
  j t2_done
t2_bits:
.ifdef QEMU
  j fail
.else
  li t1, MCTL | (63 << 53) # maskmax 63: napot ranges of any size
  bne t0, t1, fail
.endif
t2_done:

  TEST 3                  # a trigger for S and U only does not fire in M
  li s1, 0
  la s11, fail
  ARM 0, MCTL | T_S | T_U | T_X, t3_target
t3_target:
  li s1, 3
  EXPECT s1, 3
  li t0, MCTL
  csrw tdata1, t0

  TEST 4                  # mcontrol6 store trigger in M: loads and other addresses pass
  la t0, t4_data
  sd zero, 8(t0)          # the page is in the data TLBs before the trigger is armed
  ld t1, 0(t0)
  ARM 1, MCTL6 | T_M | T_ST, t4_data
  la t0, t4_data
  ld t1, 0(t0)            # a load: no match
  sd t1, 8(t0)            # the next doubleword: no match
  li t1, 0x55
  la s11, t4_after
t4_store:
  sd t1, 0(t0)
  j fail
t4_after:
  EXPECT s2, 3
  la t0, t4_store
  bne s3, t0, fail
.ifndef QEMU
  la t0, t4_data
  bne s4, t0, fail        # mtval = the address
.endif
  la t0, t4_data
  ld t1, 0(t0)
  li t2, 0x1122334455667788
  bne t1, t2, fail        # the store did not happen

  TEST 5                  # size 8 (code 5): a byte store inside the 8 bytes matches
  ARM 1, MCTL6 | T_M | T_ST | (5 << 16), t4_data
  la t0, t4_data
  la s11, t5_after
t5_store:
  sb zero, 3(t0)
  j fail
t5_after:
  EXPECT s2, 3
  la t0, t5_store
  bne s3, t0, fail
.ifndef QEMU
  la t0, t4_data + 3
  bne s4, t0, fail
.endif
  la t0, t4_data
  lbu t1, 3(t0)
  EXPECT t1, 0x55         # unchanged

  TEST 6                  # execute trigger for S only, in S, not delegated: M sees cause 3, MPP = S
  li s1, 0
  la s11, t6_after
  ARM 0, MCTL | T_S | T_X, t6_target
  ENTER_S t6_super        # the M-mode code on the way does not match
t6_super:
  addi s1, s1, 1
t6_target:
  addi s1, s1, 1
  j fail
t6_after:
  EXPECT s2, 3
  EXPECT s5, 1
  la t0, t6_target
  bne s3, t0, fail
  EXPECT s1, 1            # the first S instruction ran, the matched one did not

  TEST 7                  # mcontrol store trigger for U, delegated: S sees it; S-mode stores pass
  li t0, 1 << 3
  csrw medeleg, t0
  la t0, t7_strap
  csrw stvec, t0
  li s6, 0
  la s11, t7_after
  ARM 1, MCTL | T_U | T_ST, t4_data
  ENTER_U t7_user
t7_user:
  la t0, t4_data
  ld t1, 0(t0)            # loads do not match
t7_store:
  sw t1, 0(t0)
  j fail
.balign 4
t7_strap:
  csrr s6, scause
  csrr s7, sepc
  csrr s8, stval
  la t0, t4_data
  sw zero, 4(t0)          # in S: does not match
  ecall                   # to M (mtrap), which continues at t7_after
t7_after:
  csrw medeleg, zero
  EXPECT s2, 9            # the ecall from S
  EXPECT s6, 3
  la t0, t7_store
  bne s7, t0, fail
.ifndef QEMU
  la t0, t4_data
  bne s8, t0, fail
.endif
  la t0, t4_data
  lwu t1, 4(t0)
  EXPECT t1, 0            # the S store went through

  TEST 8                  # AMOs match load triggers (an AMO loads and stores)
  ARM 0, MCTL | T_M | T_LD, t4_data
  la t0, t4_data
  li t1, 1
  la s11, t8_after
t8_amo:
  amoadd.d t2, t1, (t0)
  j fail
t8_after:
  EXPECT s2, 3
  la t0, t8_amo
  bne s3, t0, fail

  TEST 9                  # M-mode cannot set dmode, nor action 1 (enter debug mode) without it
  csrw tselect, zero
  la t0, fail
  csrw tdata2, t0
  li t0, MCTL | (1 << 59) | (1 << 12) | T_M | T_X
  csrw tdata1, t0
  csrr t0, tdata1
  srli t1, t0, 59
  andi t1, t1, 1
  EXPECT t1, 0
  srli t1, t0, 12
  andi t1, t1, 15
  EXPECT t1, 0
  li t0, MCTL
  csrw tdata1, t0

.ifndef QEMU
  TEST 10                 # writing 0 disables the trigger (type 15), as the spec asks
  ARM 0, MCTL | T_M | T_X, t10_target
  csrw tdata1, zero
  csrr t1, tdata1
  srli t1, t1, 60
  EXPECT t1, 15
t10_target:
  nop

  TEST 11                 # napot: tdata2 = base | 7 covers 16 bytes
  la s11, t11_after
  csrw tselect, zero
  la t0, t11_data + 7
  csrw tdata2, t0
  li t0, MCTL | T_M | T_LD | NAPOT
  csrw tdata1, t0
  la t0, t11_data
  ld t1, 16(t0)           # outside: passes
t11_load:
  lw t1, 12(t0)
  j fail
t11_after:
  EXPECT s2, 3
  la t0, t11_load
  bne s3, t0, fail
  la t0, t11_data + 12
  bne s4, t0, fail

  TEST 12                 # >= on execute, U only: fires at the first U pc at or above tdata2
  li s1, 0
  la s11, t12_after
  ARM 1, MCTL6 | T_U | T_X | GE, t12_target
  ENTER_U t12_user
t12_user:
  addi s1, s1, 1
  addi s1, s1, 1
t12_target:
  addi s1, s1, 1
  j fail
t12_after:
  EXPECT s2, 3
  EXPECT s5, 0
  EXPECT s1, 2
  la t0, t12_target
  bne s3, t0, fail
.endif

  PASS
fail:
  FAIL

# M-mode trap handler: records mcause (s2), mepc (s3), mtval (s4) and the previous privilege (s5),
# disarms both triggers and continues in M at s11.
.balign 4
mtrap:
  csrr s2, mcause
  csrr s3, mepc
  csrr s4, mtval
  csrr s5, mstatus
  srli s5, s5, 11
  andi s5, s5, 3
  li t0, MCTL
  csrw tselect, zero
  csrw tdata1, t0
  li t1, 1
  csrw tselect, t1
  csrw tdata1, t0
  jr s11

.data
.balign 16
t4_data:
  .dword 0x1122334455667788
  .dword 0
.balign 32
t11_data:
  .dword 0, 0, 0, 0
