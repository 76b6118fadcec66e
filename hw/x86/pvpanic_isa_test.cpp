#include "hw/x86/pvpanic_isa.h"

#include <doctest/doctest.h>

using namespace hw;

TEST_CASE("pvpanic isa: reads offer PANICKED and CRASH_LOADED; only a PANICKED write is the event") {
  int panics = 0;
  x86::PvPanicIsa pvpanic([&] { ++panics; });
  uint8_t offered[2] = {0xff, 0xff};
  pvpanic.read(0, offered);
  CHECK(offered[0] == 3);
  CHECK(offered[1] == 0);
  const uint8_t crash_loaded = 2, panicked = 1, both = 3;
  pvpanic.write(0, {&crash_loaded, 1});
  pvpanic.write(1, {&panicked, 1});  // outside the register
  pvpanic.write(0, {});
  CHECK(panics == 0);
  pvpanic.write(0, {&panicked, 1});
  pvpanic.write(0, {&both, 1});
  CHECK(panics == 2);
}
