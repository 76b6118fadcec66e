#include "backends/rng/random.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <vector>

using namespace backends::rng;

TEST_CASE("random: /dev/urandom fills the whole buffer") {
  auto rng = FileRng::open();
  REQUIRE(rng.ok());
  std::vector<uint8_t> a(4096, 0), b(4096, 0);
  REQUIRE((*rng)->fill(a).ok());
  REQUIRE((*rng)->fill(b).ok());
  CHECK(a != b);
}

TEST_CASE("random: a regular file is read in order and running out is an error") {
  std::string path = std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") + "/entropy.bin";
  {
    std::ofstream out(path, std::ios::binary);
    out << "abcdef";
  }
  auto rng = FileRng::open(path);
  REQUIRE(rng.ok());
  std::vector<uint8_t> four(4);
  REQUIRE((*rng)->fill(four).ok());
  CHECK(std::string(four.begin(), four.end()) == "abcd");
  CHECK_FALSE((*rng)->fill(four).ok());
}

TEST_CASE("random: missing file names the path") {
  auto rng = FileRng::open("/nonexistent/entropy");
  REQUIRE_FALSE(rng.ok());
  CHECK(rng.error().message.find("/nonexistent/entropy") != std::string::npos);
}

TEST_CASE("builtin: getrandom fills") {
  GetrandomRng rng;
  std::vector<uint8_t> a(64, 0);
  REQUIRE(rng.fill(a).ok());
  CHECK(a != std::vector<uint8_t>(64, 0));
}
