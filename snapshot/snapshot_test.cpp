// The snapshot files on their own: the state file's framing and checksum, guest RAM through zstd
// with zero pages skipped, and the compatibility check. (Machine-level save/restore of a booted
// guest is tests/snapshot/snapshot_restore_test.sh.)
#include "snapshot/snapshot.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "hw/device_state.h"
#include "snapshot/ram.h"
#include "snapshot/state_file.h"

namespace {

namespace fs = std::filesystem;

fs::path temp_dir() {
  const char* base = std::getenv("TEST_TMPDIR");
  fs::path dir = fs::path(base ? base : "/tmp") / ("snapshot_test." + std::to_string(::getpid()) + "." +
                                                   std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  return dir;
}

snapshot::StateFile sample() {
  snapshot::StateFile file;
  file.header = {{"format_version", snapshot::kFormatVersion}, {"arch", "riscv64"}, {"answer", 42}};
  file.blob = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  return file;
}

}  // namespace

TEST_CASE("crc32c matches the standard check value") {
  const std::string text = "123456789";
  CHECK(snapshot::crc32c({reinterpret_cast<const uint8_t*>(text.data()), text.size()}) == 0xe3069283u);
}

TEST_CASE("a state file decodes to what was encoded") {
  auto bytes = snapshot::encode(sample());
  auto decoded = snapshot::decode(bytes);
  REQUIRE(decoded.ok());
  CHECK(decoded->header == sample().header);
  CHECK(decoded->blob == sample().blob);
  auto range = snapshot::blob_range(*decoded, {{"offset", 2}, {"length", 3}});
  REQUIRE(range.ok());
  CHECK(std::vector<uint8_t>(range->begin(), range->end()) == std::vector<uint8_t>{3, 4, 5});
  CHECK_FALSE(snapshot::blob_range(*decoded, {{"offset", 8}, {"length", 3}}).ok());
}

TEST_CASE("every flipped byte of a state file is refused") {
  const auto bytes = snapshot::encode(sample());
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto altered = bytes;
    altered[i] ^= 0x20;
    auto decoded = snapshot::decode(altered);
    INFO("byte " << i);
    CHECK_FALSE(decoded.ok());
  }
  auto altered = bytes;
  altered[bytes.size() / 2] ^= 1;
  CHECK(snapshot::decode(altered).error().message.find("checksum") != std::string::npos);
}

TEST_CASE("a truncated state file is refused at every length") {
  const auto bytes = snapshot::encode(sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    INFO("length " << n);
    CHECK_FALSE(snapshot::decode(std::span<const uint8_t>(bytes).first(n)).ok());
  }
  CHECK(snapshot::decode(std::span<const uint8_t>(bytes).first(bytes.size() - 3))
            .error()
            .message.find("truncated") != std::string::npos);
}

TEST_CASE("another format version is refused by name") {
  auto bytes = snapshot::encode(sample());
  bytes[8] = static_cast<uint8_t>(snapshot::kFormatVersion + 1);
  auto decoded = snapshot::decode(bytes);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.error().message.find("format version 2") != std::string::npos);
}

