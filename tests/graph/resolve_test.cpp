// Resolution rules of issue 3, one case per rule: explicit addresses, inference, multifunction,
// buses of later devices, cycles, backends, properties, machines.
#include "graph/resolve.h"

#include <doctest/doctest.h>

#include <algorithm>

#include "tests/graph/resolve_helpers.h"

using namespace graph_test;
using graph::Address;
using graph::BusKind;
using graph::Device;
using graph::Graph;

namespace {

const Device& dev(const graph::ResolveResult& r, const std::string& id) {
  const Device* d = r.graph.find_device(id);
  REQUIRE_MESSAGE(d != nullptr, id);
  return *d;
}

std::string where(const graph::ResolveResult& r, const std::string& id) {
  const Device& d = dev(r, id);
  return d.bus + "/" + d.address.to_string();
}

// The one error a case expects, as text.
std::string only_error(const graph::ResolveResult& r) {
  std::string out;
  int errors = 0;
  for (const config::Diagnostic& d : r.diagnostics) {
    if (!d.is_error()) continue;
    ++errors;
    out = d.to_string();
  }
  CHECK_MESSAGE(errors == 1, diagnostics_text(r));
  return out;
}

}  // namespace

TEST_CASE("riscv virt: builtins, UART on the system bus, RAM at 0x80000000") {
  auto r = resolve_yaml(std::string(kRiscv) + kBackends +
                        "devices:\n  - {driver: ns16550, id: serial0, chardev: con0}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  const Graph& g = r.graph;
  CHECK(g.devices.at(0).id == "syscon");
  CHECK(g.devices.at(0).builtin);
  CHECK(where(r, "pcie-host") == "pcie.0/00.0");
  const Device& uart = dev(r, "serial0");
  CHECK(uart.bus == "sysbus");
  CHECK(uart.address_inferred);
  REQUIRE(uart.address.resource);
  CHECK(uart.address.resource->base == 0x10000000);
  CHECK(*uart.irq == 10);
  REQUIRE(uart.backends.size() == 1);
  CHECK(uart.backends[0].name == "con0");
  CHECK(uart.backends[0].driver == "stdio");
  CHECK(uart.backends[0].options.find("driver")->as_string() == "stdio");
  CHECK(g.memory_map.front().name == "syscon");
  bool ram = false;
  for (const graph::MemoryRegion& m : g.memory_map)
    if (m.name == "ram") ram = m.base == 0x80000000 && m.size == 256ull << 20;
  CHECK(ram);
  CHECK(g.accel.name == "jit");
  CHECK(g.accel.rejected.at(0).name == "kvm");
}

TEST_CASE("inference: lowest free slot, skipping reserved slot 0 and explicit addresses") {
  auto r = resolve_yaml(std::string(kRiscv) + kBackends +
                        "devices:\n"
                        "  - {driver: virtio-net-pci, netdev: net0}\n"
                        "  - {driver: virtio-blk-pci, drive: disk0, addr: 2}\n"
                        "  - {driver: virtio-net-pci, netdev: net1}\n"
                        "  - {driver: virtio-rng-pci}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(where(r, "virtio-net-pci.0") == "pcie.0/01.0");
  CHECK(where(r, "virtio-blk-pci.0") == "pcie.0/02.0");
  CHECK(where(r, "virtio-net-pci.1") == "pcie.0/03.0");
  CHECK(where(r, "virtio-rng-pci.0") == "pcie.0/04.0");
  CHECK(dev(r, "virtio-net-pci.0").address_inferred);
  CHECK(dev(r, "virtio-blk-pci.0").address_inferred);  // addr given, bus chosen by vmlaunch
  CHECK(dev(r, "virtio-net-pci.0").id_generated);
}

TEST_CASE("inference fills the root bus first, then bridges in declaration order") {
  std::string yaml = std::string(kRiscv) +
                     "devices:\n"
                     "  - {driver: pci-bridge, id: br1, bus: pcie.0, addr: 31}\n"
                     "  - {driver: pci-bridge, id: br2, bus: pcie.0, addr: 30}\n";
  for (int i = 0; i < 31; ++i) yaml += "  - {driver: virtio-rng-pci}\n";
  auto r = resolve_yaml(yaml);
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(where(r, "virtio-rng-pci.0") == "pcie.0/01.0");
  CHECK(where(r, "virtio-rng-pci.28") == "pcie.0/1d.0");  // slots 1..29 on the root bus
  CHECK(where(r, "virtio-rng-pci.29") == "br1/00.0");     // then br1 from slot 0
  CHECK(where(r, "virtio-rng-pci.30") == "br1/01.0");
}

TEST_CASE("explicit bus without addr gets that bus's lowest free slot") {
  auto r = resolve_yaml(std::string(kRiscv) +
                        "devices:\n"
                        "  - {driver: virtio-rng-pci, bus: br1}\n"
                        "  - {driver: virtio-rng-pci, bus: br1, addr: 0}\n"
                        "  - {driver: pci-bridge, id: br1}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(where(r, "virtio-rng-pci.1") == "br1/00.0");
  CHECK(where(r, "virtio-rng-pci.0") == "br1/01.0");
  CHECK(where(r, "br1") == "pcie.0/01.0");
}

TEST_CASE("devices may sit on buses of devices declared later, through chains") {
  auto r = resolve_yaml(std::string(kPc) + kBackends +
                        "devices:\n"
                        "  - {driver: scsi-hd, id: sda, bus: scsi0.0, addr: 1, drive: disk0}\n"
                        "  - {driver: virtio-scsi-pci, id: scsi0, bus: br2, addr: 5}\n"
                        "  - {driver: pci-bridge, id: br2, bus: br1, addr: 3}\n"
                        "  - {driver: pci-bridge, id: br1, bus: pci.0, addr: 7}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(where(r, "sda") == "scsi0.0/1");
  CHECK(where(r, "scsi0") == "br2/05.0");
  CHECK(where(r, "br2") == "br1/03.0");
  // Walking order puts providers first.
  std::vector<std::string> order;
  for (size_t i : r.graph.topological_order()) order.push_back(r.graph.devices[i].id);
  auto pos = [&](const std::string& id) { return std::find(order.begin(), order.end(), id) - order.begin(); };
  CHECK(pos("br1") < pos("br2"));
  CHECK(pos("br2") < pos("scsi0"));
  CHECK(pos("scsi0") < pos("sda"));
  CHECK(order.size() == r.graph.devices.size());
}

TEST_CASE("QEMU's documentation example: a SCSI HBA foo provides foo.0, baz sits at its address 1") {
  // QEMU docs: -device foo,bus=pci.0,addr=0,id=foo -device bar,bus=foo.0,addr=1,id=baz
  // On a PC, slot 0 of pci.0 holds the host bridge (QEMU refuses addr=0 there too), so this says so.
  auto verbatim = resolve_yaml(std::string(kPc) + kBackends +
                               "devices:\n"
                               "  - {driver: virtio-scsi-pci, bus: pci.0, addr: 0, id: foo}\n"
                               "  - {driver: scsi-hd, bus: foo.0, addr: 1, id: baz, drive: disk0}\n");
  CHECK(only_error(verbatim) ==
        "m.yaml:11:49: devices[0].addr: \"pci.0\" 00.0 is already taken by the machine's pci-host "
        "(pci-host-bridge) "
        "(free slots: 1, 2, 3, 4, 5, 6, 7, 8, ...; or leave out addr)");

  auto r = resolve_yaml(std::string(kPc) + kBackends +
                        "devices:\n"
                        "  - {driver: virtio-scsi-pci, bus: pci.0, addr: 1, id: foo}\n"
                        "  - {driver: scsi-hd, bus: foo.0, addr: 1, id: baz, drive: disk0}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(dev(r, "foo").provides == std::vector<std::string>{"foo.0"});
  CHECK(r.graph.find_bus("foo.0")->kind == BusKind::Scsi);
  CHECK(where(r, "baz") == "foo.0/1");
  CHECK_FALSE(dev(r, "baz").address_inferred);
}

TEST_CASE("unknown bus: error at the bus value with the known buses and a did-you-mean") {
  auto r = resolve_yaml(std::string(kPc) +
                        "devices:\n"
                        "  - {driver: pci-bridge, id: br1}\n"
                        "  - {driver: virtio-rng-pci, bus: pci.9}\n");
  CHECK(only_error(r) ==
        "m.yaml:6:35: devices[1].bus: unknown bus \"pci.9\" (did you mean \"pci.0\"? known: pci.0, isa, "
        "acpi, br1)");
}

TEST_CASE("bus of the wrong kind") {
  auto r = resolve_yaml(std::string(kRiscv) + kBackends +
                        "devices:\n  - {driver: virtio-blk-mmio, drive: disk0, bus: pcie.0}\n");
  CHECK(only_error(r) ==
        "m.yaml:11:50: devices[0].bus: virtio-blk-mmio plugs into a virtio-mmio bus, but \"pcie.0\" is a pci "
        "bus "
        "(buses that fit: virtio-mmio)");
}

TEST_CASE("addresses out of range and malformed") {
  CHECK(only_error(resolve_yaml(std::string(kPc) + "devices:\n  - {driver: virtio-rng-pci, addr: 32}\n")) ==
        "m.yaml:5:36: devices[0].addr: address 32 is out of range for \"pci.0\" (slots 0-31)");
  CHECK(only_error(
            resolve_yaml(std::string(kPc) + "devices:\n  - {driver: virtio-rng-pci, addr: \"20.0\"}\n")) ==
        "m.yaml:5:36: devices[0].addr: address \"20.0\" is read as hex (slot 0x20 = 32), out of range for "
        "\"pci.0\" "
        "(slots 0-31) (quoted PCI addresses are hex, \"slot.function\"; for slot 20 write \"14.0\")");
  CHECK(only_error(resolve_yaml(std::string(kPc) + "devices:\n  - {driver: virtio-rng-pci, addr: \"3.9\"}\n"))
            .find("invalid address \"3.9\"") != std::string::npos);
  CHECK(
      only_error(resolve_yaml(std::string(kRiscv) + "devices:\n  - {driver: virtio-rng-mmio, addr: 8}\n")) ==
      "m.yaml:5:37: devices[0].addr: address 8 is out of range for \"virtio-mmio\" (slots 0-7) (slot bases: "
      "0x10001000, 0x10002000, 0x10003000, 0x10004000, 0x10005000, 0x10006000, 0x10007000, 0x10008000)");
}

TEST_CASE("two devices at one address: the second names the first and where it was written") {
  auto r = resolve_yaml(std::string(kPc) +
                        "devices:\n"
                        "  - {driver: virtio-rng-pci, id: a, addr: 3}\n"
                        "  - {driver: virtio-rng-pci, id: b, addr: \"3.0\"}\n");
  CHECK(only_error(r) ==
        "m.yaml:6:43: devices[1].addr: \"pci.0\" 03.0 is already taken by \"a\" (m.yaml:5:5) (free slots: 1, "
        "2, 4, 5, "
        "6, 7, 8, 9, ...; or leave out addr)");
}

TEST_CASE("hex slot strings as QEMU writes them") {
  auto r = resolve_yaml(std::string(kPc) + "devices:\n  - {driver: virtio-rng-pci, id: a, addr: \"1f\"}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(dev(r, "a").address.slot == 31);
}

TEST_CASE("multifunction: function 1 needs a multifunction device at function 0") {
  std::string head = std::string(kPc) + kBackends + "devices:\n";
  auto nothing = resolve_yaml(head + "  - {driver: virtio-rng-pci, id: f1, addr: \"3.1\"}\n");
  CHECK(only_error(nothing) ==
        "m.yaml:11:44: devices[0].addr: function 1 needs a device at function 0 of slot 03.0 on \"pci.0\" "
        "(put a device "
        "with multifunction: true at 03.0)");

  auto not_multi = resolve_yaml(head +
                                "  - {driver: virtio-rng-pci, id: f1, addr: \"3.1\"}\n"
                                "  - {driver: virtio-blk-pci, id: f0, addr: \"3.0\", drive: disk0}\n");
  CHECK(only_error(not_multi) ==
        "m.yaml:11:44: devices[0].addr: function 1 needs function 0 (\"f0\" (m.yaml:12:5)) to be "
        "multifunction (set "
        "multifunction: true on \"f0\")");

  auto ok =
      resolve_yaml(head +
                   "  - {driver: virtio-rng-pci, id: f1, addr: \"3.1\"}\n"
                   "  - {driver: virtio-blk-pci, id: f0, addr: \"3.0\", drive: disk0, multifunction: true}\n"
                   "  - {driver: virtio-rng-pci, id: next}\n");
  REQUIRE_MESSAGE(ok.ok(), diagnostics_text(ok));
  CHECK(where(ok, "f0") == "pci.0/03.0");
  CHECK(where(ok, "f1") == "pci.0/03.1");
  CHECK(where(ok, "next") == "pci.0/01.0");
  auto on_bus = ok.graph.devices_on("pci.0");
  REQUIRE(on_bus.size() == 4);
  CHECK(on_bus[2]->id == "f0");
  CHECK(on_bus[3]->id == "f1");
}

TEST_CASE("functions are PCI only") {
  auto r = resolve_yaml(std::string(kRiscv) + "devices:\n  - {driver: virtio-rng-mmio, addr: \"1.1\"}\n");
  CHECK(only_error(r).find("functions are PCI only") != std::string::npos);
}

TEST_CASE("bus cycles are errors that name the cycle") {
  auto r = resolve_yaml(std::string(kPc) +
                        "devices:\n"
                        "  - {driver: pci-bridge, id: br1, bus: br2}\n"
                        "  - {driver: pci-bridge, id: br2, bus: br1}\n"
                        "  - {driver: virtio-rng-pci, id: leaf, bus: br2}\n");
  CHECK(only_error(r) ==
        "m.yaml:5:40: devices[0].bus: bus cycle: br1 -> br2 -> br1 (each sits on a bus the next provides) "
        "(put one of "
        "them on a bus of the machine)");
  auto self = resolve_yaml(std::string(kPc) + "devices:\n  - {driver: pci-bridge, id: br1, bus: br1}\n");
  CHECK(only_error(self).find("bus cycle: br1 -> br1") != std::string::npos);
}

TEST_CASE("a full bus is an error with a way out") {
  std::string yaml = std::string(kPc) + "devices:\n";
  for (int i = 0; i < 32; ++i) yaml += "  - {driver: virtio-rng-pci}\n";
  auto r = resolve_yaml(yaml);
  CHECK(only_error(r) ==
        "m.yaml:36:5: devices[31]: no free slot on any pci bus for virtio-rng-pci (add a pci-bridge)");
}

TEST_CASE("microvm has no PCI: a -pci device is refused with the -mmio alternative") {
  auto r = resolve_yaml(std::string(kMicrovm) + kBackends +
                        "devices:\n  - {driver: virtio-blk-pci, drive: disk0}\n");
  CHECK(only_error(r) ==
        "m.yaml:11:5: devices[0]: x86_64/microvm has no pci bus for virtio-blk-pci (use virtio-blk-mmio on "
        "x86_64/microvm)");
}

TEST_CASE("microvm: COM1/COM2 on the ISA bus, virtio-mmio slots with IRQs from 5") {
  auto r = resolve_yaml(std::string(kMicrovm) + kBackends +
                        "devices:\n"
                        "  - {driver: ns16550, id: com2, chardev: con1, addr: 0x2f8}\n"
                        "  - {driver: ns16550, id: com1, chardev: con0}\n"
                        "  - {driver: virtio-blk-mmio, id: vda, drive: disk0}\n"
                        "  - {driver: virtio-net-mmio, id: eth0, netdev: net0}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(where(r, "com1") == "isa/0");
  CHECK(dev(r, "com1").address.resource->base == 0x3f8);
  CHECK(dev(r, "com1").address.resource->port_io);
  CHECK(*dev(r, "com1").irq == 4);
  CHECK(where(r, "com2") == "isa/1");
  CHECK(*dev(r, "com2").irq == 3);
  CHECK(dev(r, "vda").address.resource->base == 0xfeb00000);
  CHECK(*dev(r, "vda").irq == 5);
  CHECK(dev(r, "eth0").address.resource->base == 0xfeb00200);
  CHECK(*dev(r, "eth0").irq == 6);
}

TEST_CASE("PCI INTx: root slot rotation and the bridge swizzle") {
  auto r = resolve_yaml(std::string(kRiscv) +
                        "devices:\n"
                        "  - {driver: virtio-rng-pci, id: a, addr: 1}\n"
                        "  - {driver: pci-bridge, id: br1, addr: 5}\n"
                        "  - {driver: virtio-rng-pci, id: b, bus: br1, addr: 1}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(*dev(r, "a").irq == 33);
  CHECK(*dev(r, "br1").irq == 33);
  CHECK(r.graph.find_bus("br1")->pci_irqs == std::vector<uint32_t>{33, 34, 35, 32});
  CHECK(*dev(r, "b").irq == 34);
  const graph::IrqLine* line33 = nullptr;
  for (const graph::IrqLine& l : r.graph.irqs)
    if (l.number == 33) line33 = &l;
  REQUIRE(line33);
  CHECK(line33->devices == std::vector<std::string>{"a", "br1"});
  CHECK(line33->controller == "plic");
}

TEST_CASE("virtio-serial: ports from 1 when inferred, the console port 0 when asked") {
  auto r = resolve_yaml(std::string(kPc) + kBackends +
                        "devices:\n"
                        "  - {driver: virtio-serial-pci, id: vs}\n"
                        "  - {driver: virtconsole, id: c1, chardev: con0}\n"
                        "  - {driver: virtconsole, id: c0, chardev: con1, bus: vs.0, addr: 0}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(where(r, "c1") == "vs.0/1");
  CHECK(where(r, "c0") == "vs.0/0");
}

TEST_CASE("bus: <id> names the one bus that device provides") {
  auto r = resolve_yaml(std::string(kPc) + kBackends +
                        "devices:\n"
                        "  - {driver: virtio-scsi-pci, id: scsi0, addr: 3}\n"
                        "  - {driver: scsi-hd, id: sda, bus: scsi0, drive: disk0}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(where(r, "sda") == "scsi0.0/0");
}

TEST_CASE("SCSI addresses: \"target.lun\" puts several logical units on one target") {
  auto r = resolve_yaml(std::string(kPc) + kBackends +
                        "devices:\n"
                        "  - {driver: virtio-scsi-pci, id: scsi0, addr: 3}\n"
                        "  - {driver: scsi-hd, id: sda, bus: scsi0, addr: 1, drive: disk0}\n"
                        "  - {driver: scsi-hd, id: sdb, bus: scsi0, addr: \"1.2\", drive: disk1}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(where(r, "sda") == "scsi0.0/1");
  CHECK(where(r, "sdb") == "scsi0.0/1.2");
  CHECK(dev(r, "sdb").address.slot == 1);
  CHECK(dev(r, "sdb").address.function == 2);

  auto taken = resolve_yaml(std::string(kPc) + kBackends +
                            "devices:\n"
                            "  - {driver: virtio-scsi-pci, id: scsi0, addr: 3}\n"
                            "  - {driver: scsi-hd, id: sda, bus: scsi0, addr: \"1.2\", drive: disk0}\n"
                            "  - {driver: scsi-hd, id: sdb, bus: scsi0, addr: \"1.2\", drive: disk1}\n");
  CHECK(only_error(taken).find("\"scsi0.0\" 1.2 is already taken by \"sda\"") != std::string::npos);

  for (const char* bad : {"\"1.256\"", "\"1.x\"", "\"1.\"", "\"-1.2\"", "\"1. 2\""}) {
    CAPTURE(bad);
    auto r2 = resolve_yaml(std::string(kPc) + kBackends +
                           "devices:\n"
                           "  - {driver: virtio-scsi-pci, id: scsi0, addr: 3}\n"
                           "  - {driver: scsi-hd, id: sda, bus: scsi0, addr: " +
                           bad + ", drive: disk0}\n");
    CHECK(only_error(r2).find("devices[1].addr") != std::string::npos);
  }
  // "target.lun" is SCSI's: other slotted buses still have no functions.
  auto serial = resolve_yaml(std::string(kPc) +
                             "devices:\n"
                             "  - {driver: virtio-serial-pci, id: vs}\n"
                             "  - {driver: virtconsole, id: c0, chardev: con0, bus: vs.0, addr: \"1.2\"}\n" +
                             kBackends);
  CHECK_FALSE(serial.ok());
}

TEST_CASE("debug: (the gdb stub) is accepted on x86_64 too (kvm: tests/kvm/x86_gdb_test.sh)") {
  auto r = resolve_yaml(std::string(kPc) + "debug: {gdb: {host: 127.0.0.1, port: 1234}}\n");
  CHECK_MESSAGE(r.ok(), diagnostics_text(r));
}

TEST_CASE("properties: defaults, typed values, unknown names, ranges") {
  auto ok = resolve_yaml(std::string(kPc) + kBackends +
                         "devices:\n"
                         "  - {driver: virtio-blk-pci, id: vda, drive: disk0, serial: abc, num-queues: 4}\n"
                         "  - {driver: virtio-net-pci, id: n0, netdev: net0}\n"
                         "  - {driver: virtio-net-pci, id: n1, netdev: net1, mac: \"52:54:00:12:34:56\"}\n");
  REQUIRE_MESSAGE(ok.ok(), diagnostics_text(ok));
  const Device& vda = dev(ok, "vda");
  CHECK(vda.string_property("serial") == "abc");
  CHECK_FALSE(vda.property("serial")->is_default);
  CHECK(vda.int_property("num-queues") == 4);
  CHECK(vda.int_property("queue-size") == 256);
  CHECK(vda.property("queue-size")->is_default);
  CHECK(vda.bool_property("multifunction") == false);
  std::string mac0 = dev(ok, "n0").string_property("mac");
  CHECK(mac0.size() == 17);
  CHECK(mac0.rfind("52:54:00:", 0) == 0);
  CHECK(mac0 != dev(resolve_yaml(std::string(kPc) + kBackends +
                                 "devices:\n  - {driver: virtio-net-pci, id: n9, netdev: net0}\n"),
                    "n9")
                    .string_property("mac"));
  CHECK(dev(ok, "n1").string_property("mac") == "52:54:00:12:34:56");

  CHECK(only_error(resolve_yaml(std::string(kPc) + kBackends +
                                "devices:\n  - {driver: virtio-blk-pci, drive: disk0, seriall: x}\n")) ==
        "m.yaml:11:44: devices[0].seriall: virtio-blk-pci has no property \"seriall\" (did you mean "
        "\"serial\"?)");
  CHECK(only_error(resolve_yaml(std::string(kPc) + kBackends +
                                "devices:\n  - {driver: virtio-blk-pci, drive: disk0, num-queues: 65}\n")) ==
        "m.yaml:11:56: devices[0].num-queues: num-queues 65 is out of range 1..64");
  CHECK(only_error(resolve_yaml(
            std::string(kPc) + kBackends +
            "devices:\n  - {driver: virtio-blk-pci, drive: disk0, multifunction: yes please}\n")) ==
        "m.yaml:11:59: devices[0].multifunction: multifunction must be true or false, got string");
  CHECK(only_error(resolve_yaml(std::string(kPc) + kBackends +
                                "devices:\n  - {driver: virtio-net-pci, netdev: net0, mac: \"52:54\"}\n"))
            .find("is not a MAC address") != std::string::npos);
}

TEST_CASE("backends: unknown, wrong kind, exclusive, shared rng, passthrough alias, required") {
  std::string head = std::string(kPc) + kBackends + "devices:\n";
  CHECK(only_error(resolve_yaml(head + "  - {driver: virtio-blk-pci, drive: disk9}\n")) ==
        "m.yaml:11:37: devices[0].drive: unknown block backend \"disk9\" (did you mean \"disk0\"?)");
  CHECK(only_error(resolve_yaml(head + "  - {driver: virtio-blk-pci, drive: net0}\n")) ==
        "m.yaml:11:37: devices[0].drive: \"net0\" is a net backend, but drive needs a block backend");
  CHECK(only_error(resolve_yaml(head + "  - {driver: virtio-blk-pci, id: a, drive: disk0}\n"
                                       "  - {driver: virtio-blk-pci, id: b, drive: disk0}\n")) ==
        "m.yaml:12:44: devices[1].drive: block backend \"disk0\" is already used by \"a\" (a block backend "
        "serves one "
        "device; declare another one)");
  CHECK(
      only_error(resolve_yaml(head + "  - {driver: virtio-blk-pci}\n")) ==
      "m.yaml:11:5: devices[0]: virtio-blk-pci needs a block backend (add drive: <name of a block backend>)");

  auto shared = resolve_yaml(head +
                             "  - {driver: virtio-rng-pci, rng: rng0}\n"
                             "  - {driver: virtio-rng-pci, rng: rng0}\n"
                             "  - {driver: vfio-pci, id: gpu, host: gpu0}\n");
  REQUIRE_MESSAGE(shared.ok(), diagnostics_text(shared));
  CHECK(shared.graph.find_backend("rng0")->used_by ==
        std::vector<std::string>{"virtio-rng-pci.0", "virtio-rng-pci.1"});
  const graph::BackendRef* gpu = dev(shared, "gpu").backend("passthrough");
  REQUIRE(gpu);
  CHECK(gpu->kind == graph::BackendKind::Passthrough);
  CHECK(gpu->options.find("host")->as_string() == "0000:01:00.0");
}

TEST_CASE("ids: generated per driver, skipping ids the file uses; duplicates are errors") {
  auto r = resolve_yaml(std::string(kPc) +
                        "devices:\n"
                        "  - {driver: virtio-rng-pci}\n"
                        "  - {driver: virtio-rng-pci, id: virtio-rng-pci.1}\n"
                        "  - {driver: virtio-rng-pci}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(r.graph.devices[r.graph.devices.size() - 1].id == "virtio-rng-pci.2");
  CHECK(
      only_error(resolve_yaml(std::string(kPc) +
                              "devices:\n  - {driver: pci-bridge, id: x}\n  - {driver: pci-bridge, id: x}\n"))
          .find("duplicate device id \"x\"") != std::string::npos);
  CHECK(only_error(resolve_yaml(std::string(kPc) + "devices:\n  - {driver: pci-bridge, id: isa}\n"))
            .find("bus name \"isa\" is already taken by the machine") != std::string::npos);
}

TEST_CASE("unknown device type and machine type suggest the right name") {
  CHECK(only_error(resolve_yaml(std::string(kPc) + "devices:\n  - {driver: virtio-rng-pcie}\n")) ==
        "m.yaml:5:14: devices[0].driver: unknown device type \"virtio-rng-pcie\" (did you mean "
        "\"virtio-rng-pci\"?)");
  CHECK(only_error(resolve_yaml("machine: {arch: x86_64, type: microvn, memory: 1G}\n"))
            .find("unknown machine type \"x86_64/microvn\" (did you mean \"x86_64/microvm\"?)") !=
        std::string::npos);
}

TEST_CASE("accelerator: the file's first that can run the arch, decided without the host") {
  auto r = resolve_yaml(std::string(kPc));
  CHECK(r.graph.accel.name == "kvm");
  CHECK(r.graph.accel.candidates == std::vector<std::string>{"kvm"});
  // hvf cannot run on this Linux host, but the file prefers it: the plan says so on every host.
  auto mac = resolve_yaml("machine: {arch: x86_64, type: pc, memory: 1G}\naccel: [hvf, jit, kvm]\n");
  REQUIRE_MESSAGE(mac.ok(), diagnostics_text(mac));
  CHECK(mac.graph.accel.name == "hvf");
  CHECK(mac.graph.accel.candidates == std::vector<std::string>{"hvf", "kvm"});
  REQUIRE(mac.graph.accel.rejected.size() == 1);
  CHECK(mac.graph.accel.rejected[0].reason == "runs only riscv64 guests");
  auto none = resolve_yaml("machine: {arch: x86_64, type: pc, memory: 1G}\naccel: [jit]\n");
  CHECK(only_error(none) ==
        "m.yaml:2:8: accel: no accelerator in [jit] runs x86_64 guests: jit: runs only riscv64 guests");
}

TEST_CASE("x86 RAM above 3 GiB moves above 4 GiB; CPU topology is checked") {
  auto r = resolve_yaml(
      "machine: {arch: x86_64, type: pc, memory: 5G}\ncpu: {count: 4, topology: {sockets: 2, cores: 2}}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(r.graph.memory_map.front().name == "ram-low");
  CHECK(r.graph.memory_map.front().size == 3ull << 30);
  CHECK(r.graph.memory_map.back().name == "ram-high");
  CHECK(r.graph.memory_map.back().base == 4ull << 30);
  CHECK(r.graph.memory_map.back().size == 2ull << 30);
  CHECK(r.graph.machine.cpu.sockets == 2);
  CHECK(r.graph.machine.cpu.cores == 2);
  CHECK(r.graph.machine.cpu.model == "host");
  CHECK(only_error(
            resolve_yaml(
                "machine: {arch: x86_64, type: pc, memory: 1G}\ncpu: {count: 4, topology: {cores: 2}}\n"))
            .find("topology has room for 2 CPUs, count is 4") != std::string::npos);
}

TEST_CASE("resolution is deterministic") {
  std::string yaml = std::string(kRiscv) + kBackends +
                     "devices:\n"
                     "  - {driver: pci-bridge, id: br1}\n"
                     "  - {driver: virtio-net-pci, netdev: net0, bus: br1}\n"
                     "  - {driver: virtio-blk-mmio, drive: disk0}\n"
                     "  - {driver: virtio-rng-pci}\n";
  auto a = resolve_yaml(yaml);
  auto b = resolve_yaml(yaml);
  REQUIRE(a.ok());
  CHECK(a.graph.devices.size() == b.graph.devices.size());
  for (size_t i = 0; i < a.graph.devices.size(); ++i) {
    CHECK(a.graph.devices[i].id == b.graph.devices[i].id);
    CHECK(a.graph.devices[i].bus == b.graph.devices[i].bus);
    CHECK(a.graph.devices[i].address.to_string() == b.graph.devices[i].address.to_string());
  }
}

TEST_CASE("documents the schema would reject do not crash the resolver") {
  for (const char* yaml : {
           "[]",
           "machine: 3",
           "machine: {arch: riscv64, type: virt, memory: -5}",
           "machine: {arch: riscv64, type: virt, memory: 1G}\ndevices: 7",
           "machine: {arch: riscv64, type: virt, memory: 1G}\ndevices: [3, [], {driver: 5}, {driver: "
           "pci-bridge, id: 7}]",
           "machine: {arch: riscv64, type: virt, memory: 1G}\ndevices: [{driver: virtio-rng-pci, addr: 1.5, "
           "bus: [x]}]",
           "machine: {arch: riscv64, type: virt, memory: 1G}\ndevices: [{driver: virtio-rng-pci, addr: "
           "\"zz.9\"}]",
           "machine: {arch: riscv64, type: virt, memory: 1G}\ndevices: [{driver: virtio-rng-pci, addr: "
           "99999999999}]",
           "machine: {arch: riscv64, type: virt, memory: 1G}\nbackends: {block: 3, chardev: {a: 4}}\n"
           "devices: [{driver: virtio-blk-pci, drive: a}, {driver: ns16550, chardev: [a]}]",
           "machine: {arch: x86_64, type: pc, memory: 1G}\ncpu: {count: x, topology: 4, features: 5}\naccel: "
           "3",
       }) {
    CAPTURE(yaml);
    graph::ResolveResult r = resolve_yaml(yaml);  // no crash; whatever it says names a place
    for (const config::Diagnostic& d : r.diagnostics) CHECK(d.location.file == "m.yaml");
  }
}

TEST_CASE("machine.pit: optional on microvm, always on pc, refused where there is none") {
  const std::string backends_and_serial =
      std::string(kBackends) + "devices:\n  - {driver: ns16550, id: serial0, chardev: con0}\n";
  auto microvm = [&](const std::string& pit) {
    return "name: t\nmachine: {arch: x86_64, type: microvm, memory: 1G" + pit + "}\naccel: [kvm]\n" +
           backends_and_serial;
  };
  auto plain = resolve_yaml(microvm(""));
  REQUIRE_MESSAGE(plain.ok(), diagnostics_text(plain));
  CHECK_FALSE(plain.graph.machine.pit);
  auto with_pit = resolve_yaml(microvm(", pit: true"));
  REQUIRE_MESSAGE(with_pit.ok(), diagnostics_text(with_pit));
  CHECK(with_pit.graph.machine.pit);

  auto pc = resolve_yaml(std::string(kPc) + backends_and_serial);
  REQUIRE_MESSAGE(pc.ok(), diagnostics_text(pc));
  CHECK(pc.graph.machine.pit);
  auto pc_without = resolve_yaml(
      "name: t\nmachine: {arch: x86_64, type: pc, memory: 1G, pit: false}\n"
      "accel: [kvm]\n" +
      backends_and_serial);
  CHECK(only_error(pc_without) ==
        "m.yaml:2:52: machine.pit: x86_64/pc always has its PIT and PIC pair (remove machine.pit, or use "
        "x86_64/microvm for a machine without them)");

  auto riscv = resolve_yaml(
      "name: t\nmachine: {arch: riscv64, type: virt, memory: 1G, pit: true}\n"
      "accel: [jit]\n" +
      backends_and_serial);
  CHECK(only_error(riscv) ==
        "m.yaml:2:55: machine.pit: riscv64/virt has no PIT (it is an x86 PC device) "
        "(remove machine.pit)");
}

TEST_CASE("cpu.model is checked per machine with a suggestion; the default is the machine's first") {
  auto r = resolve_yaml("machine: {arch: riscv64, type: virt, memory: 256MiB}\ncpu: {model: rv64gcc}\n");
  CHECK(only_error(r) ==
        "m.yaml:2:14: cpu.model: unknown cpu model \"rv64gcc\" for riscv64/virt (did you mean \"rv64gc\"?)");
  auto x86 = resolve_yaml("machine: {arch: x86_64, type: pc, memory: 1G}\ncpu: {model: rv64gc}\n");
  CHECK(only_error(x86) ==
        "m.yaml:2:14: cpu.model: unknown cpu model \"rv64gc\" for x86_64/pc (known: host, max)");
  CHECK(resolve_yaml(std::string(kRiscv)).graph.machine.cpu.model == "rv64gc");
  CHECK(resolve_yaml(std::string(kPc)).graph.machine.cpu.model == "host");
}

TEST_CASE("a topology without a count means sockets x cores x threads CPUs") {
  auto r = resolve_yaml(
      "machine: {arch: riscv64, type: virt, memory: 256MiB}\ncpu: {topology: {sockets: 2, cores: 2}}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(r.graph.machine.cpu.count == 4);
  auto explicit_count = resolve_yaml(
      "machine: {arch: riscv64, type: virt, memory: 256MiB}\ncpu: {count: 3, topology: {sockets: 2, cores: "
      "2}}\n");
  REQUIRE(explicit_count.ok());
  CHECK(explicit_count.graph.machine.cpu.count == 3);
}

TEST_CASE("boot settings of the other architecture are refused where they are written") {
  CHECK(resolve_yaml("machine: {arch: x86_64, type: pc, memory: 1G}\nboot: {firmware: seabios}\n").ok());
  CHECK(only_error(resolve_yaml(
            "machine: {arch: x86_64, type: microvm, memory: 1G}\nboot: {firmware: seabios}\n")) ==
        "m.yaml:2:18: boot.firmware: firmware \"seabios\" needs machine type \"pc\" (use machine "
        "{arch: x86_64, type: pc})");
  CHECK(only_error(resolve_yaml(
            "machine: {arch: x86_64, type: pc, memory: 1G}\nboot: {firmware: seabios, kernel: /k}\n")) ==
        "m.yaml:2:35: boot.kernel: firmware \"seabios\" boots from the disks (bootindex); it takes no "
        "boot.kernel yet (remove boot.kernel, or boot.firmware for a direct kernel boot)");
  CHECK(
      only_error(resolve_yaml("machine: {arch: x86_64, type: microvm, memory: 1G}\nboot: {dtb: /x.dtb}\n")) ==
      "m.yaml:2:13: boot.dtb: x86_64 machines take no device tree (remove boot.dtb)");
  CHECK(only_error(
            resolve_yaml("machine: {arch: x86_64, type: microvm, memory: 1G}\nboot: {firmware: opensbi}\n"))
            .find("is riscv64 firmware") != std::string::npos);
}

TEST_CASE("vmgenid: on the x86 machines' acpi bus with GSI 16; riscv64 is refused with the reason") {
  for (const char* machine : {kPc, kMicrovm}) {
    auto r = resolve_yaml(std::string(machine) + "devices:\n  - {driver: vmgenid, id: genid0}\n");
    REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
    CHECK(dev(r, "genid0").bus == "acpi");
    CHECK(dev(r, "genid0").irq == std::optional<uint32_t>(16));
    CHECK(r.graph.find_bus("acpi")->kind == BusKind::Acpi);
  }
  auto two = resolve_yaml(std::string(kPc) +
                          "devices:\n  - {driver: vmgenid, id: a}\n  - {driver: vmgenid, id: b}\n");
  CHECK(only_error(two).find("no free slot on any acpi bus for vmgenid") != std::string::npos);
  auto riscv = resolve_yaml(std::string(kRiscv) + "devices:\n  - {driver: vmgenid, id: genid0}\n");
  const std::string error = only_error(riscv);
  CHECK(error.find("riscv64/virt has no acpi bus for vmgenid") != std::string::npos);
  CHECK(error.find("riscv64 virt does not have") != std::string::npos);
  CHECK(error.find("use an x86_64 machine (pc or microvm)") != std::string::npos);
}
