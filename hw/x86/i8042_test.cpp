#include "hw/x86/i8042.h"

#include <doctest/doctest.h>

using namespace hw;

TEST_CASE("i8042: 0xfe on the command port resets; other writes do nothing") {
  PowerController power;
  x86::I8042 kbd(power);
  uint8_t status = 0xff;
  kbd.read(4, {&status, 1});
  CHECK(status == 0x04);
  const uint8_t other = 0xad;
  kbd.write(4, {&other, 1});
  kbd.write(0, {&other, 1});
  CHECK_FALSE(power.stopping());
  const uint8_t reset = 0xfe;
  kbd.write(4, {&reset, 1});
  REQUIRE(power.stopping());
  CHECK(power.wait().kind == RunOutcome::Kind::Reset);
}

TEST_CASE("debug exit: the value written becomes the exit status") {
  PowerController power;
  x86::DebugExit port(power);
  const uint8_t value[2] = {42, 0};
  port.write(1, {value, 1});  // not the port itself
  CHECK_FALSE(power.stopping());
  port.write(0, {value, 2});
  RunOutcome outcome = power.wait();
  CHECK(outcome.kind == RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 42);
}
