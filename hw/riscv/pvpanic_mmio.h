// PvPanicMmio: QEMU's pvpanic device on MMIO ("qemu,pvpanic-mmio", Linux's PVPANIC_MMIO), through
// which a guest kernel tells the host that it panicked. One byte register: reads give the events
// this device takes (PANICKED = 1, CRASH_LOADED = 2); a guest write of either bit is the event.
// What follows is the machine owner's choice (the file's lifecycle.on-panic): the device only says.
#pragma once

#include <functional>

#include "hw/device.h"
#include "hw/device_state.h"

namespace hw::riscv {

class PvPanicMmio final : public Device, public DeviceState {
 public:
  static constexpr uint64_t kSize = 2;
  static constexpr uint8_t kPanicked = 1, kCrashLoaded = 2;

  explicit PvPanicMmio(std::function<void()> on_panic) : m_on_panic(std::move(on_panic)) {}

  std::string_view name() const override { return "pvpanic"; }
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
  std::function<void()> m_on_panic;
};

}  // namespace hw::riscv
