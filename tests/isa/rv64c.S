# RV64C: every compressed instruction the assembler can emit for RV64, written with explicit c.
# mnemonics so each really is 16 bits, mixed with 32-bit code (including a 32-bit instruction at a
# 2-byte-aligned address).
.include "macros.inc"
.section .text.init
.globl _start
_start:
  MTVEC fail
  la sp, stack_top

  TEST 1
  c.li a0, 31
  EXPECT a0, 31
  c.li a0, -32
  EXPECT a0, -32
  c.lui a1, 0x1f
  EXPECT a1, 0x1f000
  c.lui a1, 0xfffe0        # negative: sign-extended
  EXPECT a1, 0xfffffffffffe0000
  c.addi a0, 5
  EXPECT a0, -27
  c.addiw a0, 1
  EXPECT a0, -26
  c.addi16sp sp, -64
  c.addi16sp sp, 64
  la t0, stack_top
  bne sp, t0, fail
  c.addi4spn a2, sp, 8
  addi t0, t0, 8
  bne a2, t0, fail

  TEST 2
  c.li a0, 12
  c.li a1, 5
  c.mv a2, a0
  EXPECT a2, 12
  c.add a2, a1
  EXPECT a2, 17
  c.sub a2, a1
  EXPECT a2, 12
  c.xor a2, a1
  EXPECT a2, 9
  c.or a2, a1
  EXPECT a2, 13
  c.and a2, a1
  EXPECT a2, 5
  c.li a3, -1
  c.addw a3, a1
  EXPECT a3, 4
  c.subw a3, a1
  EXPECT a3, -1
  c.andi a3, 0x1c
  EXPECT a3, 0x1c
  c.slli a3, 60
  EXPECT a3, 0xc000000000000000
  c.srai a3, 62
  EXPECT a3, -1
  c.srli a3, 60
  EXPECT a3, 0xf

  TEST 3                   # loads and stores, sp-relative and register-relative
  li a0, 0x1122334455667788
  c.sdsp a0, 16(sp)
  c.ldsp a1, 16(sp)
  bne a0, a1, fail
  c.swsp a0, 24(sp)
  c.lwsp a1, 24(sp)
  EXPECT a1, 0x55667788
  mv s0, sp
  c.sd a0, 32(s0)
  c.ld a2, 32(s0)
  bne a0, a2, fail
  c.sw a0, 40(s0)
  c.lw a2, 40(s0)
  EXPECT a2, 0x55667788

  TEST 4                   # jumps and branches
  c.li a0, 0
  c.beqz a0, 1f
  j fail
1: c.bnez a0, fail
  c.li a0, 1
  c.bnez a0, 2f
  j fail
2: c.j 3f
  j fail
3: la t0, 4f
  c.jalr t0
5: j 6f
4: la t1, 5b
  bne ra, t1, fail
  c.jr ra
6:

  TEST 5                   # a 32-bit instruction at an address that is only 2-byte aligned
  .balign 4
  c.nop
  addi a0, zero, 77        # starts at 4n+2
  EXPECT a0, 77

  TEST 6                   # c.ebreak traps as a breakpoint, mepc points at it, epc+2 resumes
  MTVEC brk
  c.ebreak
  j after_brk
.balign 4
brk:
  csrr t0, mcause
  EXPECT t0, 3
  csrr t0, mepc
  addi t0, t0, 2
  csrw mepc, t0
  mret
after_brk:
  MTVEC fail

  TEST 7                   # c.fldsp/c.fsdsp/c.fld/c.fsd
  li t0, 1 << 13           # mstatus.FS = Initial
  csrs mstatus, t0
  li a0, 0x400921fb54442d18
  c.sdsp a0, 48(sp)
  c.fldsp fa0, 48(sp)
  c.fsdsp fa0, 56(sp)
  c.ld a1, 56(s0)
  bne a0, a1, fail
  c.fld fa1, 48(s0)
  c.fsd fa1, 64(s0)
  ld a2, 64(s0)
  bne a0, a2, fail

  TEST 8                   # illegal compressed (all zero): tval holds the 16 bits
  MTVEC illegal
  .hword 0
  j fail
.balign 4
illegal:
  csrr t0, mcause
  EXPECT t0, 2
  csrr t0, mtval
  EXPECT t0, 0

  PASS
.balign 4
fail:
  FAIL

.data
.align 4
stack: .fill 256, 1, 0
stack_top: .fill 256, 1, 0
