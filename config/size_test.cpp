#include "config/size.h"

#include <doctest/doctest.h>

#include "config/test_util.h"

using namespace config;
using config::testing::yaml;

TEST_CASE("parse_size: bytes and binary units") {
  CHECK(parse_size("1024") == 1024u);
  CHECK(parse_size("512MiB") == 512ull << 20);
  CHECK(parse_size("512M") == 512ull << 20);
  CHECK(parse_size("512MB") == 512ull << 20);
  CHECK(parse_size("512 MiB") == 512ull << 20);
  CHECK(parse_size("2G") == 2ull << 30);
  CHECK(parse_size("2g") == 2ull << 30);
  CHECK(parse_size("4k") == 4096u);
  CHECK(parse_size("1T") == 1ull << 40);
  CHECK(parse_size("7B") == 7u);
}

TEST_CASE("parse_size: rejects junk and overflow") {
  CHECK_FALSE(parse_size(""));
  CHECK_FALSE(parse_size("MiB"));
  CHECK_FALSE(parse_size("-1"));
  CHECK_FALSE(parse_size("1.5G"));
  CHECK_FALSE(parse_size("12 XB"));
  CHECK_FALSE(parse_size("2  G"));
  CHECK_FALSE(parse_size("99999999999999999999"));
  CHECK_FALSE(parse_size("17179869184G"));  // 2^34 GiB = 2^64 bytes
  CHECK(parse_size("17179869183G") == 17179869183ull << 30);
}

TEST_CASE("check_sizes: invalid and zero sizes in size fields") {
  Node doc = yaml("machine: {arch: riscv64, type: virt, memory: 512XB}\n", "m.yaml");
  Diagnostics diagnostics = check_sizes(doc);
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].to_string() ==
        "m.yaml:1:46: machine.memory: invalid size \"512XB\" (write bytes, or a number with K, M, G or T: "
        "512MiB, "
        "2G)");
  CHECK(check_sizes(yaml("machine: {memory: 0G}"))[0].message == "size must be greater than zero");
  CHECK(check_sizes(yaml("machine: {memory: 2G}")).empty());
  CHECK(check_sizes(yaml("machine: {memory: 4096}")).empty());
  // Not a size field: not checked.
  CHECK(check_sizes(yaml("name: 512XB")).empty());
}

TEST_CASE("size_value: integers and strings") {
  CHECK(size_value(Node::integer(4096)) == 4096u);
  CHECK(size_value(Node::string("1K")) == 1024u);
  CHECK_FALSE(size_value(Node::integer(0)));
  CHECK_FALSE(size_value(Node::boolean(true)));
}
