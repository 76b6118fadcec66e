#include "jit/fpu.h"

#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>

// This file is compiled with -frounding-math -ffp-contract=off (see BUILD): the host rounding mode
// changes at run time and a fused multiply-add must never appear where the guest asked for two
// roundings.

namespace jit::fpu {
namespace {

// Keeps the compiler from moving a floating-point operation across the fenv calls around it: the
// value must be materialised in memory at this exact point of the instruction stream.
template <typename T>
inline T opaque(T v) {
  asm volatile("" : "+m"(v));
  return v;
}

int host_mode(int rm) {
  switch (rm) {
    case kRTZ:
      return FE_TOWARDZERO;
    case kRDN:
      return FE_DOWNWARD;
    case kRUP:
      return FE_UPWARD;
    default:
      return FE_TONEAREST;
  }
}

uint32_t to_fflags(int ex) {
  uint32_t f = 0;
  if (ex & FE_INEXACT) f |= kNX;
  if (ex & FE_UNDERFLOW) f |= kUF;
  if (ex & FE_OVERFLOW) f |= kOF;
  if (ex & FE_DIVBYZERO) f |= kDZ;
  if (ex & FE_INVALID) f |= kNV;
  return f;
}

// Host rounding mode `mode` with cleared exception flags for the scope's lifetime; the default
// mode comes back on exit so the rest of the process never sees a guest's rounding mode.
class HostScope {
 public:
  explicit HostScope(int mode) {
    std::fesetround(mode);
    std::feclearexcept(FE_ALL_EXCEPT);
  }
  ~HostScope() { std::fesetround(FE_TONEAREST); }
  int raised() const { return std::fetestexcept(FE_ALL_EXCEPT); }
};

template <typename T>
struct Traits;
template <>
struct Traits<float> {
  using U = uint32_t;
  using Wide = double;  // 53 >= 2*24+2: round-to-odd in double then RMM to float is exact
  static constexpr U kSign = 0x80000000u, kExp = 0x7f800000u, kQuiet = 0x00400000u;
  static constexpr U kNan = kCanonicalNan32;
  static constexpr int kBits = 32;
};
template <>
struct Traits<double> {
  using U = uint64_t;
  using Wide = long double;  // x87 extended: 64 >= 53+2 bits of significand
  static constexpr U kSign = 0x8000000000000000ull, kExp = 0x7ff0000000000000ull,
                     kQuiet = 0x0008000000000000ull;
  static constexpr U kNan = kCanonicalNan64;
  static constexpr int kBits = 64;
};

template <typename T>
T from_bits(typename Traits<T>::U u) {
  T v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
template <typename T>
typename Traits<T>::U to_bits(T v) {
  typename Traits<T>::U u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}
template <typename T>
bool is_nan(typename Traits<T>::U u) {
  return (u & ~Traits<T>::kSign) > Traits<T>::kExp;
}
template <typename T>
bool is_snan(typename Traits<T>::U u) {
  return is_nan<T>(u) && !(u & Traits<T>::kQuiet);
}
template <typename T>
typename Traits<T>::U canonical(T v) {
  return std::isnan(v) ? Traits<T>::kNan : to_bits(v);
}

// Sets the least significant significand bit: with the value computed rounding toward zero, this
// makes "round to odd", which keeps the information a later exact rounding needs (sticky bit).
inline double set_lsb(double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  u |= 1;
  std::memcpy(&v, &u, 8);
  return v;
}
inline long double set_lsb(long double v) {
  uint64_t m;  // x87 extended: the 64-bit significand is the first 8 bytes
  std::memcpy(&m, &v, 8);
  m |= 1;
  std::memcpy(&v, &m, 8);
  return v;
}

// Rounds `v` (exact or round-to-odd in a format with >= 2 extra bits) to T, ties away from zero.
template <typename T, typename W>
T round_rmm(W v, uint32_t* flags) {
  if (std::isnan(v) || std::isinf(v) || v == 0) return static_cast<T>(v);
  T t;
  int ex;
  {
    HostScope scope(FE_TOWARDZERO);
    t = opaque(static_cast<T>(opaque(v)));
    ex = scope.raised();
  }
  if (!(ex & FE_INEXACT)) return t;
  *flags |= kNX;
  const T inf = std::numeric_limits<T>::infinity();
  if (ex & FE_OVERFLOW) {
    *flags |= kOF;
    return std::signbit(v) ? -inf : inf;
  }
  const W at = std::fabs(static_cast<W>(t));
  const W av = std::fabs(v);
  const W ulp = at < static_cast<W>(std::numeric_limits<T>::min())
                    ? static_cast<W>(std::numeric_limits<T>::denorm_min())
                    : std::ldexp(static_cast<W>(1), std::ilogb(at) - (std::numeric_limits<T>::digits - 1));
  T result = static_cast<T>(at);
  if (av - at >= ulp / 2) {
    const W up = at + ulp;
    if (up > static_cast<W>(std::numeric_limits<T>::max())) {
      *flags |= kOF;
      return std::signbit(v) ? -inf : inf;
    }
    result = static_cast<T>(up);
  }
  if (result < std::numeric_limits<T>::min()) *flags |= kUF;  // tiny after rounding, inexact
  return std::signbit(v) ? -result : result;
}

// Computes fn(args...) in T with guest rounding `rm`, collecting flags.
template <typename T, typename F, typename... A>
typename Traits<T>::U compute(int rm, uint32_t* flags, F fn, A... args) {
  if (rm != kRMM) {
    T r;
    int ex;
    {
      HostScope scope(host_mode(rm));
      r = opaque(fn(opaque(args)...));
      ex = scope.raised();
    }
    *flags |= to_fflags(ex);
    return canonical(r);
  }
  using W = typename Traits<T>::Wide;
  W w;
  int ex;
  {
    HostScope scope(FE_TOWARDZERO);
    w = opaque(fn(opaque(static_cast<W>(args))...));
    ex = scope.raised();
  }
  *flags |= to_fflags(ex & (FE_INVALID | FE_DIVBYZERO));
  if ((ex & FE_INEXACT) && !std::isnan(w) && !std::isinf(w)) w = set_lsb(w);
  return canonical(round_rmm<T>(w, flags));
}

template <typename T>
typename Traits<T>::U arith(Arith op, typename Traits<T>::U a, typename Traits<T>::U b, int rm,
                            uint32_t* flags) {
  const T x = from_bits<T>(a), y = from_bits<T>(b);
  switch (op) {
    case Arith::kAdd:
      return compute<T>(
          rm, flags, [](auto p, auto q) { return p + q; }, x, y);
    case Arith::kSub:
      return compute<T>(
          rm, flags, [](auto p, auto q) { return p - q; }, x, y);
    case Arith::kMul:
      return compute<T>(
          rm, flags, [](auto p, auto q) { return p * q; }, x, y);
    case Arith::kDiv:
      return compute<T>(
          rm, flags, [](auto p, auto q) { return p / q; }, x, y);
  }
  return Traits<T>::kNan;
}

template <typename T>
typename Traits<T>::U fma_op(typename Traits<T>::U a, typename Traits<T>::U b, typename Traits<T>::U c,
                             bool negate_product, bool negate_addend, int rm, uint32_t* flags) {
  T x = from_bits<T>(a), y = from_bits<T>(b), z = from_bits<T>(c);
  // RISC-V raises NV for inf*0 even when the addend is a quiet NaN; hosts need not.
  if ((std::isinf(x) && y == 0) || (x == 0 && std::isinf(y))) *flags |= kNV;
  if (negate_product) x = -x;
  if (negate_addend) z = -z;
  return compute<T>(
      rm, flags, [](auto p, auto q, auto r) { return std::fma(p, q, r); }, x, y, z);
}

template <typename T>
typename Traits<T>::U minmax(typename Traits<T>::U a, typename Traits<T>::U b, bool max, uint32_t* flags) {
  if (is_snan<T>(a) || is_snan<T>(b)) *flags |= kNV;
  const bool na = is_nan<T>(a), nb = is_nan<T>(b);
  if (na && nb) return Traits<T>::kNan;
  if (na) return b;
  if (nb) return a;
  const T x = from_bits<T>(a), y = from_bits<T>(b);
  if (x == y) {  // equal, or +0 vs -0: -0 is the smaller
    const bool a_neg = (a & Traits<T>::kSign) != 0;
    return max ? (a_neg ? b : a) : (a_neg ? a : b);
  }
  return (max ? (x > y) : (x < y)) ? a : b;
}

template <typename T>
int compare(typename Traits<T>::U a, typename Traits<T>::U b, bool signaling, uint32_t* flags) {
  // Returns -1 less, 0 equal, 1 greater, 2 unordered.
  if (is_nan<T>(a) || is_nan<T>(b)) {
    if (signaling || is_snan<T>(a) || is_snan<T>(b)) *flags |= kNV;
    return 2;
  }
  const T x = from_bits<T>(a), y = from_bits<T>(b);
  return x < y ? -1 : x == y ? 0 : 1;
}

template <typename T>
uint64_t classify(typename Traits<T>::U a) {
  const bool neg = (a & Traits<T>::kSign) != 0;
  const auto mag = a & ~Traits<T>::kSign;
  if (is_nan<T>(a)) return is_snan<T>(a) ? 1u << 8 : 1u << 9;
  if (mag == Traits<T>::kExp) return neg ? 1u << 0 : 1u << 7;
  if (mag == 0) return neg ? 1u << 3 : 1u << 4;
  if ((mag & Traits<T>::kExp) == 0) return neg ? 1u << 2 : 1u << 5;
  return neg ? 1u << 1 : 1u << 6;
}

uint64_t sext32(uint64_t v) {
  return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v)));
}

