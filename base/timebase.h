// Timebase: a guest-visible counter running at a fixed frequency from the moment the VM was
// created. On riscv64 it is mtime: the CLINT device reads it for the mtime register and mtimecmp
// deadlines, and the jit harts read the same object for the `time` CSR and Sstc's stimecmp, so
// both views always agree. Thread-safe. pause()/resume() stop and restart the guest's clock (the
// machine pauses its vCPUs first, so no hart sees the counter step); time paused never shows.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace base {

class Timebase {
 public:
  explicit Timebase(uint64_t frequency_hz = 10'000'000)
      : m_frequency_hz(frequency_hz), m_epoch(std::chrono::steady_clock::now()) {}

  uint64_t frequency_hz() const { return m_frequency_hz; }

  uint64_t now() const {
    // Acquire pairs with resume()'s release: once running again, the grown offset is visible.
    if (m_paused.load(std::memory_order_acquire)) return m_frozen.load(std::memory_order_relaxed);
    return ticks_at(std::chrono::steady_clock::now());
  }

  // Freezes the counter at its current value. Idempotent.
  void pause() {
    if (m_paused.load()) return;
    const auto at = std::chrono::steady_clock::now();
    m_frozen.store(ticks_at(at), std::memory_order_relaxed);
    m_paused_since_ns.store(since_epoch_ns(at), std::memory_order_relaxed);
    m_paused.store(true, std::memory_order_release);
  }
  // Continues from the frozen value. Idempotent.
  void resume() {
    if (!m_paused.load()) return;
    const int64_t paused_for = since_epoch_ns(std::chrono::steady_clock::now()) - m_paused_since_ns.load();
    m_offset_ns.fetch_add(paused_for > 0 ? paused_for : 0, std::memory_order_relaxed);
    m_paused.store(false, std::memory_order_release);
  }
  bool paused() const { return m_paused.load(std::memory_order_acquire); }

  // Makes the counter read `ticks` now and run on from there (a restored snapshot's mtime). Call
  // before any hart runs, or while paused (it then continues from `ticks` on resume).
  void set_now(uint64_t ticks) {
    if (m_paused.load()) {
      m_frozen.store(ticks, std::memory_order_relaxed);
      return;
    }
    const int64_t elapsed = since_epoch_ns(std::chrono::steady_clock::now());
    const uint64_t seconds = ticks / m_frequency_hz, rest = ticks % m_frequency_hz;
    const int64_t wanted = static_cast<int64_t>(seconds * 1'000'000'000ull + rest * 1'000'000'000ull / m_frequency_hz);
    // The offset may go negative: the counter then reads more than the host time since creation.
    m_offset_ns.store(elapsed - wanted, std::memory_order_relaxed);
  }

  uint64_t ticks_at(std::chrono::steady_clock::time_point when) const {
    auto ns = since_epoch_ns(when) - m_offset_ns.load(std::memory_order_relaxed);
    if (ns < 0) return 0;
    // Split to avoid overflow of ns * hz for long-running VMs.
    uint64_t seconds = static_cast<uint64_t>(ns) / 1'000'000'000ull;
    uint64_t rest = static_cast<uint64_t>(ns) % 1'000'000'000ull;
    return seconds * m_frequency_hz + rest * m_frequency_hz / 1'000'000'000ull;
  }

  // The host time at which the counter reaches `ticks` (for sleeping until a timer deadline).
  // While paused the counter reaches nothing: a waiter is told to look again in a while.
  std::chrono::steady_clock::time_point time_of(uint64_t ticks) const {
    if (paused()) return std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    uint64_t seconds = ticks / m_frequency_hz;
    uint64_t rest = ticks % m_frequency_hz;
    auto ns = seconds * 1'000'000'000ull + rest * 1'000'000'000ull / m_frequency_hz;
    return m_epoch + std::chrono::nanoseconds(ns + m_offset_ns.load(std::memory_order_relaxed));
  }

 private:
  int64_t since_epoch_ns(std::chrono::steady_clock::time_point when) const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(when - m_epoch).count();
  }

  uint64_t m_frequency_hz;
  std::chrono::steady_clock::time_point m_epoch;
  std::atomic<bool> m_paused{false};
  std::atomic<uint64_t> m_frozen{0};          // the counter while paused
  std::atomic<int64_t> m_paused_since_ns{0};  // host time of the pause, since m_epoch
  std::atomic<int64_t> m_offset_ns{0};        // host time spent paused so far
};

}  // namespace base
