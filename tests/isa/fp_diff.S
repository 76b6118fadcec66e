# F/D differential program: runs every F/D computational instruction over a table of inputs
# (normal, subnormal, zero, infinite, quiet and signaling NaN, integer edge values, badly
# NaN-boxed singles) under each rounding mode 0..4 (dynamic frm), recording for each run the raw
# FP result, the integer result and fflags. Built twice: bare-metal for our interpreter (BARE:
# the harness copies the buffer out) and as a Linux program for qemu-riscv64 (writes it to
# stdout). isa_test compares the two byte for byte.
.include "macros.inc"
.equ NSMALL, 12
.section .text.init
.globl _start
_start:
.ifdef BARE
  li t0, 1 << 13           # mstatus.FS = Initial
  csrs mstatus, t0
.endif
  la s0, results
  la s1, ops
  la s2, ops_end
op_loop:
  beq s1, s2, done
  ld s3, 0(s1)             # routine
  ld s4, 8(s1)             # arity
  li s5, 0                 # rounding mode
rm_loop:
  fsrm s5
  la t0, nin
  ld s6, 0(t0)
  li s7, 1
  li s8, 1
  li t0, 3
  bne s4, t0, 1f
  li s6, NSMALL
  li s7, NSMALL
  li s8, NSMALL
  j 2f
1: li t0, 2
  bne s4, t0, 2f
  la t0, nin
  ld s7, 0(t0)
2: li s9, 0
i_loop:
  li s10, 0
j_loop:
  li s11, 0
k_loop:
  la t0, inputs
  slli t1, s9, 3
  add t1, t0, t1
  ld a0, 0(t1)
  fmv.d.x fa0, a0
  slli t1, s10, 3
  add t1, t0, t1
  ld t2, 0(t1)
  fmv.d.x fa1, t2
  slli t1, s11, 3
  add t1, t0, t1
  ld t2, 0(t1)
  fmv.d.x fa2, t2
  fmv.d.x fa3, zero
  li a1, 0
  fsflags zero
  jalr ra, 0(s3)
  frflags t0
  fmv.x.d t1, fa3
  sd t1, 0(s0)
  sd a1, 8(s0)
  sd t0, 16(s0)
  addi s0, s0, 24
  addi s11, s11, 1
  blt s11, s8, k_loop
  addi s10, s10, 1
  blt s10, s7, j_loop
  addi s9, s9, 1
  blt s9, s6, i_loop
  addi s5, s5, 1
  li t0, 5
  blt s5, t0, rm_loop
  addi s1, s1, 16
  j op_loop
done:
  la t0, results
  sub t1, s0, t0
.ifdef BARE
  li t2, DUMP
  sd t0, 0(t2)
  sd t1, 8(t2)
  PASS
fail:
  FAIL
.else
  mv s1, t0
  mv s2, t1
3: li a0, 1
  mv a1, s1
  mv a2, s2
  li a7, 64                # write
  ecall
  blez a0, 4f
  add s1, s1, a0
  sub s2, s2, a0
  bnez s2, 3b
  li a0, 0
  li a7, 93                # exit
  ecall
4: li a0, 1
  li a7, 93
  ecall
.endif

# One routine per instruction: inputs fa0/fa1/fa2 (a0 = fa0's bits for int sources), outputs fa3
# and a1.
.macro R name, insn:vararg
\name: \insn
  ret
