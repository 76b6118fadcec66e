#include "graph/graph.h"

#include <doctest/doctest.h>

using namespace graph;

TEST_CASE("names of kinds round-trip") {
  for (BusKind k : {BusKind::System, BusKind::VirtioMmio, BusKind::Pci, BusKind::Isa, BusKind::Scsi,
                    BusKind::VirtioSerial, BusKind::Usb, BusKind::Acpi})
    CHECK(parse_bus_kind(bus_kind_name(k)) == k);
  for (BackendKind k : {BackendKind::Chardev, BackendKind::Block, BackendKind::Net, BackendKind::Rng,
                        BackendKind::Passthrough, BackendKind::Fs})
    CHECK(parse_backend_kind(backend_kind_name(k)) == k);
  CHECK_FALSE(parse_bus_kind("firewire").has_value());
  CHECK(memory_kind_name(MemoryRegion::Kind::PciWindow) == "pci-window");
}

TEST_CASE("addresses print as lspci and QEMU write them") {
  Address pci{Address::Kind::Pci, 0x1f, 7, std::nullopt};
  CHECK(pci.to_string() == "1f.7");
  Address slot{Address::Kind::Slot, 3, 0, std::nullopt};
  CHECK(slot.to_string() == "3");
  CHECK(Address{}.to_string() == "-");
}

TEST_CASE("typed property accessors fall back on missing or mistyped properties") {
  Device d;
  d.properties = {{"multifunction", true, false, {}},
                  {"num-queues", int64_t{4}, false, {}},
                  {"serial", std::string("x"), true, {}}};
  CHECK(d.bool_property("multifunction"));
  CHECK(d.int_property("num-queues") == 4);
  CHECK(d.string_property("serial") == "x");
  CHECK(d.int_property("serial", -1) == -1);
  CHECK(d.string_property("nope", "fallback") == "fallback");
  CHECK(value_to_string(Value(false)) == "false");
  CHECK(value_to_string(Value(int64_t{-3})) == "-3");
}

TEST_CASE("topological order puts providers before the devices on their buses") {
  Graph g;
  g.buses = {{"pci.0", BusKind::Pci, "", 0, 31, {}, {}, {}, {1, 0}},
             {"br1", BusKind::Pci, "br1", 0, 31, {}, {}, {}, {2}}};
  Device leaf, bridge, root_builtin;
  leaf.id = "leaf";
  leaf.bus = "br1";
  bridge.id = "br1";
  bridge.bus = "pci.0";
  bridge.provides = {"br1"};
  root_builtin.id = "host";
  root_builtin.bus = "pci.0";
  g.devices = {root_builtin, bridge, leaf};
  g.buses[0].devices = {0, 1};
  g.buses[1].devices = {2};
  CHECK(g.topological_order() == std::vector<size_t>{0, 1, 2});
  CHECK(g.devices_on("br1").at(0)->id == "leaf");
  CHECK(g.find_bus("br1")->provided_by == "br1");
  CHECK(g.find_device("nope") == nullptr);
}
