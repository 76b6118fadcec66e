#include "jit/fpu.h"

#include <doctest/doctest.h>

#include <cstring>

using namespace jit::fpu;

namespace {
uint32_t f(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}
uint64_t d(double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  return u;
}
}  // namespace

TEST_CASE("fpu: exact and inexact addition set NX only when rounding") {
  uint32_t flags = 0;
  CHECK(f32_arith(Arith::kAdd, f(1.0f), f(2.0f), kRNE, &flags) == f(3.0f));
  CHECK(flags == 0);
  CHECK(f64_arith(Arith::kDiv, d(1.0), d(3.0), kRNE, &flags) == d(1.0 / 3.0));
  CHECK(flags == kNX);
}

TEST_CASE("fpu: rounding modes including RMM") {
  // 1 + 2^-24 is exactly halfway between two floats (1 and 1+2^-23).
  const uint32_t one = f(1.0f), half_ulp = f(0x1p-24f);
  uint32_t flags = 0;
  CHECK(f32_arith(Arith::kAdd, one, half_ulp, kRNE, &flags) == f(1.0f));             // ties to even
  CHECK(f32_arith(Arith::kAdd, one, half_ulp, kRMM, &flags) == f(1.0f + 0x1p-23f));  // ties away
  CHECK(f32_arith(Arith::kAdd, one, half_ulp, kRUP, &flags) == f(1.0f + 0x1p-23f));
  CHECK(f32_arith(Arith::kAdd, one, half_ulp, kRDN, &flags) == f(1.0f));
  CHECK(f32_arith(Arith::kAdd, one, half_ulp, kRTZ, &flags) == f(1.0f));
  CHECK(flags == kNX);
  // Negative tie under RMM goes away from zero too.
  CHECK(f64_arith(Arith::kSub, d(-1.0), d(0x1p-53), kRMM, &flags) == d(-1.0 - 0x1p-52));
  // Not a tie: RMM rounds to nearest.
  CHECK(f64_arith(Arith::kAdd, d(1.0), d(0x1p-54), kRMM, &flags) == d(1.0));
  // int -> float with RMM: 2^24 + 1 is a tie between 2^24 and 2^24 + 2.
  CHECK(int_to_f32(16777217, IntKind::kL, kRMM, &flags) == f(16777218.0f));
  CHECK(int_to_f32(16777217, IntKind::kL, kRNE, &flags) == f(16777216.0f));
}

TEST_CASE("fpu: NaN results are canonical and signaling NaNs raise NV") {
  uint32_t flags = 0;
  const uint32_t snan = 0x7f800001u, qnan_payload = 0x7fc12345u;
  CHECK(f32_arith(Arith::kAdd, qnan_payload, f(1.0f), kRNE, &flags) == kCanonicalNan32);
  CHECK(flags == 0);
  CHECK(f32_arith(Arith::kMul, snan, f(1.0f), kRNE, &flags) == kCanonicalNan32);
  CHECK(flags == kNV);
  flags = 0;
  CHECK(f64_sqrt(d(-1.0), kRNE, &flags) == kCanonicalNan64);
  CHECK(flags == kNV);
  flags = 0;
  CHECK(f64_arith(Arith::kDiv, d(1.0), d(0.0), kRNE, &flags) == d(__builtin_inf()));
  CHECK(flags == kDZ);
  flags = 0;  // inf * 0 + qNaN is invalid on RISC-V
  CHECK(f64_fma(d(__builtin_inf()), d(0.0), kCanonicalNan64, false, false, kRNE, &flags) == kCanonicalNan64);
  CHECK(flags == kNV);
}

TEST_CASE("fpu: min/max follow IEEE 754-2019 minimumNumber") {
  uint32_t flags = 0;
  CHECK(f32_minmax(kCanonicalNan32, f(2.0f), false, &flags) == f(2.0f));
  CHECK(flags == 0);
  CHECK(f32_minmax(f(-0.0f), f(0.0f), false, &flags) == f(-0.0f));
  CHECK(f32_minmax(f(-0.0f), f(0.0f), true, &flags) == f(0.0f));
  CHECK(f64_minmax(0x7ff0000000000001ull, d(1.0), true, &flags) == d(1.0));
  CHECK(flags == kNV);
}

TEST_CASE("fpu: float to int conversions saturate") {
  uint32_t flags = 0;
  CHECK(f64_to_int(d(-1.5), IntKind::kW, kRNE, &flags) == static_cast<uint64_t>(-2));
  CHECK(flags == kNX);
  flags = 0;
  CHECK(f64_to_int(d(2.5), IntKind::kL, kRMM, &flags) == 3);
  CHECK(f64_to_int(d(2.5), IntKind::kL, kRNE, &flags) == 2);
  flags = 0;
  CHECK(f64_to_int(d(1e20), IntKind::kL, kRNE, &flags) == 0x7fffffffffffffffull);
  CHECK(flags == kNV);
  flags = 0;
  CHECK(f32_to_int(kCanonicalNan32, IntKind::kWu, kRNE, &flags) == ~0ull);
  CHECK(f64_to_int(d(-3.0), IntKind::kLu, kRNE, &flags) == 0);
  CHECK(f64_to_int(d(-0.25), IntKind::kWu, kRTZ, &flags) == 0);
  CHECK(f64_to_int(d(4294967295.0), IntKind::kWu, kRNE, &flags) == ~0ull);  // sign-extended 32-bit
}

TEST_CASE("fpu: compares and classify") {
  uint32_t flags = 0;
  CHECK(f32_eq(kCanonicalNan32, f(1.0f), &flags) == false);
  CHECK(flags == 0);
  CHECK(f32_lt(kCanonicalNan32, f(1.0f), &flags) == false);
  CHECK(flags == kNV);
  CHECK(f64_le(d(-0.0), d(0.0), &flags));
  CHECK(f32_classify(f(-__builtin_inff())) == 1);
  CHECK(f32_classify(0x7f800001u) == 1u << 8);
  CHECK(f64_classify(d(0x1p-1070)) == 1u << 5);
  CHECK(f64_classify(d(-0.0)) == 1u << 3);
}

TEST_CASE("fpu: narrowing conversion overflow and underflow flags") {
  uint32_t flags = 0;
  CHECK(f64_to_f32(d(1e300), kRNE, &flags) == f(__builtin_inff()));
  CHECK(flags == (kOF | kNX));
  flags = 0;
  CHECK(f64_to_f32(d(1e300), kRTZ, &flags) == 0x7f7fffffu);
  flags = 0;
  CHECK(f64_to_f32(d(1e300), kRMM, &flags) == f(__builtin_inff()));
  CHECK(flags == (kOF | kNX));
  flags = 0;
  f64_to_f32(d(1e-45), kRNE, &flags);
  CHECK(flags == (kUF | kNX));
}
