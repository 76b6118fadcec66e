#include "hw/x86/fw_cfg.h"

#include <doctest/doctest.h>

#include <string>

using hw::x86::FwCfg;

namespace {

void select(FwCfg& cfg, uint16_t key) {
  const uint8_t bytes[2] = {uint8_t(key), uint8_t(key >> 8)};
  cfg.write(0, bytes);
}

std::vector<uint8_t> read_bytes(FwCfg& cfg, size_t n) {
  std::vector<uint8_t> out(n);
  for (auto& b : out) cfg.read(1, {&b, 1});
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | b[at + 3];
}

}  // namespace

TEST_CASE("fw_cfg: signature and id as SeaBIOS checks them; past the end reads zero") {
  FwCfg cfg;
  select(cfg, FwCfg::kSignature);
  auto sig = read_bytes(cfg, 6);
  CHECK(std::string(sig.begin(), sig.begin() + 4) == "QEMU");
  CHECK(sig[4] == 0);
  CHECK(sig[5] == 0);
  select(cfg, FwCfg::kId);
  CHECK(read_bytes(cfg, 4) == std::vector<uint8_t>{1, 0, 0, 0});  // traditional, no DMA
  // Selecting again rewinds.
  select(cfg, FwCfg::kSignature);
  CHECK(read_bytes(cfg, 1) == std::vector<uint8_t>{'Q'});
  select(cfg, FwCfg::kSignature);
  uint8_t wide[4] = {};
  cfg.read(1, wide);  // a rep insb or a wider read: consecutive bytes
  CHECK(std::string(wide, wide + 4) == "QEMU");
}

TEST_CASE("fw_cfg: fixed items and the file directory QEMU's way (big-endian, sorted, 64-byte entries)") {
  FwCfg cfg;
  REQUIRE(cfg.add_item(FwCfg::kNbCpus, FwCfg::le16(2)).ok());
  auto boot = cfg.add_file("bootorder", {'/', 'a', '\n'});
  auto e820 = cfg.add_file("etc/e820", std::vector<uint8_t>(20, 7));
  REQUIRE(boot.ok());
  REQUIRE(e820.ok());
  CHECK(boot.value() == FwCfg::kFileFirst);
  CHECK(e820.value() == FwCfg::kFileFirst + 1);
  select(cfg, FwCfg::kNbCpus);
  CHECK(read_bytes(cfg, 2) == std::vector<uint8_t>{2, 0});

  select(cfg, FwCfg::kFileDir);
  auto dir = read_bytes(cfg, 4 + 2 * 64 + 4);
  CHECK(be32(dir, 0) == 2);
  // "bootorder" < "etc/e820"
  CHECK(be32(dir, 4) == 3);
  CHECK((dir[8] << 8 | dir[9]) == boot.value());
  CHECK(std::string(reinterpret_cast<const char*>(&dir[12])) == "bootorder");
  CHECK(be32(dir, 68) == 20);
  CHECK((dir[72] << 8 | dir[73]) == e820.value());
  CHECK(std::string(reinterpret_cast<const char*>(&dir[76])) == "etc/e820");
  CHECK(dir[4 + 128] == 0);  // past the directory

  select(cfg, boot.value());
  CHECK(read_bytes(cfg, 4) == std::vector<uint8_t>{'/', 'a', '\n', 0});
}

TEST_CASE("fw_cfg: bad files and keys are refused") {
  FwCfg cfg;
  CHECK_FALSE(cfg.add_file("", {}).ok());
  CHECK_FALSE(cfg.add_file(std::string(FwCfg::kNameSize, 'x'), {}).ok());
  CHECK(cfg.add_file(std::string(FwCfg::kNameSize - 1, 'x'), {}).ok());
  CHECK(cfg.add_file("a", {}).ok());
  CHECK_FALSE(cfg.add_file("a", {}).ok());
  CHECK_FALSE(cfg.add_item(FwCfg::kFileDir, {}).ok());
  CHECK_FALSE(cfg.add_item(FwCfg::kFileFirst, {}).ok());
}

TEST_CASE("fw_cfg: hostile selectors, offsets and widths never crash and read zero") {
  FwCfg cfg;
  REQUIRE(cfg.add_file("f", {9}).ok());
  for (uint32_t key = 0; key <= 0xffff; key += 0x7f) {
    select(cfg, static_cast<uint16_t>(key));
    (void)read_bytes(cfg, 3);
  }
  select(cfg, 0x4000 | FwCfg::kSignature);  // the write channel bit: no such item
  CHECK(read_bytes(cfg, 2) == std::vector<uint8_t>{0, 0});
  select(cfg, 0xffff);
  CHECK(read_bytes(cfg, 2) == std::vector<uint8_t>{0, 0});
  // Byte writes, writes at the data port, wider writes and odd offsets do not select.
  select(cfg, FwCfg::kSignature);
  const uint8_t one = 1, four[4] = {1, 0, 0, 0};
  cfg.write(0, {&one, 1});
  cfg.write(1, {&one, 1});
  cfg.write(0, four);
  cfg.write(0x1234, four);
  cfg.write(0, {});
  CHECK(read_bytes(cfg, 1) == std::vector<uint8_t>{'Q'});
  // Reads of any size and offset, including none.
  cfg.read(0, {});
  std::vector<uint8_t> big(1 << 16, 0xaa);
  cfg.read(0xffffffff, big);
  CHECK(big[0] == 'E');
  CHECK(big[3] == 0);
  CHECK(big.back() == 0);
}