template <typename T>
uint64_t to_int(typename Traits<T>::U a, IntKind kind, int rm, uint32_t* flags) {
  static constexpr uint64_t kMax[4] = {0x7fffffffull, ~0ull, 0x7fffffffffffffffull, ~0ull};
  static constexpr uint64_t kMin[4] = {0xffffffff80000000ull, 0, 0x8000000000000000ull, 0};
  const int k = static_cast<int>(kind);
  if (is_nan<T>(a)) {
    *flags |= kNV;
    return kMax[k];
  }
  const T v = from_bits<T>(a);
  T r;
  if (rm == kRMM) {
    r = std::round(v);  // halfway cases away from zero
  } else {
    HostScope scope(host_mode(rm));
    r = opaque(std::nearbyint(opaque(v)));
  }
  const T two31 = static_cast<T>(2147483648.0), two32 = static_cast<T>(4294967296.0);
  const T two63 = static_cast<T>(9223372036854775808.0), two64 = static_cast<T>(18446744073709551616.0);
  bool ok;
  switch (kind) {
    case IntKind::kW:
      ok = r >= -two31 && r < two31;
      break;
    case IntKind::kWu:
      ok = r >= 0 && r < two32;
      break;  // -0.0 >= 0 holds
    case IntKind::kL:
      ok = r >= -two63 && r < two63;
      break;
    default:
      ok = r >= 0 && r < two64;
      break;
  }
  if (!ok) {
    *flags |= kNV;
    return std::signbit(v) ? kMin[k] : kMax[k];
  }
  if (r != v) *flags |= kNX;
  switch (kind) {
    case IntKind::kW:
      return sext32(static_cast<uint64_t>(static_cast<int64_t>(r)));
    case IntKind::kWu:
      return sext32(static_cast<uint64_t>(r));
    case IntKind::kL:
      return static_cast<uint64_t>(static_cast<int64_t>(r));
    default:
      return static_cast<uint64_t>(r);
  }
}

