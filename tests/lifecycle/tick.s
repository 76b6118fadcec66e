# Bare-metal riscv64 guest for lifecycle tests: prints "tick N" on the ns16550 UART about every
# DELAY loop iterations, forever, so a test can see a detached machine keep running (and its console
# log keep growing) without booting Linux. N counts 0..9 and wraps.
  .section .text.init, "ax"
  .globl _start
_start:
  li s0, 0x10000000             # UART: THR at +0, LSR at +5 (bit 5: transmitter empty)
  li s1, 0                      # tick number
loop:
  la a0, message
print:
  lbu a1, 0(a0)
  beqz a1, number
  call putc
  addi a0, a0, 1
  j print
number:
  addi a1, s1, '0'
  call putc
  li a1, '\n'
  call putc
  addi s1, s1, 1
  li t0, 10
  blt s1, t0, delay
  li s1, 0
delay:
  li t0, 2000000
spin:
  addi t0, t0, -1
  bnez t0, spin
  j loop

putc:
  lbu t1, 5(s0)
  andi t1, t1, 0x20
  beqz t1, putc
  sb a1, 0(s0)
  ret

  .section .rodata
message:
  .asciz "tick "

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .align 6
  .globl fromhost
fromhost: .dword 0
