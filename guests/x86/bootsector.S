/* A 512-byte PC boot sector for the SeaBIOS tests (tests/kvm, firmware: seabios): the BIOS loads it
 * at 0x7C00 and jumps to it in real mode; it writes "boot sector: MARKER" to COM1 and powers the
 * machine off through the debug exit port 0x501 with STATUS as vmlaunch's exit status. MARKER and
 * STATUS come from the build (bootsector.sh), one image per disk of the test. */
  .code16
  .text
  .globl _start
_start:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov $message, %si
  mov $0x3f8, %dx
next:
  lodsb
  test %al, %al
  jz done
  out %al, %dx
  jmp next
done:
  mov $0x501, %dx
  mov $STATUS, %al
  out %al, %dx
halt:
  hlt
  jmp halt
message:
  .asciz "boot sector: " MARKER "\r\n"
  .org 510
  .byte 0x55, 0xaa
