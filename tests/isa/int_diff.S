# Integer differential program: every register-register RV64IM instruction and every AMO over a
# table of edge-case operands, recording rd (and for AMOs the memory word after). Built bare-metal
# for our interpreter and as a Linux program for qemu-riscv64; isa_test compares the two.
.include "macros.inc"
.section .text.init
.globl _start
_start:
  la s0, results
  la s1, ops
  la s2, ops_end
op_loop:
  beq s1, s2, done
  ld s3, 0(s1)
  la t0, nin
  ld s6, 0(t0)
  li s9, 0
i_loop:
  li s10, 0
j_loop:
  la t0, inputs
  slli t1, s9, 3
  add t1, t0, t1
  ld a0, 0(t1)
  slli t1, s10, 3
  add t1, t0, t1
  ld a1, 0(t1)
  la a3, word
  sd a0, 0(a3)             # AMOs operate on word = a0 with source a1
  li a2, 0
  jalr ra, 0(s3)
  sd a2, 0(s0)
  la a3, word
  ld t0, 0(a3)
  sd t0, 8(s0)
  addi s0, s0, 16
  addi s10, s10, 1
  blt s10, s6, j_loop
  addi s9, s9, 1
  blt s9, s6, i_loop
  addi s1, s1, 8
  j op_loop
done:
  la t0, results
  sub t1, s0, t0
.ifdef BARE
  li t2, DUMP
  sd t0, 0(t2)
  sd t1, 8(t2)
  PASS
.balign 4
fail:
  FAIL
.else
  mv s1, t0
  mv s2, t1
3: li a0, 1
  mv a1, s1
  mv a2, s2
  li a7, 64
  ecall
  blez a0, 4f
  add s1, s1, a0
  sub s2, s2, a0
  bnez s2, 3b
  li a0, 0
  li a7, 93
  ecall
4: li a0, 1
  li a7, 93
  ecall
.endif

.macro R name, insn:vararg
\name: \insn
  ret
.endm
R o_add, add a2, a0, a1
R o_sub, sub a2, a0, a1
R o_sll, sll a2, a0, a1
R o_srl, srl a2, a0, a1
R o_sra, sra a2, a0, a1
R o_slt, slt a2, a0, a1
R o_sltu, sltu a2, a0, a1
R o_xor, xor a2, a0, a1
R o_or, or a2, a0, a1
R o_and, and a2, a0, a1
R o_addw, addw a2, a0, a1
R o_subw, subw a2, a0, a1
R o_sllw, sllw a2, a0, a1
R o_srlw, srlw a2, a0, a1
R o_sraw, sraw a2, a0, a1
R o_mul, mul a2, a0, a1
R o_mulh, mulh a2, a0, a1
R o_mulhsu, mulhsu a2, a0, a1
R o_mulhu, mulhu a2, a0, a1
R o_div, div a2, a0, a1
R o_divu, divu a2, a0, a1
R o_rem, rem a2, a0, a1
R o_remu, remu a2, a0, a1
R o_mulw, mulw a2, a0, a1
R o_divw, divw a2, a0, a1
R o_divuw, divuw a2, a0, a1
R o_remw, remw a2, a0, a1
R o_remuw, remuw a2, a0, a1
R o_amoswap_d, amoswap.d a2, a1, (a3)
R o_amoadd_d, amoadd.d a2, a1, (a3)
R o_amoxor_d, amoxor.d a2, a1, (a3)
R o_amoand_d, amoand.d a2, a1, (a3)
R o_amoor_d, amoor.d a2, a1, (a3)
R o_amomin_d, amomin.d a2, a1, (a3)
R o_amomax_d, amomax.d a2, a1, (a3)
R o_amominu_d, amominu.d a2, a1, (a3)
R o_amomaxu_d, amomaxu.d a2, a1, (a3)
R o_amoswap_w, amoswap.w a2, a1, (a3)
R o_amoadd_w, amoadd.w a2, a1, (a3)
R o_amoxor_w, amoxor.w a2, a1, (a3)
R o_amoand_w, amoand.w a2, a1, (a3)
R o_amoor_w, amoor.w a2, a1, (a3)
R o_amomin_w, amomin.w a2, a1, (a3)
R o_amomax_w, amomax.w a2, a1, (a3)
R o_amominu_w, amominu.w a2, a1, (a3)
R o_amomaxu_w, amomaxu.w a2, a1, (a3)

.data
.align 3
ops:
  .dword o_add, o_sub, o_sll, o_srl, o_sra, o_slt, o_sltu, o_xor, o_or, o_and
  .dword o_addw, o_subw, o_sllw, o_srlw, o_sraw
  .dword o_mul, o_mulh, o_mulhsu, o_mulhu, o_div, o_divu, o_rem, o_remu
  .dword o_mulw, o_divw, o_divuw, o_remw, o_remuw
  .dword o_amoswap_d, o_amoadd_d, o_amoxor_d, o_amoand_d, o_amoor_d
  .dword o_amomin_d, o_amomax_d, o_amominu_d, o_amomaxu_d
  .dword o_amoswap_w, o_amoadd_w, o_amoxor_w, o_amoand_w, o_amoor_w
  .dword o_amomin_w, o_amomax_w, o_amominu_w, o_amomaxu_w
ops_end:
inputs:
  .dword 0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 65
  .dword -1, -2, -7, -31, -64
  .dword 0x7fffffffffffffff, 0x8000000000000000, 0x8000000000000001
  .dword 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 0xffffffff80000000, 0xffffffff7fffffff
  .dword 0x0123456789abcdef, 0xfedcba9876543210, 0x5555555555555555, 0xaaaaaaaaaaaaaaaa
  .dword 0x00000000ffff0000, 0xdeadbeefcafef00d
inputs_end:
nin: .dword (inputs_end - inputs) / 8
.align 3
word: .dword 0

.bss
.align 4
results: .zero 2 << 20
