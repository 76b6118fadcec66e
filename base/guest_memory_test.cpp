#include "base/guest_memory.h"

#include <doctest/doctest.h>

TEST_CASE("guest memory serves accesses only inside a region") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0x80000000, 0x10000).ok());
  CHECK(memory.write_le<uint32_t>(0x80000000, 0xdeadbeef));
  CHECK(memory.read_le<uint32_t>(0x80000000).value() == 0xdeadbeef);
  CHECK(memory.read_le<uint64_t>(0x8000fff8).has_value());
  CHECK_FALSE(memory.read_le<uint64_t>(0x8000fffc).has_value());  // straddles the end
  CHECK_FALSE(memory.read_le<uint8_t>(0x7fffffff).has_value());
  CHECK_FALSE(memory.slice(0x80000010, UINT64_MAX).has_value());  // length overflow
  CHECK_FALSE(memory.slice(UINT64_MAX, 2).has_value());
}

TEST_CASE("guest memory rejects overlapping and empty regions") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0x1000, 0x2000).ok());
  CHECK_FALSE(memory.add_region(0x2000, 0x1000).ok());
  CHECK_FALSE(memory.add_region(0x0, 0).ok());
  CHECK_FALSE(memory.add_region(UINT64_MAX - 0xfff, 0x2000).ok());
  CHECK(memory.add_region(0x3000, 0x1000).ok());
}
