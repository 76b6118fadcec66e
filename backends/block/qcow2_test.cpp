// qcow2 read/write checked against the reference implementation: images are made by qemu-img,
// written by us, then `qemu-img check` must find no errors and `qemu-img compare` must agree with
// a raw file holding the expected bytes.
#include "backends/block/qcow2.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/block/image.h"
#include "backends/block/test_util.h"
#include "tests/skip.h"

using namespace backends::block;
using namespace backends::block::testing;

namespace {

constexpr uint64_t kMiB = 1 << 20;

bool have_qemu() {
  return have("qemu-img") && have("qemu-io");
}

// Applies the same writes to the image and to an in-memory model of the disk.
struct Model {
  std::shared_ptr<backends::BlockBackend> image;
  std::vector<uint8_t> expected;

  void write(uint64_t offset, size_t length, uint32_t seed) {
    auto data = pattern(offset, length, seed);
    auto r = image->write(offset, data);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    std::copy(data.begin(), data.end(), expected.begin() + offset);
  }
  void zero(uint64_t offset, uint64_t length) {
    REQUIRE(image->write_zeroes(offset, length).ok());
    std::fill(expected.begin() + offset, expected.begin() + offset + length, 0);
  }
  void verify_reads() {
    std::vector<uint8_t> all(expected.size());
    REQUIRE(image->read(0, all).ok());
    CHECK(all == expected);
  }
};

// After the image is closed: qemu-img check clean and compare equal to `expected`.
void referee(const std::string& dir, const std::string& image, const std::vector<uint8_t>& expected) {
  CHECK(run("qemu-img check -q " + image) == 0);
  write_file(dir + "/expected.raw", expected);
  CHECK(run("qemu-img compare -q -f qcow2 -F raw " + image + " " + dir + "/expected.raw") == 0);
}

std::shared_ptr<backends::BlockBackend> open_rw(const std::string& path) {
  auto image = open_image(path, {"qcow2", false, false});
  REQUIRE_MESSAGE(image.ok(), (image.ok() ? "" : image.error().message));
  return *image;
}

void set_header_u64(const std::string& path, uint64_t offset, uint64_t value) {
  auto bytes = read_file(path);
  for (int i = 0; i < 8; ++i) bytes[offset + i] = static_cast<uint8_t>(value >> (8 * (7 - i)));
  write_file(path, bytes);
}

}  // namespace

TEST_CASE("qcow2 overlay on a raw base: reads the base, writes stay in the overlay") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  auto base = pattern(0, 8 * kMiB, 7);
  write_file(dir + "/base.raw", base);
  REQUIRE(run("cd " + dir + " && qemu-img create -q -f qcow2 -b base.raw -F raw overlay.qcow2") == 0);
  {
    Model m{open_rw(dir + "/overlay.qcow2"), base};
    CHECK(m.image->size() == 8 * kMiB);
    m.verify_reads();
    m.write(100, 1000, 1);                 // partial first cluster: copy-on-write from the base
    m.write(65536 - 10, 20, 2);            // straddles two clusters
    m.write(3 * 65536, 65536, 3);          // exactly one cluster
    m.write(5 * kMiB + 12345, 300000, 4);  // several clusters, unaligned ends
    m.write(8 * kMiB - 512, 512, 5);       // the last sector
    m.verify_reads();
    REQUIRE(m.image->flush().ok());
    base = read_file(dir + "/base.raw");
    CHECK(base == pattern(0, 8 * kMiB, 7));  // the base is untouched
    m.image.reset();
    referee(dir, dir + "/overlay.qcow2", m.expected);
  }
}

TEST_CASE("qcow2 without backing: random writes match a model") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  REQUIRE(run("qemu-img create -q -f qcow2 " + dir + "/disk.qcow2 32M") == 0);
  Model m{open_rw(dir + "/disk.qcow2"), std::vector<uint8_t>(32 * kMiB, 0)};
  Rng rng(42);
  for (int i = 0; i < 300; ++i) {
    uint64_t length = 1 + rng.below(200000);
    uint64_t offset = rng.below(32 * kMiB - length);
    m.write(offset, length, static_cast<uint32_t>(i));
  }
  m.verify_reads();
  m.image.reset();
  referee(dir, dir + "/disk.qcow2", m.expected);
}

