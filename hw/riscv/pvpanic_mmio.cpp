#include "hw/riscv/pvpanic_mmio.h"

namespace hw::riscv {

void PvPanicMmio::read(uint64_t offset, std::span<uint8_t> data) {
  for (auto& b : data) b = 0;
  if (offset == 0 && !data.empty()) data[0] = kPanicked | kCrashLoaded;
}

void PvPanicMmio::write(uint64_t offset, std::span<const uint8_t> data) {
  // A crash kernel loaded (CRASH_LOADED) means the guest handles the panic itself: nothing to do.
  if (offset != 0 || data.empty() || !(data[0] & kPanicked)) return;
  if (m_on_panic) m_on_panic();
}

}  // namespace hw::riscv
