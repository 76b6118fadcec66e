// ACPI sleep control and status registers of a hardware-reduced ACPI platform (ACPI 6.5 §4.8.3.7),
// two byte-wide I/O ports the FADT points at; with the DSDT's \_S5 they are how Linux's `poweroff`
// turns the machine off (acpi_power_off -> acpi_hw_extended_sleep). Without them a guest's poweroff
// only halts its CPUs ("reboot: System halted") and vmlaunch never exits.
#pragma once

#include "hw/device.h"
#include "hw/machine.h"

namespace hw::x86 {

class AcpiSleep final : public Device {
 public:
  static constexpr uint16_t kPort = 0x600;  // control at kPort, status at kPort + 1
  static constexpr uint8_t kS5Type = 5;     // SLP_TYP of \_S5 in the DSDT (tables.cpp)
  explicit AcpiSleep(PowerController& power) : m_power(power) {}
  std::string_view name() const override { return "acpi-sleep"; }
  // Status reads 0 (WAK_STS clear: nothing woke us); control reads 0.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  // Control: SLP_EN (bit 5) with SLP_TYP (bits 2-4) = S5 powers off with status 0; other sleep
  // states are not offered (the DSDT names only \_S5) and are ignored. Status writes clear nothing.
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  PowerController& m_power;
};

}  // namespace hw::x86
