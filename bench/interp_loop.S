# The integer loop both engines run: 4 instructions per iteration (add, xor, add, branch).
# Built twice: bare-metal (BARE defined: reports through tohost) and as a Linux user program for
# qemu-riscv64 (exits through the exit syscall). ITERATIONS comes from the assembler command line.
.section .text.init
.globl _start
_start:
  li t0, 0
  li t1, ITERATIONS
  li t2, 0
  li t3, 0
loop:
  addi t0, t0, 1
  xor t2, t2, t0
  add t3, t3, t2
  bne t0, t1, loop
.ifdef BARE
  li t5, 0x40000000
  li t6, 1
  sd t6, 0(t5)
1: j 1b
.else
  li a0, 0
  li a7, 93
  ecall
.endif
