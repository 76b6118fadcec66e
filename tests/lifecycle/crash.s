# Bare-metal riscv64 guest for the lifecycle policies: prints "boot" on the UART, then either resets
# the machine (sifive_test 0x7777) or reports a panic through pvpanic-mmio (write 1) and spins, as a
# panicked kernel does. Which one: a0 is the hart id, so the choice is built in: RESET selects.
  .section .text.init, "ax"
  .globl _start
_start:
  li s0, 0x10000000             # UART THR
  li a1, 'b'
  sb a1, 0(s0)
  li a1, 'o'
  sb a1, 0(s0)
  sb a1, 0(s0)
  li a1, 't'
  sb a1, 0(s0)
  li a1, '\n'
  sb a1, 0(s0)
  li t0, 2000000                # a moment, so the console shows each boot before the next
spin:
  addi t0, t0, -1
  bnez t0, spin
.ifdef RESET
  li t0, 0x100000               # sifive_test: 0x7777 = reset
  li t1, 0x7777
  sw t1, 0(t0)
.else
  li t0, 0x102000               # pvpanic-mmio: bit 0 = the guest panicked
  li t1, 1
  sb t1, 0(t0)
.endif
hang:
  j hang
