#include "hw/x86/acpi_sleep.h"

#include <cstring>

namespace hw::x86 {

void AcpiSleep::read(uint64_t, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
}

void AcpiSleep::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) return;
  const uint8_t value = data[0];
  const bool enable = (value & 0x20) != 0;
  const uint8_t type = (value >> 2) & 7;
  if (enable && type == kS5Type) m_power.power_off(0);
}

}  // namespace hw::x86
