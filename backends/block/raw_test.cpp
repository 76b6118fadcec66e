#include "backends/block/raw.h"

#include <doctest/doctest.h>

#include <cstdlib>

#include "backends/block/test_util.h"

using namespace backends::block;
using namespace backends::block::testing;

TEST_CASE("raw: write, read back, flush") {
  std::string path = scratch_dir() + "/disk.raw";
  write_file(path, std::vector<uint8_t>(1 << 20, 0));
  auto disk = RawBackend::open(path, {});
  REQUIRE(disk.ok());
  CHECK((*disk)->size() == 1 << 20);
  auto data = pattern(4096, 10000, 1);
  REQUIRE((*disk)->write(4096, data).ok());
  std::vector<uint8_t> back(10000);
  REQUIRE((*disk)->read(4096, back).ok());
  CHECK(back == data);
  CHECK((*disk)->flush().ok());
  auto file = read_file(path);
  CHECK(std::equal(data.begin(), data.end(), file.begin() + 4096));
}

TEST_CASE("raw: read-only refuses writes; access past the end fails") {
  std::string path = scratch_dir() + "/disk.raw";
  write_file(path, std::vector<uint8_t>(8192, 7));
  auto disk = RawBackend::open(path, {true, false});
  REQUIRE(disk.ok());
  CHECK((*disk)->read_only());
  uint8_t byte = 1;
  CHECK_FALSE((*disk)->write(0, {&byte, 1}).ok());
  std::vector<uint8_t> big(4096);
  CHECK_FALSE((*disk)->read(8000, big).ok());
  CHECK((*disk)->read(4096, big).ok());
}

TEST_CASE("raw: missing file is an error naming it") {
  auto disk = RawBackend::open("/nonexistent/disk.raw", {});
  REQUIRE_FALSE(disk.ok());
  CHECK(disk.error().message.find("/nonexistent/disk.raw") != std::string::npos);
}

TEST_CASE("raw: discard and write_zeroes read back as zeros") {
  std::string path = scratch_dir() + "/disk.raw";
  write_file(path, std::vector<uint8_t>(1 << 20, 0xaa));
  auto disk = RawBackend::open(path, {});
  REQUIRE(disk.ok());
  REQUIRE((*disk)->write_zeroes(4096, 8192).ok());
  REQUIRE((*disk)->discard(65536, 65536).ok());
  std::vector<uint8_t> back(8192);
  REQUIRE((*disk)->read(4096, back).ok());
  CHECK(back == std::vector<uint8_t>(8192, 0));
  std::vector<uint8_t> edge(2);
  REQUIRE((*disk)->read(4095, edge).ok());
  CHECK(edge[0] == 0xaa);
  CHECK(edge[1] == 0);
  CHECK((*disk)->size() == 1 << 20);
}

TEST_CASE("raw: O_DIRECT with unaligned buffers and offsets") {
  std::string path = scratch_dir() + "/disk.raw";
  write_file(path, pattern(0, 1 << 20, 2));
  auto disk = RawBackend::open(path, {false, true});
  if (!disk.ok()) {
    // tmpfs has no O_DIRECT; that is the filesystem's answer, not ours.
    CHECK(disk.error().message.find("Invalid argument") != std::string::npos);
    return;
  }
  auto data = pattern(777, 5000, 3);
  REQUIRE((*disk)->write(777, data).ok());
  std::vector<uint8_t> back(5000 + 1);
  REQUIRE((*disk)->read(777, std::span<uint8_t>(back).subspan(1)).ok());
  CHECK(std::equal(data.begin(), data.end(), back.begin() + 1));
  std::vector<uint8_t> before(10);
  REQUIRE((*disk)->read(767, before).ok());
  auto expected = pattern(767, 10, 2);
  CHECK(before == expected);
}

#include "backends/block/snapshot.h"

TEST_CASE("snapshot: guest writes are visible but never reach the image") {
  std::string path = scratch_dir() + "/disk.raw";
  auto original = pattern(0, 1 << 20, 4);
  write_file(path, original);
  std::shared_ptr<backends::BlockBackend> image = RawBackend::open(path, {true, false}).value();
  auto snap = SnapshotBackend::create(image);
  REQUIRE(snap.ok());
  auto data = pattern(5000, 10000, 9);
  REQUIRE((*snap)->write(5000, data).ok());
  REQUIRE((*snap)->write_zeroes(100000, 4096).ok());
  std::vector<uint8_t> all(1 << 20);
  REQUIRE((*snap)->read(0, all).ok());
  auto expected = original;
  std::copy(data.begin(), data.end(), expected.begin() + 5000);
  std::fill(expected.begin() + 100000, expected.begin() + 104096, 0);
  CHECK(all == expected);
  snap->reset();
  CHECK(read_file(path) == original);
}

// Two machines on one writable disk corrupt it: the second open is refused while the first is
// open, readers share, and closing releases the lock.
TEST_CASE("image locks: one writer or many readers, per open") {
  std::string path = scratch_dir() + "/locked.raw";
  write_file(path, std::vector<uint8_t>(8192, 0));
  {
    auto writer = RawBackend::open(path, {});
    REQUIRE(writer.ok());
    auto second = RawBackend::open(path, {});
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().message ==
          path +
              ": in use by another process (it holds the image for writing); a writable "
              "image is used by one machine at a time (use snapshot: true or a qcow2 "
              "overlay to share it)");
    auto reader = RawBackend::open(path, {true, false});
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().message.find("stop the machine that writes it first") != std::string::npos);
  }
  {
    auto reader1 = RawBackend::open(path, {true, false});
    auto reader2 = RawBackend::open(path, {true, false});
    REQUIRE(reader1.ok());
    CHECK(reader2.ok());
    auto writer = RawBackend::open(path, {});
    REQUIRE_FALSE(writer.ok());
    CHECK(writer.error().message.find("open for reading") != std::string::npos);
  }
  CHECK(RawBackend::open(path, {}).ok());  // all closed: free again
}
