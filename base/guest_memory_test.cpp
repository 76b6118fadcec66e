#include "base/guest_memory.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

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

TEST_CASE("shareable guest memory is a sealed memfd another mapping sees") {
  base::GuestMemory memory;
  memory.set_shareable(true);
  auto region = memory.add_region(0x80000000, 0x10000);
  REQUIRE(region.ok());
  REQUIRE(region.value().fd >= 0);
  CHECK((fcntl(region.value().fd, F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((fcntl(region.value().fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW)) ==
        (F_SEAL_SHRINK | F_SEAL_GROW));
  CHECK(ftruncate(region.value().fd, 0x1000) != 0);  // a backend cannot shrink it under us
  // What a vhost-user backend does with the descriptor: map it and see (and change) guest RAM.
  void* other = mmap(nullptr, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED, region.value().fd, 0);
  REQUIRE(other != MAP_FAILED);
  CHECK(memory.write_le<uint32_t>(0x80000100, 0x12345678));
  uint32_t seen;
  std::memcpy(&seen, static_cast<uint8_t*>(other) + 0x100, 4);
  CHECK(seen == 0x12345678);
  static_cast<uint8_t*>(other)[0x200] = 0xab;
  CHECK(memory.read_le<uint8_t>(0x80000200) == 0xab);
  munmap(other, 0x10000);
}

TEST_CASE("guest memory is private anonymous memory unless made shareable") {
  base::GuestMemory memory;
  auto region = memory.add_region(0x1000, 0x1000);
  REQUIRE(region.ok());
  CHECK(region.value().fd == -1);
}