template <typename T>
typename Traits<T>::U from_int(uint64_t value, IntKind kind, int rm, uint32_t* flags) {
  if (rm == kRMM) {
    long double exact;  // every 64-bit integer is exact in x87 extended precision
    switch (kind) {
      case IntKind::kW:
        exact = static_cast<int32_t>(value);
        break;
      case IntKind::kWu:
        exact = static_cast<uint32_t>(value);
        break;
      case IntKind::kL:
        exact = static_cast<int64_t>(value);
        break;
      default:
        exact = value;
        break;
    }
    return to_bits(round_rmm<T>(exact, flags));
  }
  T r;
  int ex;
  {
    HostScope scope(host_mode(rm));
    switch (kind) {
      case IntKind::kW:
        r = opaque(static_cast<T>(opaque(static_cast<int32_t>(value))));
        break;
      case IntKind::kWu:
        r = opaque(static_cast<T>(opaque(static_cast<uint32_t>(value))));
        break;
      case IntKind::kL:
        r = opaque(static_cast<T>(opaque(static_cast<int64_t>(value))));
        break;
      default:
        r = opaque(static_cast<T>(opaque(value)));
        break;
    }
    ex = scope.raised();
  }
  *flags |= to_fflags(ex);
  return to_bits(r);
}

}  // namespace

