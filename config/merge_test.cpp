#include "config/merge.h"

#include <doctest/doctest.h>

#include "config/test_util.h"

using namespace config;
using config::testing::yaml;

TEST_CASE("merge: maps merge deeply and the child wins") {
  Node base = yaml("machine: {arch: riscv64, type: virt, memory: 512MiB}\nname: base\n", "base.yaml");
  Node child = yaml("machine: {memory: 1GiB}\ncpu: {count: 4}\n", "child.yaml");
  Node merged = merge_nodes(base, child);
  CHECK(merged == yaml("machine: {arch: riscv64, type: virt, memory: 1GiB}\nname: base\ncpu: {count: 4}\n"));
  // The value the child wrote points at the child.
  CHECK(merged.find("machine")->find("memory")->location().file == "child.yaml");
  CHECK(merged.find("machine")->find("arch")->location().file == "base.yaml");
}

TEST_CASE("merge: lists of objects merge by id, new items are appended") {
  Node base = yaml(
      "devices:\n  - {driver: ns16550, id: serial0, chardev: con0}\n  - {driver: pci-bridge, id: br1}\n");
  Node child = yaml("devices:\n  - {id: serial0, chardev: con1}\n  - {driver: virtio-rng-pci, id: rng}\n");
  Node merged = merge_nodes(base, child);
  CHECK(
      merged ==
      yaml("devices:\n  - {driver: ns16550, id: serial0, chardev: con1}\n  - {driver: pci-bridge, id: br1}\n"
           "  - {driver: virtio-rng-pci, id: rng}\n"));
}

TEST_CASE("merge: items without an id are appended") {
  Node merged = merge_nodes(yaml("devices: [{driver: a}]"), yaml("devices: [{driver: b}]"));
  CHECK(merged == yaml("devices: [{driver: a}, {driver: b}]"));
}

TEST_CASE("merge: scalar lists and differing kinds are replaced") {
  CHECK(merge_nodes(yaml("accel: [kvm, jit]"), yaml("accel: [jit]")) == yaml("accel: [jit]"));
  CHECK(merge_nodes(yaml("cpu: {count: 2}"), yaml("cpu: 4")) == yaml("cpu: 4"));
  CHECK(merge_nodes(yaml("cpu: 4"), yaml("cpu: {count: 2}")) == yaml("cpu: {count: 2}"));
}
