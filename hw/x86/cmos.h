// The PC's CMOS RAM and real-time clock (MC146818) at ports 0x70 (index; bit 7 is the NMI mask) and
// 0x71 (data), as far as PC firmware needs it: the clock reads the host's UTC time in the format
// register B asks for (BCD or binary, 12/24 hour), never mid-update (register A's UIP stays clear),
// and the bytes QEMU's pc stores there for SeaBIOS (RAM sizes, CPU count). No alarms, no periodic
// interrupt, no IRQ 8: SeaBIOS keeps time with the PIT and TSC. Writes to the clock registers are
// ignored (the guest cannot set the host's time); the other bytes are RAM.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>

#include "hw/device.h"
#include "hw/device_state.h"

namespace hw::x86 {

class Cmos final : public Device, public DeviceState {
 public:
  static constexpr uint16_t kPort = 0x70, kSize = 2;
  // Registers and bytes (QEMU's hw/rtc/mc146818rtc.c and hw/i386/pc.c).
  static constexpr uint8_t kSeconds = 0x00, kMinutes = 0x02, kHours = 0x04, kWeekday = 0x06, kDay = 0x07,
                           kMonth = 0x08, kYear = 0x09, kRegA = 0x0a, kRegB = 0x0b, kRegC = 0x0c,
                           kRegD = 0x0d, kExtMemLow = 0x30, kExtMemHigh = 0x31, kCentury = 0x32,
                           kExtMem2Low = 0x34, kExtMem2High = 0x35, kHighMem = 0x5b, kSmpCount = 0x5f;
  static constexpr uint8_t kRegBBinary = 0x04, kRegB24h = 0x02;

  // `clock` gives the time shown (tests pass a fixed one); the host's by default.
  explicit Cmos(std::function<std::time_t()> clock = [] { return std::time(nullptr); });
  std::string_view name() const override { return "cmos"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // QEMU's memory bytes: KiB from 1 MiB up to 64 MiB (0x30), 64 KiB units from 16 MiB up to
  // `below_4g` (0x34), 64 KiB units above 4 GiB (0x5b-0x5d); and cpus - 1 (0x5f).
  void set_memory(uint64_t below_4g, uint64_t above_4g);
  void set_cpus(unsigned count);

  // Snapshot: the index register and the RAM bytes (the clock registers read the host's time).
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override {
    std::lock_guard guard(m_lock);
    out.u8(m_index);
    out.bytes(m_ram);
  }
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, name()));
    std::lock_guard guard(m_lock);
    m_index = in.u8();
    std::vector<uint8_t> ram = in.bytes(m_ram.size());
    if (ram.size() != m_ram.size())
      in.fail();
    else
      std::copy(ram.begin(), ram.end(), m_ram.begin());
    return in.finish(std::string(name()));
  }

 private:
  uint8_t clock_register(uint8_t index) const;

  std::function<std::time_t()> m_clock;
  std::mutex m_lock;
  uint8_t m_index = 0;
  std::array<uint8_t, 128> m_ram{};
};

}  // namespace hw::x86
