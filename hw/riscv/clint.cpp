#include "hw/riscv/clint.h"

#include <cstdio>
#include <cstring>

#include "security/thread_role.h"

namespace hw::riscv {
namespace {

uint64_t load_le(std::span<const uint8_t> data) {
  uint64_t value = 0;
  for (size_t i = 0; i < data.size() && i < 8; ++i) value |= uint64_t{data[i]} << (8 * i);
  return value;
}

void store_le(std::span<uint8_t> data, uint64_t value) {
  for (size_t i = 0; i < data.size(); ++i) data[i] = i < 8 ? static_cast<uint8_t>(value >> (8 * i)) : 0;
}

// Reads a naturally aligned 4- or 8-byte window of a 64-bit register at byte `within`.
bool window_ok(uint64_t within, size_t size) {
  return (size == 8 && within == 0) || (size == 4 && (within == 0 || within == 4));
}

}  // namespace

Clint::Clint(unsigned hart_count, const base::Timebase& timebase, HartIrqSink sink)
    : m_hart_count(hart_count),
      m_timebase(timebase),
      m_sink(std::move(sink)),
      m_msip(hart_count, 0),
      m_mtimecmp(hart_count, UINT64_MAX),  // reset value: never fires until programmed
      m_mtip(hart_count, false) {
  m_thread = std::thread([this] {
    security::ThreadRole role(security::Role::DeviceIo);
    deadline_loop();
  });
}

Clint::~Clint() {
  {
    std::lock_guard guard(m_lock);
    m_stop = true;
  }
  m_changed.notify_all();
  m_thread.join();
}

void Clint::read(uint64_t offset, std::span<uint8_t> data) {
  store_le(data, 0);
  std::lock_guard guard(m_lock);
  if (offset < uint64_t{4} * m_hart_count && data.size() == 4 && offset % 4 == 0) {
    store_le(data, m_msip[offset / 4]);
    return;
  }
  if (offset >= kMtimecmpBase && offset < kMtimecmpBase + uint64_t{8} * m_hart_count) {
    uint64_t rel = offset - kMtimecmpBase;
    if (window_ok(rel % 8, data.size())) {
      store_le(data, m_mtimecmp[rel / 8] >> (8 * (rel % 8)));
      return;
    }
  }
  if (offset >= kMtime && offset < kMtime + 8 && window_ok(offset - kMtime, data.size())) {
    store_le(data, m_timebase.now() >> (8 * (offset - kMtime)));
    return;
  }
  if (!m_warned) {
    std::fprintf(stderr, "vmlaunch: clint: guest read of %zu bytes at 0x%llx ignored\n", data.size(),
                 (unsigned long long)offset);
    m_warned = true;
  }
}

void Clint::write(uint64_t offset, std::span<const uint8_t> data) {
  uint64_t value = load_le(data);
  std::lock_guard guard(m_lock);
  if (offset < uint64_t{4} * m_hart_count && data.size() == 4 && offset % 4 == 0) {
    unsigned hart = static_cast<unsigned>(offset / 4);
    m_msip[hart] = value & 1;
    m_sink(hart, kMipMsip, m_msip[hart] != 0);
    return;
  }
  if (offset >= kMtimecmpBase && offset < kMtimecmpBase + uint64_t{8} * m_hart_count) {
    uint64_t rel = offset - kMtimecmpBase;
    uint64_t within = rel % 8;
    if (window_ok(within, data.size())) {
      unsigned hart = static_cast<unsigned>(rel / 8);
      uint64_t current = m_mtimecmp[hart];
      if (data.size() == 8) {
        current = value;
      } else if (within == 0) {
        current = (current & 0xffffffff00000000ull) | (value & 0xffffffffull);
      } else {
        current = (current & 0xffffffffull) | (value << 32);
      }
      set_mtimecmp_locked(hart, current);
      return;
    }
  }
  if (offset >= kMtime && offset < kMtime + 8) return;  // the shared counter cannot be set by a guest
  if (!m_warned) {
    std::fprintf(stderr, "vmlaunch: clint: guest write of %zu bytes at 0x%llx ignored\n", data.size(),
                 (unsigned long long)offset);
    m_warned = true;
  }
}

void Clint::set_mtimecmp_locked(unsigned hart, uint64_t value) {
  m_mtimecmp[hart] = value;
  update_mtip_locked(hart, m_timebase.now());
  m_changed.notify_all();  // the earliest deadline may have moved
}

void Clint::update_mtip_locked(unsigned hart, uint64_t now) {
  bool level = now >= m_mtimecmp[hart];
  if (level == m_mtip[hart]) return;
  m_mtip[hart] = level;
  m_sink(hart, kMipMtip, level);
}

void Clint::deadline_loop() {
  std::unique_lock guard(m_lock);
  while (!m_stop) {
    uint64_t now = m_timebase.now();
    uint64_t earliest = UINT64_MAX;
    for (unsigned hart = 0; hart < m_hart_count; ++hart) {
      update_mtip_locked(hart, now);
      if (!m_mtip[hart] && m_mtimecmp[hart] < earliest) earliest = m_mtimecmp[hart];
    }
    if (earliest == UINT64_MAX) {
      m_changed.wait(guard);
    } else if (earliest - now > m_timebase.frequency_hz() * 3600) {
      // Far deadlines (a guest parking mtimecmp near UINT64_MAX) would overflow time_of(); re-check hourly.
      m_changed.wait_for(guard, std::chrono::hours(1));
    } else {
      m_changed.wait_until(guard, m_timebase.time_of(earliest));
    }
  }
}

}  // namespace hw::riscv
