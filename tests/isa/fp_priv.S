# The privileged side of F/D: mstatus.FS (Off traps, writes make it Dirty, SD mirrors it),
# fcsr/frm/fflags views, reserved rounding modes (static and dynamic) are illegal, NaN boxing on
# flw/fsw/fmv, flags accrue.
.include "macros.inc"
.section .text.init
.globl _start
_start:
  MTVEC fail

  TEST 1                   # FS = Off: FP instructions and fcsr are illegal
  li t0, 3 << 13
  csrc mstatus, t0
  MTVEC t1a
  fadd.d fa0, fa0, fa0
  j fail
.balign 4
t1a:
  csrr t0, mcause
  EXPECT t0, 2
  MTVEC t1b
  csrr a0, fcsr
  j fail
.balign 4
t1b:
  csrr t0, mcause
  EXPECT t0, 2
  MTVEC fail

  TEST 2                   # FS = Initial; an FP write makes it Dirty and sets SD
  li t0, 1 << 13
  csrs mstatus, t0
  csrr t1, mstatus
  bltz t1, fail            # SD clear while not dirty
  li t0, 0x3ff0000000000000
  fmv.d.x fa0, t0
  csrr t1, mstatus
  srli t2, t1, 13
  andi t2, t2, 3
  EXPECT t2, 3
  bgez t1, fail            # SD set
  csrr t1, sstatus
  bgez t1, fail            # visible in sstatus too

  TEST 3                   # fcsr = frm << 5 | fflags
  csrwi fflags, 0x1f
  csrwi frm, 3
  csrr a0, fcsr
  EXPECT a0, 0x7f
  csrw fcsr, zero
  csrr a0, frm
  EXPECT a0, 0

  TEST 4                   # flags accrue across instructions
  li t0, 0x3ff0000000000000
  fmv.d.x fa0, t0
  fmv.d.x fa1, zero
  fdiv.d fa2, fa0, fa1     # DZ
  li t0, 3
  fcvt.d.l fa3, t0
  fdiv.d fa3, fa0, fa3     # NX
  csrr a0, fflags
  EXPECT a0, 0x9

  TEST 5                   # reserved static rounding mode 5 is illegal
  MTVEC t5
  .word 0x02b5d553         # fadd.d fa0, fa1, fa1 with rm = 5
  j fail
.balign 4
t5:
  csrr t0, mcause
  EXPECT t0, 2
  MTVEC fail

  TEST 6                   # dynamic rounding with frm = 5 is illegal at execution time
  csrwi frm, 5
  MTVEC t6
  fadd.d fa0, fa1, fa1
  j fail
.balign 4
t6:
  csrwi frm, 0
  MTVEC fail

  TEST 7                   # NaN boxing: flw boxes, fsw stores raw low bits, unboxed inputs are NaN
  la s0, buf
  li t0, 0x40490fdb        # pi as float
  sw t0, 0(s0)
  flw fa0, 0(s0)
  fmv.x.d a0, fa0
  EXPECT a0, 0xffffffff40490fdb
  li t0, 0x123456783f800000
  fmv.d.x fa1, t0          # not boxed
  fsw fa1, 4(s0)
  lwu a0, 4(s0)
  EXPECT a0, 0x3f800000
  fadd.s fa2, fa1, fa1     # unboxed input reads as the canonical NaN
  fmv.x.w a0, fa2
  EXPECT a0, 0x7fc00000
  fmv.x.w a0, fa1          # fmv.x.w takes the raw low bits, sign-extended
  EXPECT a0, 0x3f800000
  li t0, 0xbf800000
  fmv.w.x fa3, t0
  fmv.x.d a0, fa3
  EXPECT a0, 0xffffffffbf800000
  fmv.x.w a0, fa3
  EXPECT a0, 0xffffffffbf800000

  TEST 8                   # fld/fsd move raw 64-bit patterns (incl. signaling NaNs, no flags)
  csrw fflags, zero
  li t0, 0x7ff0000000000001
  sd t0, 8(s0)
  fld fa4, 8(s0)
  fsd fa4, 16(s0)
  ld a0, 16(s0)
  bne a0, t0, fail
  csrr a0, fflags
  EXPECT a0, 0

  PASS
.balign 4
fail:
  FAIL

.data
.align 4
buf: .dword 0, 0, 0, 0
