#include "config/did_you_mean.h"

#include <doctest/doctest.h>

using namespace config;

TEST_CASE("edit_distance counts transpositions as one edit") {
  CHECK(edit_distance("memory", "memory") == 0);
  CHECK(edit_distance("memroy", "memory") == 1);
  CHECK(edit_distance("drvier", "driver") == 1);
  CHECK(edit_distance("cnt", "count") == 2);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("KVM", "kvm") == 0);
}

TEST_CASE("closest_match suggests close names and extensions, nothing for far ones") {
  std::vector<std::string> keys = {"arch", "type", "memory"};
  CHECK(closest_match("memroy", keys) == "memory");
  CHECK(closest_match("tpye", keys) == "type");
  CHECK_FALSE(closest_match("bananas", keys));
  std::vector<std::string> drivers = {"virtio-blk-pci", "virtio-net-pci", "ns16550"};
  CHECK(closest_match("virtio-blk", drivers) == "virtio-blk-pci");
  CHECK(closest_match("ns1655", drivers) == "ns16550");
}

TEST_CASE("suggestion_hint falls back to the list of known names") {
  CHECK(suggestion_hint("disk1", {"disk0"}) == "did you mean \"disk0\"?");
  CHECK(suggestion_hint("zzz", {"a", "b"}) == "known: a, b");
  CHECK(suggestion_hint("zzz", {}) == "");
}
