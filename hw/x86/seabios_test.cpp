#include "hw/x86/seabios.h"

#include <doctest/doctest.h>

#include "config/loader.h"
#include "graph/resolve.h"

using namespace hw::x86;

namespace {

graph::Graph resolve(const std::string& yaml) {
  static config::Node document;
  config::ParseResult parsed = config::parse_yaml_string(yaml, "m.yaml");
  REQUIRE(parsed.ok());
  document = parsed.node;
  graph::ResolveResult r = graph::resolve(document, {});
  REQUIRE(r.ok());
  return r.graph;
}

constexpr const char* kTwoDisks =
    "machine: {arch: x86_64, type: pc, memory: 64M}\n"
    "cpu: {count: 2}\n"
    "boot: {firmware: seabios}\n"
    "backends: {block: {a: {driver: raw, file: /a}, b: {driver: raw, file: /b}, c: {driver: raw, file: "
    "/c}}}\n"
    "devices:\n"
    "  - {driver: pci-bridge, id: br1, addr: 5}\n"
    "  - {driver: virtio-blk-pci, id: one, drive: a, addr: 3, bootindex: 2}\n"
    "  - {driver: virtio-blk-pci, id: two, drive: b, addr: 4, bootindex: 1}\n"
    "  - {driver: virtio-blk-pci, id: three, drive: c, bus: br1, addr: 2, bootindex: 7}\n";

std::vector<uint8_t> read_item(FwCfg& cfg, uint16_t key, size_t n) {
  const uint8_t select[2] = {uint8_t(key), uint8_t(key >> 8)};
  cfg.write(0, select);
  std::vector<uint8_t> out(n);
  cfg.read(1, out);
  return out;
}

}  // namespace

TEST_CASE("seabios: bootorder lists boot devices lowest bootindex first, as QEMU's paths") {
  auto order = seabios_bootorder(resolve(kTwoDisks));
  REQUIRE(order.ok());
  CHECK(order.value() ==
        "/pci@i0cf8/scsi@4/disk@0,0\n"
        "/pci@i0cf8/scsi@3/disk@0,0\n"
        "/pci@i0cf8/pci-bridge@5/scsi@2/disk@0,0\n");
}

TEST_CASE("seabios: fw_cfg carries CPU count, RAM, e820 and the bootorder file") {
  auto cfg = seabios_fw_cfg(resolve(kTwoDisks), 64 << 20, 0);
  REQUIRE(cfg.ok());
  CHECK(read_item(*cfg.value(), FwCfg::kNbCpus, 2) == std::vector<uint8_t>{2, 0});
  auto dir = read_item(*cfg.value(), FwCfg::kFileDir, 4 + 2 * 64);
  REQUIRE(dir[3] == 2);
  CHECK(std::string(reinterpret_cast<const char*>(&dir[12])) == "bootorder");
  CHECK(std::string(reinterpret_cast<const char*>(&dir[76])) == "etc/e820");
  const uint16_t e820_key = static_cast<uint16_t>(dir[72] << 8 | dir[73]);
  auto e820 = read_item(*cfg.value(), e820_key, 2 * 20);
  // RAM from 0, 64 MiB, type 1; then KVM's reserved pages below the BIOS.
  CHECK(e820[0] == 0);
  CHECK(e820[8 + 3] == 0x04);  // 0x04000000
  CHECK(e820[16] == 1);
  CHECK(e820[20 + 0] == 0x00);
  CHECK(e820[20 + 1] == 0xc0);
  CHECK(e820[20 + 3] == 0xff);
  CHECK(e820[36] == 2);
}

TEST_CASE("seabios: the image below 4 GiB and its last 128 KiB at 0xE0000") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 2 << 20).ok());
  std::vector<uint8_t> image(256 * 1024);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7 + (i >> 16));
  REQUIRE(place_seabios(memory, image).ok());
  uint8_t reset[16], shadow[16];
  REQUIRE(memory.read(0xfffffff0, reset));
  REQUIRE(memory.read(0xffff0, shadow));
  CHECK(std::equal(reset, reset + 16, image.end() - 16));
  CHECK(std::equal(shadow, shadow + 16, image.end() - 16));
  REQUIRE(memory.read(0xe0000, shadow));
  CHECK(std::equal(shadow, shadow + 16, image.begin() + 128 * 1024));

  base::GuestMemory other;
  REQUIRE(other.add_region(0, 2 << 20).ok());
  CHECK_FALSE(place_seabios(other, std::vector<uint8_t>(1000)).ok());
  CHECK_FALSE(place_seabios(other, std::vector<uint8_t>(96 * 1024)).ok());
}

TEST_CASE("seabios: a boot device SeaBIOS cannot be pointed at is refused, not ignored") {
  auto order =
      seabios_bootorder(resolve("machine: {arch: x86_64, type: pc, memory: 64M}\n"
                                "boot: {firmware: seabios}\n"
                                "backends: {block: {a: {driver: raw, file: /a}}}\n"
                                "devices:\n"
                                "  - {driver: virtio-scsi-pci, id: scsi0}\n"
                                "  - {driver: scsi-hd, bus: scsi0.0, drive: a, bootindex: 1}\n"));
  REQUIRE_FALSE(order.ok());
  CHECK(order.error().message.find("only for devices on a PCI bus") != std::string::npos);
}
