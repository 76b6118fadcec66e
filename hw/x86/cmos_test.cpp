#include "hw/x86/cmos.h"

#include <doctest/doctest.h>

using hw::x86::Cmos;

namespace {

uint8_t get(Cmos& cmos, uint8_t index) {
  cmos.write(0, {&index, 1});
  uint8_t value = 0xee;
  cmos.read(1, {&value, 1});
  return value;
}
void put(Cmos& cmos, uint8_t index, uint8_t value) {
  cmos.write(0, {&index, 1});
  cmos.write(1, {&value, 1});
}

}  // namespace

TEST_CASE("cmos: the clock in BCD by default, binary and 12-hour when register B asks") {
  Cmos cmos([] { return std::time_t{1796649296}; });  // 2026-12-07 13:14:56 UTC, a Monday
  CHECK(get(cmos, Cmos::kSeconds) == 0x56);
  CHECK(get(cmos, Cmos::kMinutes) == 0x14);
  CHECK(get(cmos, Cmos::kHours) == 0x13);
  CHECK(get(cmos, Cmos::kDay) == 0x07);
  CHECK(get(cmos, Cmos::kMonth) == 0x12);
  CHECK(get(cmos, Cmos::kYear) == 0x26);
  CHECK(get(cmos, Cmos::kCentury) == 0x20);
  CHECK(get(cmos, Cmos::kWeekday) == 2);
  CHECK((get(cmos, Cmos::kRegA) & 0x80) == 0);  // never mid-update
  CHECK(get(cmos, Cmos::kRegD) == 0x80);
  put(cmos, Cmos::kRegB, Cmos::kRegBBinary);  // binary, 12 hour
  CHECK(get(cmos, Cmos::kMinutes) == 14);
  CHECK(get(cmos, Cmos::kHours) == (0x80 | 1));
  put(cmos, Cmos::kSeconds, 0);  // the guest cannot set the time
  CHECK(get(cmos, Cmos::kSeconds) == 56);
}

TEST_CASE("cmos: memory sizes and CPU count where SeaBIOS reads them; other bytes are RAM") {
  Cmos cmos;
  cmos.set_memory(uint64_t{3} << 30, uint64_t{1} << 30);
  cmos.set_cpus(4);
  CHECK((get(cmos, Cmos::kExtMem2Low) | get(cmos, Cmos::kExtMem2High) << 8) ==
        ((3u << 30) - (16u << 20)) / 65536);
  CHECK((get(cmos, Cmos::kExtMemLow) | get(cmos, Cmos::kExtMemHigh) << 8) == 0xfc00);
  CHECK((get(cmos, Cmos::kHighMem) | get(cmos, Cmos::kHighMem + 1) << 8 |
         get(cmos, Cmos::kHighMem + 2) << 16) == (1u << 30) / 65536);
  CHECK(get(cmos, Cmos::kSmpCount) == 3);
  put(cmos, 0x3d, 0x21);
  CHECK(get(cmos, 0x3d) == 0x21);
  // The NMI bit of the index is masked off: 0x80|0x3d is 0x3d.
  CHECK(get(cmos, 0x80 | 0x3d) == 0x21);
}

TEST_CASE("cmos: hostile offsets and widths") {
  Cmos cmos;
  uint8_t big[16] = {};
  const uint8_t bytes[4] = {0xff, 1, 2, 3};
  cmos.write(0, bytes);  // index 0x7f
  cmos.write(5, bytes);
  cmos.write(1, {});
  cmos.read(9, big);
  cmos.read(1, {});
  cmos.read(1, big);
  CHECK(big[0] == 0);  // 0x7f: RAM, never written
  CHECK(big[1] == 0);
}