TEST_CASE("qcow2: reads what qemu-io wrote, and qemu-io reads what we wrote") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  std::string img = dir + "/disk.qcow2";
  REQUIRE(run("qemu-img create -q -f qcow2 " + img + " 4M") == 0);
  REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0xab 65536 131072' " + img + " >/dev/null") == 0);
  {
    auto image = open_rw(img);
    std::vector<uint8_t> back(131072 + 2);
    REQUIRE(image->read(65535, back).ok());
    CHECK(back.front() == 0);
    CHECK(back[1] == 0xab);
    CHECK(back[131072] == 0xab);
    CHECK(back.back() == 0);
    std::vector<uint8_t> cd(4096, 0xcd);
    REQUIRE(image->write(1 * kMiB, cd).ok());
  }
  CHECK(run("qemu-io -f qcow2 -c 'read -P 0xcd 1048576 4096' " + img + " | grep -q 'read 4096/4096'") == 0);
  CHECK(run("qemu-img check -q " + img) == 0);
}

TEST_CASE("qcow2: write_zeroes and discard over a backing file") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  auto base = pattern(0, 2 * kMiB, 9);
  write_file(dir + "/base.raw", base);
  REQUIRE(run("cd " + dir + " && qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2") == 0);
  Model m{open_rw(dir + "/ov.qcow2"), base};
  m.write(0, 4 * 65536, 1);
  m.zero(65536, 65536);         // whole cluster: zero flag, its space is released
  m.zero(5 * 65536 + 7, 1000);  // partial: copy-on-write with zeros
  m.zero(8 * 65536, 65536);     // whole unallocated cluster hiding the base
  // Discard of allocated whole clusters reads back as zeros (never as stale base data).
  REQUIRE(m.image->discard(2 * 65536, 65536).ok());
  std::fill(m.expected.begin() + 2 * 65536, m.expected.begin() + 3 * 65536, 0);
  m.verify_reads();
  m.image.reset();
  referee(dir, dir + "/ov.qcow2", m.expected);
}

TEST_CASE("qcow2: three-level backing chain") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  write_file(dir + "/base.raw", std::vector<uint8_t>(kMiB, 0x11));
  REQUIRE(run("cd " + dir + " && qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2") == 0);
  REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x22 65536 65536' " + dir + "/mid.qcow2 >/dev/null") == 0);
  REQUIRE(run("cd " + dir + " && qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2") == 0);
  auto top = open_rw(dir + "/top.qcow2");
  std::vector<uint8_t> a(1), b(1);
  REQUIRE(top->read(0, a).ok());
  REQUIRE(top->read(65536 + 5, b).ok());
  CHECK(a[0] == 0x11);
  CHECK(b[0] == 0x22);
  std::vector<uint8_t> c(10, 0x33);
  REQUIRE(top->write(65536 + 100, c).ok());
  top.reset();
  CHECK(run("qemu-img check -q " + dir + "/top.qcow2") == 0);
  CHECK(run("qemu-img check -q " + dir + "/mid.qcow2") == 0);
  CHECK(run("qemu-io -f qcow2 -c 'read -P 0x22 65536 100' -c 'read -P 0x33 65636 10' " + dir +
            "/top.qcow2 | grep -c 'read' | grep -q 2") == 0);
}

TEST_CASE("qcow2: a backing chain that loops is refused") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  REQUIRE(run("qemu-img create -q -f qcow2 " + dir + "/a.qcow2 1M") == 0);
  REQUIRE(run("cd " + dir + " && qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 b.qcow2") == 0);
  REQUIRE(run("cd " + dir + " && qemu-img rebase -u -f qcow2 -b b.qcow2 -F qcow2 a.qcow2") == 0);
  auto image = open_image(dir + "/b.qcow2", {"qcow2", true, false});
  REQUIRE_FALSE(image.ok());
  CHECK(image.error().message.find("backing file loop: " + dir + "/b.qcow2 -> " + dir + "/a.qcow2 -> " + dir +
                                   "/b.qcow2") != std::string::npos);
  // Writable, the loop is still called a loop (not "in use": the first open holds the lock).
  auto writable = open_image(dir + "/b.qcow2", {"qcow2", false, false});
  REQUIRE_FALSE(writable.ok());
  CHECK(writable.error().message.find("backing file loop") != std::string::npos);
}

