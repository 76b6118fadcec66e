#include "hw/catalogue/catalogue.h"

#include <doctest/doctest.h>

#include <set>

using namespace hw::catalogue;
using graph::BusKind;

TEST_CASE("every device type the issue names is in the catalogue") {
  for (const char* name :
       {"ns16550", "pci-bridge", "virtio-blk-pci", "virtio-blk-mmio", "virtio-net-pci", "virtio-net-mmio",
        "virtio-rng-pci", "virtio-rng-mmio", "virtio-console-pci", "virtio-console-mmio", "virtio-scsi-pci",
        "scsi-hd", "scsi-cd", "virtio-serial-pci", "virtconsole", "virtserialport", "vfio-pci"})
    CHECK_MESSAGE(find_device_type(name) != nullptr, name);
  CHECK(find_device_type("virtio-gpu-pci") == nullptr);
}

TEST_CASE("device types are sorted, unique and self-consistent") {
  std::set<std::string> seen;
  std::string previous;
  for (const DeviceType& t : device_types()) {
    CHECK(t.name > previous);
    previous = t.name;
    CHECK(!t.help.empty());
    CHECK(!t.bus_kinds.empty());
    for (const PropertySpec& p : t.properties) {
      CHECK(!p.help.empty());
      bool is_bool = std::holds_alternative<bool>(p.default_value);
      bool is_int = std::holds_alternative<int64_t>(p.default_value);
      CHECK(is_bool == (p.type == PropertyType::Bool));
      CHECK(is_int == (p.type == PropertyType::Int || p.type == PropertyType::Size));
      if (is_int) CHECK(std::get<int64_t>(p.default_value) >= p.min);
      // A property may not shadow a backend key or the keys every device has.
      CHECK(t.find_backend(p.name) == nullptr);
      for (const char* reserved : {"driver", "id", "bus", "addr"}) CHECK(p.name != reserved);
    }
  }
}

TEST_CASE("buses provided by devices are named as QEMU names them") {
  CHECK(find_device_type("pci-bridge")->provides.at(0).suffix == "");
  CHECK(find_device_type("pci-bridge")->provides.at(0).kind == BusKind::Pci);
  CHECK(find_device_type("virtio-scsi-pci")->provides.at(0).suffix == ".0");
  CHECK(find_device_type("virtio-scsi-pci")->provides.at(0).kind == BusKind::Scsi);
  CHECK(find_device_type("virtio-serial-pci")->provides.at(0).kind == BusKind::VirtioSerial);
}

TEST_CASE("riscv64 virt has QEMU's memory map") {
  const MachineType* m = find_machine_type("riscv64", "virt");
  REQUIRE(m);
  CHECK(m->ram_base == 0x80000000);
  const graph::Bus* mmio = nullptr;
  for (const graph::Bus& b : m->buses)
    if (b.kind == BusKind::VirtioMmio) mmio = &b;
  REQUIRE(mmio);
  CHECK(mmio->slot_resources.size() == 8);
  CHECK(mmio->slot_resources[0].base == 0x10001000);
  CHECK(mmio->slot_resources[7].base == 0x10008000);
  CHECK(*mmio->slot_resources[0].irq == 1);
  CHECK(*mmio->slot_resources[7].irq == 8);
  CHECK(m->buses[0].slot_resources.at(0).base == 0x10000000);
  CHECK(*m->buses[0].slot_resources.at(0).irq == 10);
}

TEST_CASE("machine memory maps are sorted and do not overlap") {
  for (const MachineType& m : machine_types()) {
    for (size_t i = 1; i < m.memory_map.size(); ++i) {
      CAPTURE(m.name);
      CAPTURE(m.memory_map[i].name);
      CHECK(m.memory_map[i - 1].base + m.memory_map[i - 1].size <= m.memory_map[i].base);
    }
  }
  CHECK(find_machine_type("x86_64", "pc") != nullptr);
  CHECK(find_machine_type("x86_64", "microvm") != nullptr);
  CHECK(find_machine_type("riscv64", "pc") == nullptr);
}
