// SifiveGpio: the SiFive GPIO controller ("sifive,gpio0", Linux's GPIO_SIFIVE), here with its input
// pins driven by the host: pin 0 is the machine's power button, described in the device tree as a
// gpio-keys KEY_POWER key, so `vmlaunch down` (and SIGTERM to `up`) can ask the guest to shut down.
//
// Registers (32-bit, one bit per pin), as the FU540 manual and QEMU's sifive_gpio:
//   0x00 input_val   0x04 input_en   0x08 output_en   0x0c output_val   0x10 pue   0x14 ds
//   0x18 rise_ie     0x1c rise_ip    0x20 fall_ie     0x24 fall_ip     0x28 high_ie 0x2c high_ip
//   0x30 low_ie      0x34 low_ip     0x38 iof_en      0x3c iof_sel     0x40 out_xor
// *_ip bits latch (edge) or follow (level) the pin and are cleared by writing 1. Each pin has its
// own interrupt line (the device tree lists them in pin order; Linux counts pins by them), raised
// while any of its enabled pending bits is set.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "hw/device.h"
#include "hw/device_state.h"

namespace hw::riscv {

class SifiveGpio final : public Device, public DeviceState {
 public:
  static constexpr uint64_t kSize = 0x1000;
  enum Register : uint32_t {
    kInputVal = 0x00,
    kInputEn = 0x04,
    kOutputEn = 0x08,
    kOutputVal = 0x0c,
    kPue = 0x10,
    kDs = 0x14,
    kRiseIe = 0x18,
    kRiseIp = 0x1c,
    kFallIe = 0x20,
    kFallIp = 0x24,
    kHighIe = 0x28,
    kHighIp = 0x2c,
    kLowIe = 0x30,
    kLowIp = 0x34,
    kIofEn = 0x38,
    kIofSel = 0x3c,
    kOutXor = 0x40,
  };

  // One interrupt line per pin (at most 32).
  explicit SifiveGpio(std::vector<std::shared_ptr<IrqLine>> pin_irqs);

  std::string_view name() const override { return "gpio"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // The host side: the level on an input pin (the power button pressed = high). Any thread.
  void set_pin(unsigned pin, bool level);

  // Snapshot (sifive_gpio_state.cpp): every register, the host-driven pin levels and the line levels.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override;
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override;
  unsigned pins() const { return static_cast<unsigned>(m_irqs.size()); }

 private:
  uint32_t read_locked(uint32_t reg);
  void write_locked(uint32_t reg, uint32_t value);
  void update_locked();

  std::mutex m_lock;
  std::vector<std::shared_ptr<IrqLine>> m_irqs;
  uint32_t m_mask;          // the pins that exist
  uint32_t m_external = 0;  // what the host drives on the pins
  uint32_t m_input_en = 0, m_output_en = 0, m_output_val = 0, m_pue = 0, m_ds = 0;
  uint32_t m_rise_ie = 0, m_rise_ip = 0, m_fall_ie = 0, m_fall_ip = 0;
  uint32_t m_high_ie = 0, m_high_ip = 0, m_low_ie = 0, m_low_ip = 0;
  uint32_t m_iof_en = 0, m_iof_sel = 0, m_out_xor = 0;
  uint32_t m_value = 0;   // the pins' current level as the input stage sees it
  uint32_t m_raised = 0;  // interrupt lines currently asserted
};

}  // namespace hw::riscv
