// QEMU's pvpanic device on the ISA bus (`-device pvpanic`, port 0x505), through which a guest
// kernel tells the host that it panicked. The DSDT declares it as QEMU0001 with its port, which
// Linux's pvpanic-mmio driver binds (it takes an I/O port resource as well as MMIO). One byte
// register: reads give the events the device takes (PANICKED = 1, CRASH_LOADED = 2); a guest write
// of PANICKED is the event. What follows is the machine owner's choice (lifecycle.on-panic).
#pragma once

#include <functional>

#include "hw/device.h"
#include "hw/device_state.h"

namespace hw::x86 {

class PvPanicIsa final : public Device, public DeviceState {
 public:
  static constexpr uint16_t kPort = 0x505;
  static constexpr uint8_t kPanicked = 1, kCrashLoaded = 2;

  explicit PvPanicIsa(std::function<void()> on_panic) : m_on_panic(std::move(on_panic)) {}
  std::string_view name() const override { return "pvpanic"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Snapshot: a register without memory (a write acts at once), so the saved state is empty.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter&) override {}
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, name()));
    return in.finish(std::string(name()));
  }

 private:
  std::function<void()> m_on_panic;
};

}  // namespace hw::x86
