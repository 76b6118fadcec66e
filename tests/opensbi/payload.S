# S-mode payload started by Debian's OpenSBI fw_jump (a0 = hart id, a1 = device tree). It checks
# the firmware services a kernel relies on, all of which exercise our M/S machinery inside OpenSBI:
# SBI probe, the timer (Sstc or OpenSBI's MTIP -> STIP path), IPIs, HSM hart start on hart 1,
# remote fence.i, FP enable from S, then prints a verdict and powers off through SRST.
.equ EID_BASE, 0x10
.equ EID_TIME, 0x54494D45
.equ EID_IPI, 0x735049
.equ EID_HSM, 0x48534D
.equ EID_RFNC, 0x52464E43
.equ EID_SRST, 0x53525354

.macro SBI eid, fid
  li a7, \eid
  li a6, \fid
  ecall
.endm

.macro PUTS label
  la s10, \label
1: lbu a0, 0(s10)
  beqz a0, 2f
  li a7, 1                 # legacy console_putchar
  ecall
  addi s10, s10, 1
  j 1b
2:
.endm

.section .text
.globl _start
_start:
  mv s0, a0                # our hart id: either hart may win OpenSBI's boot lottery
  la sp, stack_top
  la t0, strap
  csrw stvec, t0
  PUTS hello

  li gp, 1                 # SBI probe: TIME extension present
  li a0, EID_TIME
  SBI EID_BASE, 3
  bnez a0, fail
  beqz a1, fail

  li gp, 2                 # timer interrupt through SBI set_timer
  li t0, 1 << 5
  csrs sie, t0
  li s1, 0
  rdtime a0
  li t0, 50000             # 5 ms
  add a0, a0, t0
  SBI EID_TIME, 0
  csrsi sstatus, 2
1: wfi
  beqz s1, 1b
  csrci sstatus, 2

  li gp, 3                 # IPI to ourselves arrives as a supervisor software interrupt
  li t0, 1 << 1
  csrs sie, t0
  li s2, 0
  li a0, 1
  sll a0, a0, s0           # mask: this hart only
  li a1, 0
  SBI EID_IPI, 0
  bnez a0, fail
  csrsi sstatus, 2
1: wfi
  beqz s2, 1b
  csrci sstatus, 2

  li gp, 4                 # HSM: start the other hart, which reports back through `flag`
  xori a0, s0, 1
  la a1, secondary
  li a2, 0x1234
  SBI EID_HSM, 0
  bnez a0, fail
  la t0, flag
1: ld t1, 0(t0)
  beqz t1, 1b
  li t2, 0x1235
  bne t1, t2, fail

  li gp, 5                 # remote fence.i on both harts
  li a0, 3
  li a1, 0
  SBI EID_RFNC, 0
  bnez a0, fail

  li gp, 6                 # FP usable from S once sstatus.FS is set
  li t0, 1 << 13
  csrs sstatus, t0
  li t0, 0x4000000000000000  # 2.0
  fmv.d.x fa0, t0
  fmul.d fa1, fa0, fa0
  fmv.x.d t1, fa1
  li t2, 0x4010000000000000  # 4.0
  bne t1, t2, fail

  li gp, 7                 # OpenSBI's PMP keeps S out of the firmware: access fault, redirected to S
  li s3, 0
  la s11, 1f
  li t0, 0x80000000
  ld t1, 0(t0)
  j fail
1: li t0, 5
  bne s3, t0, fail

  PUTS all_ok
  li a0, 0                 # shutdown, no reason
  li a1, 0
  SBI EID_SRST, 0
1: j 1b

fail:
  PUTS failed
  addi a0, gp, '0'
  li a7, 1
  ecall
  li a0, 0
  li a1, 1                 # system failure
  SBI EID_SRST, 0
1: j 1b

.balign 4
strap:
  csrr t0, scause
  bgez t0, exception
  slli t0, t0, 1
  srli t0, t0, 1
  li t1, 5
  beq t0, t1, timer
  li t1, 1
  beq t0, t1, software
  j fail
timer:
  li s1, 1
  li a0, -1                # no further timer
  SBI EID_TIME, 0
  sret
software:
  li s2, 1
  li t0, 1 << 1
  csrc sip, t0
  sret

exception:                 # only the load access fault of check 7 is expected
  li t1, 5
  bne t0, t1, fail
  mv s3, t0
  csrw sepc, s11
  sret

secondary:                 # the other hart: a0 = hart id, a1 = opaque
  addi a1, a1, 1
  la t0, flag
  sd a1, 0(t0)
1: SBI EID_HSM, 1          # hart_stop
2: wfi
  j 2b

.section .data
hello: .asciz "payload: hello from S-mode\n"
all_ok: .asciz "payload: all ok\n"
failed: .asciz "payload: FAILED at check "
.balign 8
flag: .dword 0
.balign 16
stack: .zero 4096
stack_top:
