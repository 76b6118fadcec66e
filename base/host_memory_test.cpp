#include "base/host_memory.h"

#include <doctest/doctest.h>

namespace {

const char* kMeminfo =
    "MemTotal:       24000000 kB\n"
    "MemFree:         1000000 kB\n"
    "MemAvailable:   22437888 kB\n"
    "SwapTotal:       2097152 kB\n"
    "SwapFree:        2097152 kB\n";

}  // namespace

TEST_CASE("host memory: /proc/meminfo is read for available memory and free swap") {
  auto host = base::parse_meminfo(kMeminfo);
  REQUIRE(host.ok());
  CHECK(host->available == uint64_t{22437888} << 10);
  CHECK(host->swap_free == uint64_t{2} << 30);
  CHECK_FALSE(base::parse_meminfo("MemTotal: 1 kB\n").ok());
  CHECK(base::host_memory().ok());  // this host's own
}

// `memory: 1T` on a 23 GB host was accepted and the VMM grew until the host suffered.
TEST_CASE("host memory: a guest larger than the host can back is refused with the numbers") {
  base::HostMemory host = *base::parse_meminfo(kMeminfo);
  CHECK(base::check_guest_memory(uint64_t{512} << 20, host, "").ok());
  CHECK(base::check_guest_memory(host.available + host.swap_free, host, "").ok());
  auto big = base::check_guest_memory(uint64_t{1} << 40, host, "pass --allow-overcommit");
  REQUIRE_FALSE(big.ok());
  CHECK(big.error().message ==
        "memory: 1 TiB is more than this host can back (21.4 GiB available, 2 GiB free swap); lower it, or "
        "pass "
        "--allow-overcommit");
  CHECK(base::human_bytes(512) == "512 bytes");
  CHECK(base::human_bytes(uint64_t{3} << 29) == "1.5 GiB");
}
