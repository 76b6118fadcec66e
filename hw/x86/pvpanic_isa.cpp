#include "hw/x86/pvpanic_isa.h"

namespace hw::x86 {

void PvPanicIsa::read(uint64_t offset, std::span<uint8_t> data) {
  for (auto& b : data) b = 0;
  if (offset == 0 && !data.empty()) data[0] = kPanicked | kCrashLoaded;
}

void PvPanicIsa::write(uint64_t offset, std::span<const uint8_t> data) {
  // CRASH_LOADED alone means a crash kernel takes over: the guest handles the panic itself.
  if (offset != 0 || data.empty() || !(data[0] & kPanicked)) return;
  if (m_on_panic) m_on_panic();
}

}  // namespace hw::x86
