// SifiveTest: the "sifive,test0" finisher at 0x100000 on QEMU's virt board, which Linux drives
// through syscon-poweroff / syscon-reboot and OpenSBI through its sifive_test reset driver.
// A 32-bit write to offset 0: low 16 bits 0x5555 = power off (exit 0), 0x3333 = power off with
// failure (exit code in the high 16 bits), 0x7777 = reset. Anything else is ignored.
#pragma once

#include "hw/device.h"
#include "hw/device_state.h"
#include "hw/machine.h"

namespace hw::riscv {

class SifiveTest final : public Device, public DeviceState {
 public:
  static constexpr uint64_t kSize = 0x1000;
  static constexpr uint32_t kFail = 0x3333, kPass = 0x5555, kReset = 0x7777;

  explicit SifiveTest(PowerController& power) : m_power(power) {}

  std::string_view name() const override { return "syscon"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Snapshot: registers without memory (writes act at once), so the saved state is empty.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter&) override {}
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, name()));
    return in.finish(std::string(name()));
  }

 private:
  PowerController& m_power;
};

}  // namespace hw::riscv
