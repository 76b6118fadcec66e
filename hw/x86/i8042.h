// The PC keyboard controller, only as far as a VM needs it: the status port reads "nothing to
// read, ready for a command", and command 0xFE (pulse the reset line) on port 0x64 resets the machine
// (Linux's reboot=k, and what firmware and many test kernels do). Mapped at ports 0x60-0x64.
#pragma once

#include "hw/device.h"
#include "hw/machine.h"

namespace hw::x86 {

class I8042 final : public Device {
 public:
  explicit I8042(PowerController& power) : m_power(power) {}
  std::string_view name() const override { return "i8042"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  PowerController& m_power;
};

// isa-debug-exit style test port (0x501): writing a value powers the machine off with that value as
// `vmlaunch up`'s exit status, so a freestanding guest reports pass/fail without a serial parser.
class DebugExit final : public Device {
 public:
  static constexpr uint16_t kPort = 0x501;
  explicit DebugExit(PowerController& power) : m_power(power) {}
  std::string_view name() const override { return "debug-exit"; }
  void read(uint64_t, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  PowerController& m_power;
};

}  // namespace hw::x86