uint32_t f32_arith(Arith op, uint32_t a, uint32_t b, int rm, uint32_t* flags) {
  return arith<float>(op, a, b, rm, flags);
}
uint64_t f64_arith(Arith op, uint64_t a, uint64_t b, int rm, uint32_t* flags) {
  return arith<double>(op, a, b, rm, flags);
}
uint32_t f32_sqrt(uint32_t a, int rm, uint32_t* flags) {
  return compute<float>(
      rm, flags, [](auto p) { return std::sqrt(p); }, from_bits<float>(a));
}
uint64_t f64_sqrt(uint64_t a, int rm, uint32_t* flags) {
  return compute<double>(
      rm, flags, [](auto p) { return std::sqrt(p); }, from_bits<double>(a));
}
uint32_t f32_fma(uint32_t a, uint32_t b, uint32_t c, bool np, bool na, int rm, uint32_t* flags) {
  return fma_op<float>(a, b, c, np, na, rm, flags);
}
uint64_t f64_fma(uint64_t a, uint64_t b, uint64_t c, bool np, bool na, int rm, uint32_t* flags) {
  return fma_op<double>(a, b, c, np, na, rm, flags);
}
uint32_t f32_minmax(uint32_t a, uint32_t b, bool max, uint32_t* flags) {
  return minmax<float>(a, b, max, flags);
}
uint64_t f64_minmax(uint64_t a, uint64_t b, bool max, uint32_t* flags) {
  return minmax<double>(a, b, max, flags);
}
bool f32_eq(uint32_t a, uint32_t b, uint32_t* flags) {
  return compare<float>(a, b, false, flags) == 0;
}
bool f32_lt(uint32_t a, uint32_t b, uint32_t* flags) {
  return compare<float>(a, b, true, flags) == -1;
}
bool f32_le(uint32_t a, uint32_t b, uint32_t* flags) {
  const int c = compare<float>(a, b, true, flags);
  return c == -1 || c == 0;
}
bool f64_eq(uint64_t a, uint64_t b, uint32_t* flags) {
  return compare<double>(a, b, false, flags) == 0;
}
bool f64_lt(uint64_t a, uint64_t b, uint32_t* flags) {
  return compare<double>(a, b, true, flags) == -1;
}
bool f64_le(uint64_t a, uint64_t b, uint32_t* flags) {
  const int c = compare<double>(a, b, true, flags);
  return c == -1 || c == 0;
}
uint64_t f32_classify(uint32_t a) {
  return classify<float>(a);
}
uint64_t f64_classify(uint64_t a) {
  return classify<double>(a);
}
uint64_t f32_to_int(uint32_t a, IntKind kind, int rm, uint32_t* flags) {
  return to_int<float>(a, kind, rm, flags);
}
uint64_t f64_to_int(uint64_t a, IntKind kind, int rm, uint32_t* flags) {
  return to_int<double>(a, kind, rm, flags);
}
uint32_t int_to_f32(uint64_t v, IntKind kind, int rm, uint32_t* flags) {
  return from_int<float>(v, kind, rm, flags);
}
uint64_t int_to_f64(uint64_t v, IntKind kind, int rm, uint32_t* flags) {
  return from_int<double>(v, kind, rm, flags);
}

uint32_t f64_to_f32(uint64_t a, int rm, uint32_t* flags) {
  if (is_nan<double>(a)) {
    if (is_snan<double>(a)) *flags |= kNV;
    return kCanonicalNan32;
  }
  const double d = from_bits<double>(a);
  if (rm == kRMM) return to_bits(round_rmm<float>(d, flags));
  return compute<float>(
      rm, flags, [](double p) { return static_cast<float>(p); }, d);
}

uint64_t f32_to_f64(uint32_t a, uint32_t* flags) {
  if (is_nan<float>(a)) {
    if (is_snan<float>(a)) *flags |= kNV;
    return kCanonicalNan64;
  }
  return to_bits(static_cast<double>(from_bits<float>(a)));  // exact
}

}  // namespace jit::fpu
