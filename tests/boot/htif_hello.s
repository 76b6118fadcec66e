# Bare-metal riscv64 program for the HTIF path of `vmlaunch up`: prints a line through HTIF's console
# device (device 1, command 1), then exits through tohost with status EXIT_CODE (--defsym).
# tohost/fromhost live in their own page in RAM, as riscv-tests put them; the machine finds them in
# the ELF symbol table.
  .section .text.init, "ax"
  .globl _start
_start:
  la a0, message
  la t1, tohost
  la t3, fromhost
  li t4, 0x0101000000000000     # device 1 (console), command 1 (putchar)
next:
  lbu a1, 0(a0)
  beqz a1, done
  or t0, t4, a1
  sd t0, 0(t1)
wait:
  ld t2, 0(t1)                  # the host clears tohost once it has handled the command
  bnez t2, wait
  sd zero, 0(t3)                # and acknowledges in fromhost
  addi a0, a0, 1
  j next
done:
  li t0, (EXIT_CODE << 1) | 1
  sd t0, 0(t1)
hang:
  wfi
  j hang

  .section .rodata
message:
  .asciz "hello from htif\n"

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .align 6
  .globl fromhost
fromhost: .dword 0
