// RISC-V F/D arithmetic with exact architectural results: NaN boxing is the hart's business, this
// file gives IEEE results with RISC-V's rules on top (canonical NaN results, saturating integer
// conversions, minimumNumber/maximumNumber, fflags). The host FPU does the work in the four
// rounding modes it has; RMM (round to nearest, ties away) is emulated by computing in a wider
// format with round-to-odd and rounding that exactly (see fpu.cpp).
#pragma once

#include <cstdint>

namespace jit::fpu {

// fflags bits.
inline constexpr uint32_t kNX = 1, kUF = 2, kOF = 4, kDZ = 8, kNV = 16;
// Rounding modes (frm / rm encodings).
inline constexpr int kRNE = 0, kRTZ = 1, kRDN = 2, kRUP = 3, kRMM = 4;

inline constexpr uint32_t kCanonicalNan32 = 0x7fc00000u;
inline constexpr uint64_t kCanonicalNan64 = 0x7ff8000000000000ull;

// All functions take raw IEEE bit patterns, a resolved rounding mode (0..4) and accumulate
// exception flags into *flags.
enum class Arith { kAdd, kSub, kMul, kDiv };
uint32_t f32_arith(Arith op, uint32_t a, uint32_t b, int rm, uint32_t* flags);
uint64_t f64_arith(Arith op, uint64_t a, uint64_t b, int rm, uint32_t* flags);
uint32_t f32_sqrt(uint32_t a, int rm, uint32_t* flags);
uint64_t f64_sqrt(uint64_t a, int rm, uint32_t* flags);
// a*b+c with a single rounding; negate_product / negate_addend give fmsub, fnmsub, fnmadd.
uint32_t f32_fma(uint32_t a, uint32_t b, uint32_t c, bool negate_product, bool negate_addend, int rm,
                 uint32_t* flags);
uint64_t f64_fma(uint64_t a, uint64_t b, uint64_t c, bool negate_product, bool negate_addend, int rm,
                 uint32_t* flags);

uint32_t f32_minmax(uint32_t a, uint32_t b, bool max, uint32_t* flags);
uint64_t f64_minmax(uint64_t a, uint64_t b, bool max, uint32_t* flags);

// Comparisons: feq is quiet (NV only for signaling NaNs), flt/fle signal on any NaN.
bool f32_eq(uint32_t a, uint32_t b, uint32_t* flags);
bool f32_lt(uint32_t a, uint32_t b, uint32_t* flags);
bool f32_le(uint32_t a, uint32_t b, uint32_t* flags);
bool f64_eq(uint64_t a, uint64_t b, uint32_t* flags);
bool f64_lt(uint64_t a, uint64_t b, uint32_t* flags);
bool f64_le(uint64_t a, uint64_t b, uint32_t* flags);

uint64_t f32_classify(uint32_t a);
uint64_t f64_classify(uint64_t a);

// Float -> integer, RISC-V saturation (NaN -> largest positive). 32-bit results are returned
// sign-extended to 64 bits, as the instructions write them.
enum class IntKind { kW, kWu, kL, kLu };
uint64_t f32_to_int(uint32_t a, IntKind kind, int rm, uint32_t* flags);
uint64_t f64_to_int(uint64_t a, IntKind kind, int rm, uint32_t* flags);
uint32_t int_to_f32(uint64_t value, IntKind kind, int rm, uint32_t* flags);
uint64_t int_to_f64(uint64_t value, IntKind kind, int rm, uint32_t* flags);

uint32_t f64_to_f32(uint64_t a, int rm, uint32_t* flags);
uint64_t f32_to_f64(uint32_t a, uint32_t* flags);

}  // namespace jit::fpu
