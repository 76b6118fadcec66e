#include "base/result.h"

#include <doctest/doctest.h>

namespace {
base::ErrorOr<int> parse_positive(int x) {
  if (x <= 0) return base::fail(base::Error("not positive"));
  return x;
}
base::ErrorOr<int> doubled(int x) {
  int v = TRY(parse_positive(x));
  return v * 2;
}
base::Result<void, base::Error> check(int x) {
  TRY(parse_positive(x));
  return {};
}
}  // namespace

TEST_CASE("TRY propagates errors and unwraps values") {
  CHECK(doubled(21).value() == 42);
  auto bad = doubled(-1);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "not positive");
  CHECK(check(1).ok());
  CHECK_FALSE(check(0).ok());
  CHECK(bad.error().with_context("reading x").message == "reading x: not positive");
}
