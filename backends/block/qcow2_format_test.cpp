#include "backends/block/qcow2_format.h"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

using namespace backends::block::qcow2;

namespace {
// A minimal valid version 3 header: 64 KiB clusters, 1 MiB disk.
std::vector<uint8_t> header() {
  std::vector<uint8_t> h(4096, 0);
  store_be32(&h[0], kMagic);
  store_be32(&h[4], 3);
  store_be32(&h[20], 16);
  store_be64(&h[24], 1 << 20);
  store_be32(&h[36], 1);
  store_be64(&h[40], 3 * 65536);
  store_be64(&h[48], 65536);
  store_be32(&h[56], 1);
  store_be32(&h[96], 4);
  store_be32(&h[100], 112);
  return h;
}
std::string error_of(const std::vector<uint8_t>& h) {
  auto parsed = parse_header(h);
  REQUIRE_FALSE(parsed.ok());
  return parsed.error().message;
}
}  // namespace

TEST_CASE("qcow2 header: a valid header parses") {
  auto parsed = parse_header(header());
  REQUIRE(parsed.ok());
  CHECK(parsed->cluster_size() == 65536);
  CHECK(parsed->refcount_bits() == 16);
  CHECK(parsed->l1_needed() == 1);
}

TEST_CASE("qcow2 header: bad magic, version and cluster bits") {
  auto h = header();
  h[0] = 'X';
  CHECK(error_of(h).find("magic") != std::string::npos);
  h = header();
  store_be32(&h[4], 4);
  CHECK(error_of(h).find("version 4") != std::string::npos);
  h = header();
  store_be32(&h[20], 30);
  CHECK(error_of(h).find("cluster_bits") != std::string::npos);
  CHECK(error_of(std::vector<uint8_t>(10, 0)).find("shorter") != std::string::npos);
}

TEST_CASE("qcow2 header: L1 too small, misaligned tables, huge refcount table") {
  auto h = header();
  store_be64(&h[24], 1ull << 40);  // 1 TiB needs more than one L1 entry
  CHECK(error_of(h).find("L1 table too small") != std::string::npos);
  h = header();
  store_be64(&h[40], 1000);
  CHECK(error_of(h).find("L1 table offset") != std::string::npos);
  h = header();
  store_be32(&h[56], 1000000);
  CHECK(error_of(h).find("refcount table size") != std::string::npos);
  h = header();
  store_be32(&h[36], 0xffffffff);
  CHECK(error_of(h).find("32 MiB") != std::string::npos);
}

TEST_CASE("qcow2 header: encryption and unknown incompatible bits refused, names from the table") {
  auto h = header();
  store_be32(&h[32], 1);
  CHECK(error_of(h).find("encrypted") != std::string::npos);
  h = header();
  store_be64(&h[72], 1ull << 9);
  // Feature name table extension naming bit 9.
  store_be32(&h[112], 0x6803f857);
  store_be32(&h[116], 48);
  h[120] = 0;
  h[121] = 9;
  std::memcpy(&h[122], "quantum entanglement", 20);
  std::string message = error_of(h);
  CHECK(message.find("quantum entanglement (bit 9)") != std::string::npos);
}

TEST_CASE("qcow2 header: backing file name and format extension") {
  auto h = header();
  store_be64(&h[8], 512);
  store_be32(&h[16], 8);
  std::memcpy(&h[512], "base.raw", 8);
  store_be32(&h[112], 0xe2792aca);
  store_be32(&h[116], 3);
  std::memcpy(&h[120], "raw", 3);
  auto parsed = parse_header(h);
  REQUIRE(parsed.ok());
  CHECK(parsed->backing_file == "base.raw");
  CHECK(parsed->backing_format == "raw");
  store_be32(&h[16], 4000);  // name runs past the header
  CHECK_FALSE(parse_header(h).ok());
}

TEST_CASE("qcow2 header: extension running past the header is refused") {
  auto h = header();
  store_be32(&h[112], 0x12345678);
  store_be32(&h[116], 100000);
  CHECK(error_of(h).find("extension") != std::string::npos);
}
