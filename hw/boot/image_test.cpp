#include "hw/boot/image.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>

#include "base/guest_memory.h"

namespace {

struct Ram {
  base::GuestMemory memory;
  Ram() { REQUIRE(memory.add_region(0x80000000, 1 << 20).ok()); }
  hw::boot::PhysWriter writer() {
    return [this](uint64_t gpa, std::span<const uint8_t> b) { return memory.write(gpa, b); };
  }
};

}  // namespace

TEST_CASE("image: a raw image lands at the given address") {
  Ram ram;
  std::vector<uint8_t> raw = {0xde, 0xad, 0xbe, 0xef};
  auto loaded = hw::boot::load_image(raw, 0x80000100, ram.writer(), "kernel");
  REQUIRE(loaded.ok());
  CHECK_FALSE(loaded->elf);
  CHECK(loaded->entry == 0x80000100);
  CHECK(loaded->end == 0x80000104);
  CHECK(*ram.memory.read_le<uint32_t>(0x80000100) == 0xefbeadde);
}

TEST_CASE("image: an image that does not fit names itself and the range") {
  Ram ram;
  std::vector<uint8_t> raw(4096, 1);
  auto loaded = hw::boot::load_image(raw, 0x800ff800, ram.writer(), "initrd");
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message.find("initrd does not fit") != std::string::npos);
  CHECK_FALSE(hw::boot::load_image({}, 0x80000000, ram.writer(), "kernel").ok());
}

TEST_CASE("image: read_file reads files and reports missing ones") {
  char path[] = "/tmp/vml-image-test-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, "abc", 3) == 3);
  close(fd);
  auto bytes = hw::boot::read_file(path);
  REQUIRE(bytes.ok());
  CHECK(bytes->size() == 3);
  CHECK_FALSE(hw::boot::read_file(path, 2).ok());
  unlink(path);
  auto missing = hw::boot::read_file(path);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("No such file") != std::string::npos);
}

TEST_CASE("image: firmware keywords resolve to Debian's files") {
  auto none = hw::boot::resolve_firmware("none");
  REQUIRE(none.ok());
  CHECK(none->kind == hw::boot::Firmware::Kind::None);
  CHECK_FALSE(hw::boot::resolve_firmware("seabios").ok());
  auto missing = hw::boot::resolve_firmware("/nonexistent/fw_dynamic.bin");
  REQUIRE_FALSE(missing.ok());
  if (access("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin", R_OK) != 0) return;
  auto jump = hw::boot::resolve_firmware("opensbi");
  REQUIRE(jump.ok());
  CHECK(jump->kind == hw::boot::Firmware::Kind::Jump);
  CHECK(jump->path.find("fw_jump.bin") != std::string::npos);
  auto dynamic = hw::boot::resolve_firmware("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin");
  REQUIRE(dynamic.ok());
  CHECK(dynamic->kind == hw::boot::Firmware::Kind::Dynamic);
}

TEST_CASE("image: fw_dynamic_info has OpenSBI's layout") {
  auto info = hw::boot::fw_dynamic_info(0x80200000, 0);
  REQUIRE(info.size() == 48);
  uint64_t words[6];
  std::memcpy(words, info.data(), 48);
  CHECK(words[0] == 0x4942534f);
  CHECK(words[1] == 2);
  CHECK(words[2] == 0x80200000);
  CHECK(words[3] == 1);
}
