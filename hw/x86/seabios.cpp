#include "hw/x86/seabios.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "base/field_use.h"

VML_CONSUMES("devices[].bootindex");  // pc with SeaBIOS: the fw_cfg "bootorder" file

namespace hw::x86 {
namespace {

constexpr uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;
constexpr uint64_t kShadowSize = 128 * KiB;  // 0xE0000-0xFFFFF
// KVM's real-mode TSS and identity map (accel/kvm): reserved in the e820 map as QEMU reserves them.
constexpr uint64_t kKvmReservedBase = 0xfffbc000, kKvmReservedSize = 16 * KiB;
constexpr uint32_t kE820Ram = 1, kE820Reserved = 2;

void put_le(std::vector<uint8_t>& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

std::string hex(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "%x", v);
  return text;
}

// QEMU's names for a PCI function's node (pci_dev_fw_name: by class) and the child it boots from.
std::string pci_node(const graph::Device& device) {
  std::string at =
      "@" + hex(device.address.slot) + (device.address.function ? "," + hex(device.address.function) : "");
  if (device.driver.rfind("virtio-blk", 0) == 0) return "scsi" + at + "/disk@0,0";
  if (device.driver.rfind("virtio-net", 0) == 0) return "ethernet" + at + "/ethernet-phy@0";
  if (device.driver.rfind("virtio-scsi", 0) == 0) return "scsi" + at;
  return "pci" + at;
}

}  // namespace

base::ErrorOr<std::string> find_seabios() {
  for (const char* path : kSeabiosPaths)
    if (::access(path, R_OK) == 0) return std::string(path);
  return base::fail(base::Error(std::string("firmware \"seabios\": neither ") + kSeabiosPaths[0] + " nor " +
                                kSeabiosPaths[1] + " is readable (install Debian's seabios package)"));
}

base::ErrorOr<void> place_seabios(base::GuestMemory& memory, const std::vector<uint8_t>& image) {
  const uint64_t size = image.size();
  if (size < 64 * KiB || size > 16 * MiB || size % (64 * KiB) != 0)
    return base::fail(base::Error("the SeaBIOS image is " + std::to_string(size) +
                                  " bytes; expected a multiple of 64 KiB from 64 KiB to 16 MiB"));
  auto region = memory.add_region(4 * GiB - size, size);
  if (!region.ok()) return base::fail(region.error().with_context("placing SeaBIOS below 4 GiB"));
  if (!memory.write(4 * GiB - size, image)) return base::fail(base::Error("writing SeaBIOS below 4 GiB"));
  const uint64_t shadow = std::min(size, kShadowSize);
  std::span<const uint8_t> tail(image.data() + size - shadow, shadow);
  if (!memory.write(1 * MiB - shadow, tail))
    return base::fail(base::Error("SeaBIOS's shadow at 0xE0000 needs RAM there (at least 1 MiB of RAM)"));
  return {};
}

base::ErrorOr<std::string> seabios_bootorder(const graph::Graph& graph) {
  std::multimap<int64_t, std::string> order;
  for (const graph::Device& device : graph.devices) {
    const int64_t index = device.int_property("bootindex", -1);
    if (index < 0) continue;
    if (device.address.kind != graph::Address::Kind::Pci)
      return base::fail(base::Error("device \"" + device.id +
                                    "\": bootindex with firmware \"seabios\" is "
                                    "only for devices on a PCI bus so far (" +
                                    device.driver + " is not)"));
    std::string path = pci_node(device);
    const graph::Device* at = &device;
    for (int depth = 0; depth < 256; ++depth) {
      const graph::Bus* bus = graph.find_bus(at->bus);
      if (!bus || bus->provided_by.empty()) break;
      const graph::Device* bridge = graph.find_device(bus->provided_by);
      if (!bridge) break;
      path = "pci-bridge@" + hex(bridge->address.slot) +
             (bridge->address.function ? "," + hex(bridge->address.function) : "") + "/" + path;
      at = bridge;
    }
    order.emplace(index, "/pci@i0cf8/" + path);
  }
  std::string text;
  for (const auto& [index, path] : order) text += path + "\n";
  return text;
}

base::ErrorOr<std::shared_ptr<FwCfg>> seabios_fw_cfg(const graph::Graph& graph, uint64_t ram_below_4g,
                                                     uint64_t ram_above_4g) {
  auto cfg = std::make_shared<FwCfg>();
  const auto cpus = static_cast<uint16_t>(std::min<unsigned>(graph.machine.cpu.count, 0xffff));
  TRY(cfg->add_item(FwCfg::kNbCpus, FwCfg::le16(cpus)));
  TRY(cfg->add_item(FwCfg::kMaxCpus, FwCfg::le16(cpus)));
  TRY(cfg->add_item(FwCfg::kRamSize, FwCfg::le64(ram_below_4g + ram_above_4g)));
  TRY(cfg->add_item(FwCfg::kNoGraphic, FwCfg::le16(1)));
  TRY(cfg->add_item(FwCfg::kBootMenu, FwCfg::le16(0)));
  // etc/e820: {u64 address, u64 length, u32 type} little-endian, as QEMU's e820_table.
  std::vector<uint8_t> e820;
  auto entry = [&](uint64_t base, uint64_t length, uint32_t type) {
    put_le(e820, base, 8);
    put_le(e820, length, 8);
    put_le(e820, type, 4);
  };
  entry(0, ram_below_4g, kE820Ram);
  if (ram_above_4g) entry(4 * GiB, ram_above_4g, kE820Ram);
  entry(kKvmReservedBase, kKvmReservedSize, kE820Reserved);
  TRY(cfg->add_file("etc/e820", std::move(e820)));
  std::string bootorder = TRY(seabios_bootorder(graph));
  if (!bootorder.empty())
    TRY(cfg->add_file("bootorder", std::vector<uint8_t>(bootorder.begin(), bootorder.end())));
  return cfg;
}

}  // namespace hw::x86
