#include "hw/x86/i8042.h"

#include <algorithm>
#include <cstring>

namespace hw::x86 {

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  // Status (0x64): output buffer empty, input buffer empty, system flag set (POST passed).
  if (offset == 4 && !data.empty()) data[0] = 0x04;
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == 4 && !data.empty() && data[0] == 0xfe) m_power.reset();
}

void DebugExit::read(uint64_t, std::span<uint8_t> data) {
  std::memset(data.data(), 0xff, data.size());
}

void DebugExit::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) return;
  uint32_t value = 0;
  std::memcpy(&value, data.data(), std::min<size_t>(data.size(), 4));
  m_power.power_off(static_cast<int>(value & 0xff));
}

}  // namespace hw::x86
