#include "hw/riscv/sifive_test.h"

namespace hw::riscv {

void SifiveTest::read(uint64_t, std::span<uint8_t> data) {
  for (auto& b : data) b = 0;
}

void SifiveTest::write(uint64_t offset, std::span<const uint8_t> data) {
  // Linux's syscon regmap writes 32 bits, OpenSBI's sifive_test driver 16 (writew); QEMU accepts both.
  if (offset != 0 || data.size() < 2) return;
  uint32_t value = data[0] | data[1] << 8;
  if (data.size() >= 4) value |= data[2] << 16 | uint32_t{data[3]} << 24;
  switch (value & 0xffff) {
    case kPass:
      m_power.power_off(0);
      break;
    case kFail: {
      int code = static_cast<int>(value >> 16);
      m_power.power_off(code == 0 ? 1 : code);
      break;
    }
    case kReset:
      m_power.reset();
      break;
    default:
      break;
  }
}

}  // namespace hw::riscv
