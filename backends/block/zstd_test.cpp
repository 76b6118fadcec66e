#include "backends/block/zstd.h"

#include <doctest/doctest.h>

#include "backends/block/image.h"
#include "backends/block/test_util.h"
#include "tests/skip.h"

using namespace backends::block;
using namespace backends::block::testing;

namespace {
constexpr uint64_t kMiB = 1 << 20;

// A raw image with data, long zero runs (sparse in the cache) and a short tail.
std::vector<uint8_t> make_base(size_t size) {
  auto data = pattern(0, size, 11);
  std::fill(data.begin() + size / 4, data.begin() + size / 2, 0);
  return data;
}

void check_random_reads(backends::BlockBackend& image, const std::vector<uint8_t>& expected) {
  REQUIRE(image.size() == expected.size());
  Rng rng(7);
  for (int i = 0; i < 200; ++i) {
    uint64_t length = 1 + rng.below(300000);
    uint64_t offset = rng.below(expected.size() - length);
    std::vector<uint8_t> back(length);
    REQUIRE(image.read(offset, back).ok());
    REQUIRE(std::equal(back.begin(), back.end(), expected.begin() + offset));
  }
  std::vector<uint8_t> past(10);
  CHECK_FALSE(image.read(expected.size() - 5, past).ok());
}
}  // namespace

TEST_CASE("zstd: multi-frame image is indexed and reads randomly") {
  std::string dir = scratch_dir();
  auto base = make_base(5 * kMiB + 1234);
  write_file(dir + "/base.raw", base);
  REQUIRE(zstd_compress_frames(dir + "/base.raw", dir + "/base.raw.zst", 1 * kMiB).ok());
  auto image = ZstdBackend::open(dir + "/base.raw.zst");
  REQUIRE(image.ok());
  CHECK((*image)->indexed());
  CHECK((*image)->frame_count() == 6);
  check_random_reads(**image, base);
}

TEST_CASE("zstd: single-frame image from the zstd tool is decompressed once and reads randomly") {
  if (!have("zstd")) VML_SKIP("zstd tool not installed");
  std::string dir = scratch_dir();
  auto base = make_base(3 * kMiB);
  write_file(dir + "/base.raw", base);
  REQUIRE(run("zstd -q -f " + dir + "/base.raw -o " + dir + "/base.raw.zst") == 0);
  auto image = ZstdBackend::open(dir + "/base.raw.zst");
  REQUIRE(image.ok());
  CHECK_FALSE((*image)->indexed());
  check_random_reads(**image, base);
}

TEST_CASE("zstd: writes are refused and garbage is not an image") {
  std::string dir = scratch_dir();
  write_file(dir + "/base.raw", std::vector<uint8_t>(4096, 1));
  REQUIRE(zstd_compress_frames(dir + "/base.raw", dir + "/b.zst", 4096).ok());
  auto image = ZstdBackend::open(dir + "/b.zst");
  REQUIRE(image.ok());
  uint8_t byte = 0;
  CHECK_FALSE((*image)->write(0, {&byte, 1}).ok());
  write_file(dir + "/junk.zst", std::vector<uint8_t>{0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3});
  auto junk = ZstdBackend::open(dir + "/junk.zst");
  CHECK_FALSE(junk.ok());
  auto rw = open_image(dir + "/b.zst", {"zstd", false, false});
  REQUIRE_FALSE(rw.ok());
  CHECK(rw.error().message.find("read-only") != std::string::npos);
}

TEST_CASE("zstd as the backing of a qcow2 overlay (the shipped-base workflow)") {
  if (!have("qemu-img")) VML_SKIP("qemu-img not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  auto base = make_base(4 * kMiB);
  write_file(dir + "/base.raw", base);
  REQUIRE(zstd_compress_frames(dir + "/base.raw", dir + "/base.raw.zst", kMiB).ok());
  // -u: qemu-img cannot size a .zst itself; the overlay records the size explicitly.
  REQUIRE(run("cd " + dir + " && qemu-img create -q -u -f qcow2 -b base.raw.zst -F raw ov.qcow2 4M") == 0);
  auto image = open_image(dir + "/ov.qcow2", {"qcow2", false, false});
  REQUIRE_MESSAGE(image.ok(), (image.ok() ? "" : image.error().message));
  auto expected = base;
  auto data = pattern(100000, 5000, 3);
  REQUIRE((*image)->write(100000, data).ok());
  std::copy(data.begin(), data.end(), expected.begin() + 100000);
  check_random_reads(**image, expected);
  image->reset();
  CHECK(run("qemu-img check -q " + dir + "/ov.qcow2") == 0);
}