.endm
R o_fadd_s, fadd.s fa3, fa0, fa1
R o_fsub_s, fsub.s fa3, fa0, fa1
R o_fmul_s, fmul.s fa3, fa0, fa1
R o_fdiv_s, fdiv.s fa3, fa0, fa1
R o_fadd_d, fadd.d fa3, fa0, fa1
R o_fsub_d, fsub.d fa3, fa0, fa1
R o_fmul_d, fmul.d fa3, fa0, fa1
R o_fdiv_d, fdiv.d fa3, fa0, fa1
R o_fmin_s, fmin.s fa3, fa0, fa1
R o_fmax_s, fmax.s fa3, fa0, fa1
R o_fmin_d, fmin.d fa3, fa0, fa1
R o_fmax_d, fmax.d fa3, fa0, fa1
R o_feq_s, feq.s a1, fa0, fa1
R o_flt_s, flt.s a1, fa0, fa1
R o_fle_s, fle.s a1, fa0, fa1
R o_feq_d, feq.d a1, fa0, fa1
R o_flt_d, flt.d a1, fa0, fa1
R o_fle_d, fle.d a1, fa0, fa1
R o_fsgnj_s, fsgnj.s fa3, fa0, fa1
R o_fsgnjn_s, fsgnjn.s fa3, fa0, fa1
R o_fsgnjx_s, fsgnjx.s fa3, fa0, fa1
R o_fsgnj_d, fsgnj.d fa3, fa0, fa1
R o_fsgnjn_d, fsgnjn.d fa3, fa0, fa1
R o_fsgnjx_d, fsgnjx.d fa3, fa0, fa1
R o_fadd_s_rtz, fadd.s fa3, fa0, fa1, rtz
R o_fmul_d_rmm, fmul.d fa3, fa0, fa1, rmm
R o_fsqrt_s, fsqrt.s fa3, fa0
R o_fsqrt_d, fsqrt.d fa3, fa0
R o_fclass_s, fclass.s a1, fa0
R o_fclass_d, fclass.d a1, fa0
R o_fcvt_w_s, fcvt.w.s a1, fa0
R o_fcvt_wu_s, fcvt.wu.s a1, fa0
R o_fcvt_l_s, fcvt.l.s a1, fa0
R o_fcvt_lu_s, fcvt.lu.s a1, fa0
R o_fcvt_w_d, fcvt.w.d a1, fa0
R o_fcvt_wu_d, fcvt.wu.d a1, fa0
R o_fcvt_l_d, fcvt.l.d a1, fa0
R o_fcvt_lu_d, fcvt.lu.d a1, fa0
R o_fcvt_w_d_rmm, fcvt.w.d a1, fa0, rmm
R o_fcvt_s_w, fcvt.s.w fa3, a0
R o_fcvt_s_wu, fcvt.s.wu fa3, a0
R o_fcvt_s_l, fcvt.s.l fa3, a0
R o_fcvt_s_lu, fcvt.s.lu fa3, a0
R o_fcvt_d_w, fcvt.d.w fa3, a0
R o_fcvt_d_wu, fcvt.d.wu fa3, a0
R o_fcvt_d_l, fcvt.d.l fa3, a0
R o_fcvt_d_lu, fcvt.d.lu fa3, a0
R o_fcvt_s_d, fcvt.s.d fa3, fa0
R o_fcvt_d_s, fcvt.d.s fa3, fa0
R o_fmv_x_w, fmv.x.w a1, fa0
R o_fmv_w_x, fmv.w.x fa3, a0
R o_fmadd_s, fmadd.s fa3, fa0, fa1, fa2
R o_fmsub_s, fmsub.s fa3, fa0, fa1, fa2
R o_fnmsub_s, fnmsub.s fa3, fa0, fa1, fa2
R o_fnmadd_s, fnmadd.s fa3, fa0, fa1, fa2
R o_fmadd_d, fmadd.d fa3, fa0, fa1, fa2
R o_fmsub_d, fmsub.d fa3, fa0, fa1, fa2
R o_fnmsub_d, fnmsub.d fa3, fa0, fa1, fa2
R o_fnmadd_d, fnmadd.d fa3, fa0, fa1, fa2

