#include "hw/x86/cmos.h"

#include <algorithm>

namespace hw::x86 {
namespace {

uint8_t bcd(int value) {
  return static_cast<uint8_t>((value / 10) << 4 | (value % 10));
}

}  // namespace

Cmos::Cmos(std::function<std::time_t()> clock) : m_clock(std::move(clock)) {
  m_ram[kRegA] = 0x26;  // 32.768 kHz divider, 1024 Hz rate; UIP clear
  m_ram[kRegB] = kRegB24h;
  m_ram[kRegD] = 0x80;  // valid RAM and time
}

void Cmos::set_memory(uint64_t below_4g, uint64_t above_4g) {
  std::lock_guard guard(m_lock);
  constexpr uint64_t MiB = 1 << 20;
  uint64_t ext = below_4g > MiB ? std::min<uint64_t>((below_4g - MiB) / 1024, 0xfc00) : 0;
  m_ram[kExtMemLow] = static_cast<uint8_t>(ext);
  m_ram[kExtMemHigh] = static_cast<uint8_t>(ext >> 8);
  uint64_t ext2 = below_4g > 16 * MiB ? std::min<uint64_t>((below_4g - 16 * MiB) / 65536, 0xffff) : 0;
  m_ram[kExtMem2Low] = static_cast<uint8_t>(ext2);
  m_ram[kExtMem2High] = static_cast<uint8_t>(ext2 >> 8);
  uint64_t high = std::min<uint64_t>(above_4g / 65536, 0xffffff);
  m_ram[kHighMem] = static_cast<uint8_t>(high);
  m_ram[kHighMem + 1] = static_cast<uint8_t>(high >> 8);
  m_ram[kHighMem + 2] = static_cast<uint8_t>(high >> 16);
}

void Cmos::set_cpus(unsigned count) {
  std::lock_guard guard(m_lock);
  m_ram[kSmpCount] = static_cast<uint8_t>(count == 0 ? 0 : std::min(count - 1, 255u));
}

uint8_t Cmos::clock_register(uint8_t index) const {
  std::time_t now = m_clock();
  std::tm tm{};
  gmtime_r(&now, &tm);
  const bool binary = m_ram[kRegB] & kRegBBinary;
  auto format = [&](int v) { return binary ? static_cast<uint8_t>(v) : bcd(v); };
  switch (index) {
    case kSeconds:
      return format(tm.tm_sec);
    case kMinutes:
      return format(tm.tm_min);
    case kHours: {
      if (m_ram[kRegB] & kRegB24h) return format(tm.tm_hour);
      int hour = tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12;
      return static_cast<uint8_t>(format(hour) | (tm.tm_hour >= 12 ? 0x80 : 0));
    }
    case kWeekday:
      return format(tm.tm_wday + 1);
    case kDay:
      return format(tm.tm_mday);
    case kMonth:
      return format(tm.tm_mon + 1);
    case kYear:
      return format(tm.tm_year % 100);
    case kCentury:
      return format(19 + tm.tm_year / 100);
    default:
      return 0;
  }
}

void Cmos::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});
  if (offset != 1 || data.empty()) return;  // the index port reads as zero
  std::lock_guard guard(m_lock);
  const uint8_t index = m_index;
  if (index <= kYear || index == kCentury)
    data[0] = clock_register(index);
  else if (index == kRegC)
    data[0] = 0;  // no interrupt flags: nothing raises IRQ 8
  else
    data[0] = m_ram[index];
}

void Cmos::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard guard(m_lock);
  if (offset == 0) {
    m_index = data[0] & 0x7f;  // bit 7 masks NMI: no NMI source here
    return;
  }
  if (offset != 1) return;
  const uint8_t index = m_index;
  if (index <= kYear || index == kCentury || index == kRegC || index == kRegD) return;
  if (index == kRegA)
    m_ram[kRegA] = data[0] & 0x7f;  // UIP is read-only
  else
    m_ram[index] = data[0];
}

}  // namespace hw::x86
