#include "hw/x86/acpi_power_button.h"

#include <doctest/doctest.h>

using namespace hw;

TEST_CASE("acpi power button: each press is one rising edge, the line left low") {
  struct Line final : IrqLine {
    bool level = false;
    int rises = 0;
    void set_level(bool asserted) override {
      if (asserted && !level) ++rises;
      level = asserted;
    }
  };
  auto line = std::make_shared<Line>();
  x86::AcpiPowerButton button(line);
  button.press();
  CHECK(line->rises == 1);
  CHECK_FALSE(line->level);
  button.press();
  CHECK(line->rises == 2);
  x86::AcpiPowerButton unwired(nullptr);
  unwired.press();  // no line: nothing to do, nothing breaks
}
