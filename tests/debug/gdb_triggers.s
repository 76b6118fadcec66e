# Bare-metal riscv64 program for tests/debug/gdb_htif_test.sh: stores a counter three times (gdb
# watches it) while the program's own debug trigger (Sdtrig: an mcontrol execute trigger on
# `guarded`) raises one breakpoint exception, which its handler counts and disarms. Exit status
# through HTIF: 0 when the handler ran exactly once with mcause 3 and mepc/mtval at `guarded`, 1
# otherwise. gdb's hardware breakpoints and watchpoints are host-side, so they and the guest's
# trigger work together.
  .section .text.init, "ax"
  .globl _start
_start:
  la t0, trap
  csrw mtvec, t0
  la t0, guarded
  csrw tselect, zero
  csrw tdata2, t0
  li t0, (2 << 60) | (1 << 6) | 4   # mcontrol: M mode, execute
  csrw tdata1, t0
  li s0, 0                           # breakpoint exceptions taken
  li s1, 0                           # loop count
loop:
  addi s1, s1, 1
  la t1, counter
  sd s1, 0(t1)
guarded:
  nop
  li t2, 3
  blt s1, t2, loop
done:
  la t1, tohost
  li t0, 1
  bne s0, t0, failed
  sd t0, 0(t1)                       # exit 0
  j hang
failed:
  li t0, 3                           # exit 1
  sd t0, 0(t1)
hang:
  wfi
  j hang

  .balign 4
trap:
  csrr t0, mcause
  li t1, 3
  bne t0, t1, bad
  la t1, guarded
  csrr t0, mepc
  bne t0, t1, bad
  csrr t0, mtval
  bne t0, t1, bad
  addi s0, s0, 1
  li t0, 2 << 60                     # disarm; mret runs `guarded` this time
  csrw tdata1, t0
  mret
bad:
  li s0, 99
  j done

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .align 6
  .globl fromhost
fromhost: .dword 0

  .data
  .globl counter
counter: .dword 0
