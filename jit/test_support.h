// Shared by the jit tests: a machine with RAM only (every device access faults) and where its RAM
// starts.
#pragma once

#include <cstdint>
#include <span>

#include "accel/accelerator.h"

namespace jit::testing {

class NoDevices final : public accel::VmOps {
 public:
  bool mmio_read(uint64_t, std::span<uint8_t>) override { return false; }
  bool mmio_write(uint64_t, std::span<const uint8_t>) override { return false; }
  bool pio_read(uint16_t, std::span<uint8_t>) override { return false; }
  bool pio_write(uint16_t, std::span<const uint8_t>) override { return false; }
};

constexpr uint64_t kBase = 0x80000000;  // RAM base of the test machines (the riscv virt board's)

}  // namespace jit::testing
