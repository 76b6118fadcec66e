// Timebase: a guest-visible counter running at a fixed frequency from the moment the VM was
// created. On riscv64 it is mtime: the CLINT device reads it for the mtime register and mtimecmp
// deadlines, and the jit harts read the same object for the `time` CSR and Sstc's stimecmp, so
// both views always agree. Thread-safe (read-only after construction).
#pragma once

#include <chrono>
#include <cstdint>

namespace base {

class Timebase {
 public:
  explicit Timebase(uint64_t frequency_hz = 10'000'000)
      : m_frequency_hz(frequency_hz), m_epoch(std::chrono::steady_clock::now()) {}

  uint64_t frequency_hz() const { return m_frequency_hz; }

  uint64_t now() const { return ticks_at(std::chrono::steady_clock::now()); }

  uint64_t ticks_at(std::chrono::steady_clock::time_point when) const {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when - m_epoch).count();
    if (ns < 0) return 0;
    // Split to avoid overflow of ns * hz for long-running VMs.
    uint64_t seconds = static_cast<uint64_t>(ns) / 1'000'000'000ull;
    uint64_t rest = static_cast<uint64_t>(ns) % 1'000'000'000ull;
    return seconds * m_frequency_hz + rest * m_frequency_hz / 1'000'000'000ull;
  }

  // The host time at which the counter reaches `ticks` (for sleeping until a timer deadline).
  std::chrono::steady_clock::time_point time_of(uint64_t ticks) const {
    uint64_t seconds = ticks / m_frequency_hz;
    uint64_t rest = ticks % m_frequency_hz;
    auto ns = seconds * 1'000'000'000ull + rest * 1'000'000'000ull / m_frequency_hz;
    return m_epoch + std::chrono::nanoseconds(ns);
  }

 private:
  uint64_t m_frequency_hz;
  std::chrono::steady_clock::time_point m_epoch;
};

}  // namespace base