TEST_CASE("guest RAM round-trips through zstd, zero pages skipped and zeroed on load") {
  const fs::path dir = temp_dir();
  base::GuestMemory saved;
  REQUIRE(saved.add_region(0x80000000, 16 << 20).ok());
  // A few scattered pages with data, the rest zero.
  std::mt19937_64 random(7);
  const uint64_t pages[] = {0, 1, 513, 1024, 2047, 4095};
  for (uint64_t page : pages)
    for (uint64_t i = 0; i < snapshot::kPageSize; i += 8)
      REQUIRE(saved.write_le<uint64_t>(0x80000000 + page * snapshot::kPageSize + i, random() | 1));
  snapshot::RamStats stats;
  auto index = snapshot::save_ram(saved, dir / snapshot::kRamFile, 3, &stats);
  REQUIRE(index.ok());
  CHECK(stats.ram_bytes == 16u << 20);
  CHECK(stats.nonzero_pages == std::size(pages));
  CHECK((*index)["chunks"].size() == 3);  // chunks 0, 1 and 3 of four hold data; chunk 2 is all zero

  base::GuestMemory restored;
  REQUIRE(restored.add_region(0x80000000, 16 << 20).ok());
  // Boot images the fresh machine loaded where the snapshot had zeros must not survive.
  REQUIRE(restored.write_le<uint64_t>(0x80000000 + 3 * snapshot::kPageSize, 0xdead));
  REQUIRE(restored.write_le<uint64_t>(0x80000000 + 2500 * snapshot::kPageSize, 0xbeef));
  REQUIRE(snapshot::load_ram(restored, dir / snapshot::kRamFile, *index, 2).ok());
  CHECK(std::memcmp(saved.regions()[0].host, restored.regions()[0].host, 16 << 20) == 0);

  SUBCASE("a truncated RAM file is refused before RAM is touched") {
    fs::resize_file(dir / snapshot::kRamFile, fs::file_size(dir / snapshot::kRamFile) - 1);
    base::GuestMemory other;
    REQUIRE(other.add_region(0x80000000, 16 << 20).ok());
    auto loaded = snapshot::load_ram(other, dir / snapshot::kRamFile, *index, 2);
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().message.find("truncated") != std::string::npos);
  }
  SUBCASE("a flipped byte in the RAM file fails its chunk's checksum") {
    std::fstream file(dir / snapshot::kRamFile, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(200);
    file.put('\x55');
    file.close();
    base::GuestMemory other;
    REQUIRE(other.add_region(0x80000000, 16 << 20).ok());
    auto loaded = snapshot::load_ram(other, dir / snapshot::kRamFile, *index, 2);
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().message.find("checksum") != std::string::npos);
  }
  SUBCASE("another RAM layout is refused") {
    base::GuestMemory other;
    REQUIRE(other.add_region(0x80000000, 32 << 20).ok());
    auto loaded = snapshot::load_ram(other, dir / snapshot::kRamFile, *index, 2);
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().message.find("RAM layout") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("check_compatible names what differs") {
  graph::Graph graph;
  graph.machine.arch = "riscv64";
  graph.machine.type = "virt";
  graph.machine.cpu.model = "rv64gc";
  graph.machine.cpu.count = 2;
  graph.machine.ram_size = 256 << 20;
  graph::Device uart;
  uart.id = "serial0";
  uart.driver = "ns16550";
  graph.devices.push_back(uart);
  nlohmann::json header = {
      {"arch", "riscv64"},
      {"machine_type", "virt"},
      {"accelerator", "jit"},
      {"cpu", {{"model", "rv64gc"}, {"features", nlohmann::json::array()}, {"count", 2}}},
      {"memory", 256 << 20},
      {"device_set", {{"serial0", "ns16550"}}}};
  CHECK(snapshot::check_compatible(header, graph, "jit").ok());
  auto refused = [&](nlohmann::json h, std::string_view accel = "jit") {
    auto checked = snapshot::check_compatible(h, graph, accel);
    return checked.ok() ? std::string() : checked.error().message;
  };
  nlohmann::json h = header;
  h["arch"] = "x86_64";
  CHECK(refused(h).find("another architecture (snapshot: x86_64, this machine: riscv64)") !=
        std::string::npos);
  h = header;
  h["cpu"]["model"] = "max";
  CHECK(refused(h).find("another CPU model") != std::string::npos);
  h = header;
  h["cpu"]["features"] = {"-sstc"};
  CHECK(refused(h).find("another CPU feature set") != std::string::npos);
  h = header;
  h["device_set"]["rng0"] = "virtio-rng-mmio";
  CHECK(refused(h).find("another set of devices (-rng0 (virtio-rng-mmio))") != std::string::npos);
  h = header;
  h["device_set"]["serial0"] = "ns16550 irq 12";
  CHECK(refused(h).find("-serial0 (ns16550 irq 12), +serial0 (ns16550)") != std::string::npos);
  CHECK(refused(header, "kvm").find("another accelerator") != std::string::npos);
}

TEST_CASE("StateReader never reads past its bytes") {
  hw::StateWriter out;
  out.u32(7);
  out.u32s({1, 2, 3});
  auto bytes = out.take();
  hw::StateReader in(bytes);
  CHECK(in.u32() == 7);
  std::vector<uint32_t> three(3);
  CHECK(in.u32s(three, 3));
  CHECK(three == std::vector<uint32_t>{1, 2, 3});
  CHECK(in.finish("x").ok());
  hw::StateReader short_in(std::span<const uint8_t>(bytes).first(9));
  short_in.u32();
  std::vector<uint32_t> values(3);
  CHECK_FALSE(short_in.u32s(values, 3));
  CHECK_FALSE(short_in.finish("x").ok());
  hw::StateReader wrong_count(bytes);
  wrong_count.u32();
  std::vector<uint32_t> four(4);
  CHECK_FALSE(wrong_count.u32s(four, 4));  // the saved list has 3: another machine shape
}

namespace {

void put_be(std::vector<uint8_t>& bytes, size_t at, uint64_t value, unsigned width) {
  for (unsigned i = 0; i < width; ++i) bytes[at + i] = static_cast<uint8_t>(value >> (8 * (width - 1 - i)));
}

// The header cluster of a version 3 qcow2 image (64 KiB clusters, 1 MiB virtual size) with an
// optional backing file name, as qemu-img writes it; the rest of the image is not needed.
std::vector<uint8_t> qcow2_header(uint64_t l1_table_offset, const std::string& backing) {
  std::vector<uint8_t> bytes(64 << 10, 0);
  put_be(bytes, 0, 0x514649fb, 4);  // magic
  put_be(bytes, 4, 3, 4);           // version
  if (!backing.empty()) {
    put_be(bytes, 8, 0x200, 8);  // backing_file_offset
    put_be(bytes, 16, backing.size(), 4);
    std::copy(backing.begin(), backing.end(), bytes.begin() + 0x200);
  }
  put_be(bytes, 20, 16, 4);               // cluster_bits
  put_be(bytes, 24, 1 << 20, 8);          // size
  put_be(bytes, 36, 1, 4);                // l1_size
  put_be(bytes, 40, l1_table_offset, 8);  // l1_table_offset
  put_be(bytes, 48, 0x10000, 8);          // refcount_table_offset
  put_be(bytes, 56, 1, 4);                // refcount_table_clusters
  put_be(bytes, 96, 4, 4);                // refcount_order
  put_be(bytes, 100, 104, 4);             // header_length
  return bytes;
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Puts the modification time of `path` back to `mtime` (as someone hiding a change would).
void set_mtime(const fs::path& path, fs::file_time_type mtime) {
  fs::last_write_time(path, mtime);
}

}  // namespace

TEST_CASE("a disk changed since the snapshot is refused: size, mtime, qcow2 header, backing file") {
  const fs::path dir = temp_dir();
  write_bytes(dir / "base.raw", std::vector<uint8_t>(4096, 7));
  write_bytes(dir / "disk.qcow2", qcow2_header(0x30000, "base.raw"));
  auto chain = snapshot::disk_chain("disk0", dir / "disk.qcow2");
  REQUIRE(chain.size() == 2);
  CHECK(chain[0]["backend"] == "disk0");
  CHECK(chain[0]["qcow2"]["backing_file"] == "base.raw");
  CHECK(chain[0]["qcow2"]["l1_table"] == "0x30000");
  CHECK(chain[1]["backend"] == "disk0 backing file 1");
  CHECK(chain[1]["path"] == (dir / "base.raw").string());
  CHECK_FALSE(chain[1].contains("qcow2"));
  for (const auto& disk : chain) CHECK(snapshot::check_disk_unchanged(disk).ok());
  const auto mtime = fs::last_write_time(dir / "disk.qcow2");
  auto refusal = [&](const nlohmann::json& saved) {
    auto checked = snapshot::check_disk_unchanged(saved);
    return checked.ok() ? std::string() : checked.error().message;
  };

  SUBCASE("the L1 table moved, size and mtime kept") {
    write_bytes(dir / "disk.qcow2", qcow2_header(0x40000, "base.raw"));
    set_mtime(dir / "disk.qcow2", mtime);
    CHECK(refusal(chain[0]).find(
              "changed since the snapshot (qcow2 header: l1_table \"0x30000\" -> \"0x40000\")") !=
          std::string::npos);
  }
  SUBCASE("rebased onto another backing file, size and mtime kept") {
    write_bytes(dir / "disk.qcow2", qcow2_header(0x30000, "base.img"));
    set_mtime(dir / "disk.qcow2", mtime);
    CHECK(refusal(chain[0]).find("backing_file \"base.raw\" -> \"base.img\"") != std::string::npos);
  }
  SUBCASE("a header byte no field names, size and mtime kept") {
    auto bytes = qcow2_header(0x30000, "base.raw");
    bytes[0x1000] = 1;
    write_bytes(dir / "disk.qcow2", bytes);
    set_mtime(dir / "disk.qcow2", mtime);
    CHECK(refusal(chain[0]).find("(qcow2 header)") != std::string::npos);
  }
  SUBCASE("written to: the modification time") {
    write_bytes(dir / "disk.qcow2", qcow2_header(0x30000, "base.raw"));
    set_mtime(dir / "disk.qcow2", mtime + std::chrono::seconds(5));
    CHECK(refusal(chain[0]).find("(modification time)") != std::string::npos);
  }
  SUBCASE("the backing file changed") {
    write_bytes(dir / "base.raw", std::vector<uint8_t>(8192, 7));
    CHECK(refusal(chain[1]).find("disk disk0 backing file 1 (") != std::string::npos);
    CHECK(refusal(chain[1]).find("(size 4096 -> 8192)") != std::string::npos);
  }
  SUBCASE("gone") {
    fs::remove(dir / "disk.qcow2");
    CHECK(refusal(chain[0]).find("is missing") != std::string::npos);
  }
  SUBCASE("a saved entry without fields (a hostile header) is refused, not trusted") {
    CHECK_FALSE(refusal({{"path", (dir / "disk.qcow2").string()}}).empty());
  }
  fs::remove_all(dir);
}

TEST_CASE("a qcow2 backing chain that loops ends") {
  const fs::path dir = temp_dir();
  write_bytes(dir / "a.qcow2", qcow2_header(0x30000, "b.qcow2"));
  write_bytes(dir / "b.qcow2", qcow2_header(0x30000, "a.qcow2"));
  CHECK(snapshot::disk_chain("d", dir / "a.qcow2").size() == 16);
  fs::remove_all(dir);
}
