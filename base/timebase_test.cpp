#include "base/timebase.h"

#include <doctest/doctest.h>

#include <thread>

TEST_CASE("timebase: a paused clock stands still and resumes from where it stopped") {
  base::Timebase tb(1'000'000'000);  // 1 tick per ns
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  tb.pause();
  const uint64_t frozen = tb.now();
  CHECK(tb.paused());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(tb.now() == frozen);
  // A deadline cannot be reached while paused: waiters are told to look again soon.
  CHECK(tb.time_of(frozen + 1) > std::chrono::steady_clock::now());
  tb.resume();
  const uint64_t after = tb.now();
  CHECK(after >= frozen);
  CHECK(after - frozen < 40'000'000);  // the 50 ms paused did not count
  // time_of stays the inverse of now() across the pause.
  auto when = tb.time_of(after + 1'000'000);
  CHECK(tb.ticks_at(when) >= after + 1'000'000 - 1);
  CHECK(tb.ticks_at(when) <= after + 1'000'000 + 1);
  tb.resume();  // idempotent
  CHECK_FALSE(tb.paused());
}