.data
.align 3
ops:
  .dword o_fadd_s, 2, o_fsub_s, 2, o_fmul_s, 2, o_fdiv_s, 2
  .dword o_fadd_d, 2, o_fsub_d, 2, o_fmul_d, 2, o_fdiv_d, 2
  .dword o_fmin_s, 2, o_fmax_s, 2, o_fmin_d, 2, o_fmax_d, 2
  .dword o_feq_s, 2, o_flt_s, 2, o_fle_s, 2, o_feq_d, 2, o_flt_d, 2, o_fle_d, 2
  .dword o_fsgnj_s, 2, o_fsgnjn_s, 2, o_fsgnjx_s, 2, o_fsgnj_d, 2, o_fsgnjn_d, 2, o_fsgnjx_d, 2
  .dword o_fadd_s_rtz, 2, o_fmul_d_rmm, 2
  .dword o_fsqrt_s, 1, o_fsqrt_d, 1, o_fclass_s, 1, o_fclass_d, 1
  .dword o_fcvt_w_s, 1, o_fcvt_wu_s, 1, o_fcvt_l_s, 1, o_fcvt_lu_s, 1
  .dword o_fcvt_w_d, 1, o_fcvt_wu_d, 1, o_fcvt_l_d, 1, o_fcvt_lu_d, 1, o_fcvt_w_d_rmm, 1
  .dword o_fcvt_s_w, 1, o_fcvt_s_wu, 1, o_fcvt_s_l, 1, o_fcvt_s_lu, 1
  .dword o_fcvt_d_w, 1, o_fcvt_d_wu, 1, o_fcvt_d_l, 1, o_fcvt_d_lu, 1
  .dword o_fcvt_s_d, 1, o_fcvt_d_s, 1, o_fmv_x_w, 1, o_fmv_w_x, 1
  .dword o_fmadd_s, 3, o_fmsub_s, 3, o_fnmsub_s, 3, o_fnmadd_s, 3
  .dword o_fmadd_d, 3, o_fmsub_d, 3, o_fnmsub_d, 3, o_fnmadd_d, 3
ops_end:

# The first NSMALL inputs feed the three-operand instructions: mixed singles and doubles.
inputs:
  .dword 0xffffffff3f800000  # 1.0f
  .dword 0x3ff0000000000000  # 1.0
  .dword 0xffffffff33800000  # 2^-24 f (half an ulp of 1.0f)
  .dword 0x3ca0000000000000  # 2^-53 (half an ulp of 1.0)
  .dword 0xffffffffbfc00000  # -1.5f
  .dword 0xbff8000000000000  # -1.5
  .dword 0xffffffff7f7fffff  # max float
  .dword 0x7fefffffffffffff  # max double
  .dword 0xffffffff00000001  # min subnormal float
  .dword 0x0000000000000001  # min subnormal double
  .dword 0xffffffff7f800001  # sNaN f
  .dword 0x7ff0000000000000  # inf
  .dword 0xffffffff40400000  # 3.0f
  .dword 0x3fd5555555555555  # 1/3
  .dword 0xffffffff3dcccccd  # 0.1f
  .dword 0x7e37e43c8800759c  # 1e300
  .dword 0xffffffff80000000  # -0.0f
  .dword 0x8000000000000000  # -0.0
  .dword 0xffffffff7f800000  # inf f
  .dword 0xffffffffff800000  # -inf f
  .dword 0xfff0000000000000  # -inf
  .dword 0xffffffff7fc00000  # qNaN f
  .dword 0x7ff8000000000000  # qNaN
  .dword 0x7ff0000000000001  # sNaN
  .dword 0xffffffff4f000000  # 2^31 f
  .dword 0xffffffffcf000000  # -2^31 f
  .dword 0xffffffff5f800000  # 2^64 f
  .dword 0x4004000000000000  # 2.5
  .dword 0xc3e0000000000000  # -2^63
  .dword 0x43f0000000000000  # 2^64
  .dword 0x41efffffffff0000  # 4294967295.5
  .dword 0xc1e0000000100000  # just below -2^31
  .dword 0x0010000000000000  # min normal double
  .dword 0xffffffff00800000  # min normal float
  .dword 0xffffffff3f000001  # 0.5f + ulp
  .dword 0x3810000000000000  # 2^-126 as double: narrows to min normal float
  .dword 0x380fffffffffffff  # just below: narrowing rounds around the float subnormal edge
  .dword 0x000000003f800000  # badly boxed 1.0f (upper bits not all ones)
  .dword 0x7fffffff3f800000  # badly boxed too
  .dword 0x0000000000000007  # small integers and integer edges (for int -> float)
  .dword 0xffffffffffffffff
  .dword 0x0000000001000001  # 2^24 + 1: a tie for float
  .dword 0x8000000000000001
  .dword 0x0020000000000001  # 2^53 + 1: a tie for double
  .dword 0x000000007fffffff
inputs_end:
nin: .dword (inputs_end - inputs) / 8

.bss
.align 4
results: .zero 8 << 20
