#include "hw/x86/acpi_sleep.h"

#include <doctest/doctest.h>

using namespace hw;

TEST_CASE("acpi sleep: SLP_EN with the S5 type powers off with status 0; anything else does nothing") {
  PowerController power;
  x86::AcpiSleep sleep(power);
  uint8_t status = 0xff;
  sleep.read(1, {&status, 1});
  CHECK(status == 0);
  // S5 type without SLP_EN, S3 with SLP_EN, S5 written to the status register: ignored.
  for (auto [offset, value] :
       {std::pair<uint64_t, uint8_t>{0, 5 << 2}, {0, (3 << 2) | 0x20}, {1, (5 << 2) | 0x20}}) {
    sleep.write(offset, {&value, 1});
    CHECK_FALSE(power.stopping());
  }
  // What Linux's acpi_hw_extended_sleep writes for \_S5 = {5, ...}: (5 << 2) | SLP_EN.
  const uint8_t off = (5 << 2) | 0x20;
  sleep.write(0, {&off, 1});
  REQUIRE(power.stopping());
  RunOutcome outcome = power.wait();
  CHECK(outcome.kind == RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 0);
}