TEST_CASE("qcow2: 512-byte clusters force new refcount blocks and a larger refcount table") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  REQUIRE(run("qemu-img create -q -f qcow2 -o cluster_size=512 " + dir + "/small.qcow2 24M") == 0);
  Model m{open_rw(dir + "/small.qcow2"), std::vector<uint8_t>(24 * kMiB, 0)};
  // 20 MiB of data in 512-byte clusters: far beyond the 8 MiB one refcount table cluster covers.
  for (uint64_t at = 0; at < 20 * kMiB; at += 256 * 1024) m.write(at, 256 * 1024, static_cast<uint32_t>(at));
  m.verify_reads();
  auto* qcow2 = dynamic_cast<Qcow2Backend*>(m.image.get());
  REQUIRE(qcow2 != nullptr);
  CHECK(qcow2->header().refcount_table_clusters > 1);
  m.image.reset();
  referee(dir, dir + "/small.qcow2", m.expected);
}

TEST_CASE("qcow2: refcount widths of 1 and 64 bits") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  for (int bits : {1, 64}) {
    std::string dir = scratch_dir();
    std::string img = dir + "/r.qcow2";
    REQUIRE(run("qemu-img create -q -f qcow2 -o refcount_bits=" + std::to_string(bits) +
                ",cluster_size=4096 " + img + " 8M") == 0);
    Model m{open_rw(img), std::vector<uint8_t>(8 * kMiB, 0)};
    for (int i = 0; i < 40; ++i) m.write(i * 200000 % (8 * kMiB - 5000), 5000, i);
    m.zero(0, 4096);
    m.image.reset();
    referee(dir, img, m.expected);
  }
}

TEST_CASE("qcow2 version 2 images are read and written") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  std::string img = dir + "/v2.qcow2";
  REQUIRE(run("qemu-img create -q -f qcow2 -o compat=0.10 " + img + " 4M") == 0);
  Model m{open_rw(img), std::vector<uint8_t>(4 * kMiB, 0)};
  m.write(1000, 70000, 1);
  m.zero(0, 65536);
  m.image.reset();
  referee(dir, img, m.expected);
}

TEST_CASE("qcow2: compressed clusters read back, and rewriting them keeps the image clean") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  std::vector<uint8_t> base(2 * kMiB);
  for (size_t i = 0; i < base.size(); ++i) base[i] = static_cast<uint8_t>((i / 100) % 7);  // compressible
  write_file(dir + "/base.raw", base);
  REQUIRE(run("qemu-img convert -q -c -f raw -O qcow2 " + dir + "/base.raw " + dir + "/c.qcow2") == 0);
  Model m{open_rw(dir + "/c.qcow2"), base};
  m.verify_reads();
  m.write(70000, 100, 3);
  m.image.reset();
  referee(dir, dir + "/c.qcow2", m.expected);
}

TEST_CASE("qcow2 header bits: corrupt and dirty images open read-only only") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  std::string img = dir + "/h.qcow2";
  for (uint64_t bit : {qcow2::kIncompatCorrupt, qcow2::kIncompatDirty}) {
    REQUIRE(run("qemu-img create -q -f qcow2 " + img + " 1M") == 0);
    set_header_u64(img, 72, bit);
    auto rw = open_image(img, {"qcow2", false, false});
    REQUIRE_FALSE(rw.ok());
    CHECK(rw.error().message.find("qemu-img check -r all") != std::string::npos);
    auto ro = open_image(img, {"qcow2", true, false});
    CHECK(ro.ok());
  }
}

TEST_CASE("qcow2 header bits: unknown incompatible features are refused by name") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  std::string img = dir + "/u.qcow2";
  REQUIRE(run("qemu-img create -q -f qcow2 " + img + " 1M") == 0);
  set_header_u64(img, 72, 1ull << 20);
  auto ro = open_image(img, {"qcow2", true, false});
  REQUIRE_FALSE(ro.ok());
  CHECK(ro.error().message.find("bit 20") != std::string::npos);

  REQUIRE(run("qemu-img create -q -f qcow2 -o extended_l2=on " + img + " 1M") == 0);
  auto ext = open_image(img, {"qcow2", true, false});
  REQUIRE_FALSE(ext.ok());
  CHECK(ext.error().message.find("extended L2") != std::string::npos);
}

TEST_CASE("qcow2: unknown autoclear bits are cleared on a writable open") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  std::string img = dir + "/a.qcow2";
  REQUIRE(run("qemu-img create -q -f qcow2 " + img + " 1M") == 0);
  set_header_u64(img, 88, 1ull << 5);
  { auto image = open_rw(img); }
  auto bytes = read_file(img);
  CHECK(qcow2::load_be64(&bytes[88]) == 0);
}

