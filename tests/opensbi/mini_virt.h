// A two-hart subset of QEMU's riscv64 virt machine for CPU-level tests: ns16550 transmit (console
// captured in memory, optionally echoed), CLINT (msip, mtimecmp with a deadline thread, mtime from
// the shared timebase) and sifive_test (power-off). No PLIC: devices that need interrupts are out of
// scope; this exists to run real firmware and kernels against the interpreter independently of hw/.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "accel/accelerator.h"
#include "base/timebase.h"

namespace minivirt {

constexpr unsigned kHarts = 2;

inline uint64_t merge(uint64_t reg, uint64_t offset, std::span<const uint8_t> data) {
  for (size_t i = 0; i < data.size() && offset + i < 8; ++i) {
    reg &= ~(0xffull << (8 * (offset + i)));
    reg |= static_cast<uint64_t>(data[i]) << (8 * (offset + i));
  }
  return reg;
}

inline void extract(uint64_t reg, uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = offset + i < 8 ? static_cast<uint8_t>(reg >> (8 * (offset + i))) : 0;
}

class MiniVirt final : public accel::VmOps {
 public:
  explicit MiniVirt(const base::Timebase& timebase) : m_timebase(timebase) {
    for (auto& t : m_mtimecmp) t = ~0ull;
    m_timer = std::thread([this] { timer_loop(); });
  }
  ~MiniVirt() override {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_stop = true;
    }
    m_cv.notify_all();
    m_timer.join();
  }

  bool mmio_read(uint64_t addr, std::span<uint8_t> data) override {
    std::fill(data.begin(), data.end(), 0);
    if (addr >= 0x10000000 && addr < 0x10000100) {
      if (addr == 0x10000005) data[0] = 0x60;  // LSR: transmitter empty
      return true;
    }
    if (addr >= 0x2000000 && addr < 0x2010000) {
      std::lock_guard<std::mutex> lock(m_mutex);
      const uint64_t off = addr - 0x2000000;
      if (off < 4 * kHarts)
        extract(m_msip[off / 4], off % 4, data);
      else if (off >= 0x4000 && off < 0x4000 + 8 * kHarts)
        extract(m_mtimecmp[(off - 0x4000) / 8], off % 8, data);
      else if (off >= 0xbff8)
        extract(m_timebase.now(), off - 0xbff8, data);
      return true;
    }
    return addr >= 0x100000 && addr < 0x101000;
  }

  bool mmio_write(uint64_t addr, std::span<const uint8_t> data) override {
    if (addr >= 0x10000000 && addr < 0x10000100) {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (addr == 0x10000000 && !(m_lcr & 0x80)) {
        console.push_back(static_cast<char>(data[0]));
        if (echo) std::fputc(data[0], stderr);
      }
      if (addr == 0x10000003) m_lcr = data[0];
      return true;
    }
    if (addr >= 0x100000 && addr < 0x101000) {
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        uint32_t v = 0;
        for (size_t i = 0; i < data.size() && i < 4; ++i) v |= static_cast<uint32_t>(data[i]) << (8 * i);
        if (!finished) {
          finished = true;
          finisher = v;
        }
      }
      m_cv.notify_all();
      return true;
    }
    if (addr >= 0x2000000 && addr < 0x2010000) {
      const uint64_t off = addr - 0x2000000;
      std::lock_guard<std::mutex> lock(m_mutex);
      if (off < 4 * kHarts) {
        const unsigned hart = off / 4;
        m_msip[hart] = merge(m_msip[hart], off % 4, data) & 1;
        (void)vm->set_irq_line(hart * 64 + 3, m_msip[hart]);
      } else if (off >= 0x4000 && off < 0x4000 + 8 * kHarts) {
        const unsigned hart = (off - 0x4000) / 8;
        m_mtimecmp[hart] = merge(m_mtimecmp[hart], off % 8, data);
        update_timers();
        m_cv.notify_all();
      }
      return true;
    }
    return false;
  }
  bool pio_read(uint16_t, std::span<uint8_t>) override { return false; }
  bool pio_write(uint16_t, std::span<const uint8_t>) override { return false; }

  bool wait_finished(double seconds) {
    std::unique_lock<std::mutex> lock(m_mutex);
    return m_cv.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return finished; });
  }
  std::string output() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return console;
  }

  accel::Vm* vm = nullptr;
  bool echo = false;  // copy console output to stderr as it comes
  std::string console;
  bool finished = false;
  uint32_t finisher = 0;

 private:
  // Caller holds m_mutex. MTIP is the level (mtime >= mtimecmp).
  void update_timers() {
    const uint64_t now = m_timebase.now();
    for (unsigned h = 0; h < kHarts; ++h) (void)vm->set_irq_line(h * 64 + 7, now >= m_mtimecmp[h]);
  }
  void timer_loop() {
    std::unique_lock<std::mutex> lock(m_mutex);
    while (!m_stop) {
      if (vm) update_timers();
      uint64_t next = ~0ull;
      const uint64_t now = m_timebase.now();
      for (uint64_t t : m_mtimecmp)
        if (t > now) next = std::min(next, t);
      if (next == ~0ull)
        m_cv.wait_for(lock, std::chrono::milliseconds(50));
      else
        m_cv.wait_until(lock, m_timebase.time_of(next));
    }
  }

  const base::Timebase& m_timebase;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::thread m_timer;
  bool m_stop = false;
  uint8_t m_lcr = 0;
  uint64_t m_msip[kHarts] = {};
  uint64_t m_mtimecmp[kHarts];
};

}  // namespace minivirt
