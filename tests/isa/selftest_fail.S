# Harness self-test: fails on purpose at test 7, so the harness must report (7 << 1) | 1.
.include "macros.inc"
.section .text.init
.globl _start
_start:
  TEST 7
  j fail
  PASS
.balign 4
fail:
  FAIL