TEST_CASE("qcow2: kill -9 during writes leaves at most leaks; flushed data survives") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  auto base = pattern(0, 16 * kMiB, 5);
  write_file(dir + "/base.raw", base);
  REQUIRE(run("cd " + dir + " && qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2") == 0);
  for (int round = 0; round < 3; ++round) {
    int progress[2];
    REQUIRE(pipe(progress) == 0);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      close(progress[0]);
      auto image = open_image(dir + "/ov.qcow2", {"qcow2", false, false});
      if (!image) _exit(2);
      // Write chunk i (clusters in a scattered order), flush, then report i as durable.
      for (uint32_t i = 0;; ++i) {
        uint64_t offset = (uint64_t(i) * 7919 * 4096) % (16 * kMiB - 8192);
        auto data = pattern(offset, 8192, 1000 + round);
        if (!(*image)->write(offset, data) || !(*image)->flush()) _exit(3);
        if (::write(progress[1], &i, sizeof(i)) != sizeof(i)) _exit(4);
      }
    }
    close(progress[1]);
    uint32_t durable = 0, value;
    // Let it run for a while, then kill it without warning.
    for (int reads = 0; reads < 40 + round * 37; ++reads) {
      if (read(progress[0], &value, sizeof(value)) != sizeof(value)) break;
      durable = value;
    }
    kill(child, SIGKILL);
    int status;
    waitpid(child, &status, 0);
    close(progress[0]);
    int check = run("qemu-img check -q " + dir + "/ov.qcow2");
    CHECK((check == 0 || check == 3));  // 3 = leaked clusters only
    // Every flushed chunk reads back (later chunks may overwrite earlier ones: check the last).
    auto image = open_image(dir + "/ov.qcow2", {"qcow2", true, false});
    REQUIRE(image.ok());
    uint64_t offset = (uint64_t(durable) * 7919 * 4096) % (16 * kMiB - 8192);
    std::vector<uint8_t> back(8192);
    REQUIRE((*image)->read(offset, back).ok());
    CHECK(back == pattern(offset, 8192, 1000 + round));
    // Repair leaks the way a user would, so the next round starts clean.
    run("qemu-img check -q -r leaks " + dir + "/ov.qcow2 >/dev/null 2>&1");
  }
}

TEST_CASE("qcow2: read-only open refuses writes") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  REQUIRE(run("qemu-img create -q -f qcow2 " + dir + "/r.qcow2 1M") == 0);
  auto image = open_image(dir + "/r.qcow2", {"qcow2", true, false});
  REQUIRE(image.ok());
  uint8_t byte = 1;
  CHECK_FALSE((*image)->write(0, {&byte, 1}).ok());
  CHECK_FALSE((*image)->write_zeroes(0, 512).ok());
}

// The overlay's writer holds its image exclusively and its backing file shared: a second machine
// can read the base, but nobody can open the base or the overlay for writing meanwhile.
TEST_CASE("qcow2: a writable overlay locks itself exclusively and its backing file shared") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  std::string base = dir + "/lock-base.raw";
  write_file(base, std::vector<uint8_t>(1 << 20, 0));
  std::string overlay = dir + "/lock-overlay.qcow2";
  REQUIRE(run("qemu-img create -q -f qcow2 -b " + base + " -F raw " + overlay + " 1M") == 0);
  auto open = [](const std::string& path, bool read_only) {
    return open_image(path, {"", read_only, false});
  };
  {
    auto vm = open(overlay, false);
    REQUIRE_MESSAGE(vm.ok(), (vm.ok() ? "" : vm.error().message));
    auto second = open(overlay, false);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().message.find(overlay + ": in use by another process") == 0);
    CHECK(open(base, true).ok());
    auto base_writer = open(base, false);
    REQUIRE_FALSE(base_writer.ok());
    CHECK(base_writer.error().message.find("open for reading") != std::string::npos);
  }
  CHECK(open(overlay, false).ok());
}

TEST_CASE("image probing picks the format from the magic") {
  if (!have_qemu()) VML_SKIP("qemu-img/qemu-io not installed (apt-get install qemu-utils)");
  std::string dir = scratch_dir();
  REQUIRE(run("qemu-img create -q -f qcow2 " + dir + "/p.qcow2 1M") == 0);
  write_file(dir + "/p.raw", std::vector<uint8_t>(4096, 1));
  CHECK(*probe_format(dir + "/p.qcow2") == "qcow2");
  CHECK(*probe_format(dir + "/p.raw") == "raw");
  auto probed = open_image(dir + "/p.qcow2", {"", true, false});
  REQUIRE(probed.ok());
  CHECK((*probed)->size() == kMiB);
  auto wrong = open_image(dir + "/p.raw", {"qcow2", true, false});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message.find("not a qcow2 image") != std::string::npos);
}
