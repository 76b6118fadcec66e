// check_machine_kind, check_device_ids, check_references and check_accel_options.
#include "config/checks.h"

#include <doctest/doctest.h>

#include "config/test_util.h"

using namespace config;
using config::testing::dump;
using config::testing::yaml;

TEST_CASE("check_machine_kind: the machine type must exist for the architecture") {
  Diagnostics diagnostics =
      check_machine_kind(yaml("machine: {arch: riscv64, type: pc, memory: 1G}", "m.yaml"));
  CHECK(dump(diagnostics) ==
        "m.yaml:1:32: machine.type: machine type \"pc\" is not available for riscv64 (use virt)\n");
  CHECK(check_machine_kind(yaml("machine: {arch: x86_64, type: virt}"))[0].hint == "use microvm or pc");
  CHECK(check_machine_kind(yaml("machine: {arch: x86_64, type: microvm}")).empty());
  CHECK(check_machine_kind(yaml("machine: {arch: 5, type: []}")).empty());  // the schema reports kinds
}

TEST_CASE("check_machine_kind: topology must multiply out to cpu.count") {
  Diagnostics diagnostics =
      check_machine_kind(yaml("cpu: {count: 4, topology: {sockets: 1, cores: 2, threads: 1}}", "m.yaml"));
  CHECK(dump(diagnostics) ==
        "m.yaml:1:14: cpu.count: cpu.count is 4 but the topology has 1 * 2 * 1 = 2 cpus (make them agree, or "
        "leave "
        "out cpu.count)\n");
  CHECK(check_machine_kind(yaml("cpu: {count: 4, topology: {sockets: 2, cores: 2}}")).empty());
}

TEST_CASE("check_device_ids: duplicates are reported at the second use") {
  Diagnostics diagnostics = check_device_ids(
      yaml("devices:\n  - {driver: a, id: x}\n  - {driver: b, id: y}\n  - {driver: c, id: x}\n", "m.yaml"));
  CHECK(dump(diagnostics) ==
        "m.yaml:4:21: devices[2].id: duplicate device id \"x\" (devices[0] already has it)\n");
  CHECK(check_device_ids(yaml("devices: [{id: a}, {id: b}, {driver: c}, {driver: d}]")).empty());
}

TEST_CASE("check_references: unknown backend with did-you-mean") {
  Diagnostics diagnostics =
      check_references(yaml("backends: {block: {disk0: {driver: raw, file: a}}}\ndevices:\n  - {driver: "
                            "virtio-blk-pci, drive: disk1}\n",
                            "m.yaml"));
  CHECK(dump(diagnostics) ==
        "m.yaml:1:20: backends.block.disk0: warning: block backend \"disk0\" is not used by any device "
        "(remove it, "
        "or refer to it from a device)\n"
        "m.yaml:3:37: devices[0].drive: unknown block backend \"disk1\" (did you mean \"disk0\"?)\n");
}

TEST_CASE("check_references: a name of the wrong kind says which kind it is") {
  Diagnostics diagnostics = check_references(
      yaml("backends:\n  chardev: {con0: {driver: stdio}}\n  block: {disk0: {driver: raw, file: a}}\n"
           "devices:\n  - {driver: virtio-blk-pci, drive: con0}\n  - {driver: ns16550, chardev: con0}\n",
           "m.yaml"));
  REQUIRE(diagnostics.size() == 2);
  CHECK(diagnostics[0].to_string() ==
        "m.yaml:5:37: devices[0].drive: \"con0\" is a chardev backend (backends.chardev), but drive needs a "
        "block "
        "backend (backends.block has: disk0)");
}

TEST_CASE("check_references: nothing defined of the needed kind") {
  Diagnostics diagnostics =
      check_references(yaml("devices:\n  - {driver: virtio-net-pci, netdev: n0}\n", "m.yaml"));
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].hint == "no net backend is defined; add one under backends.net");
}

TEST_CASE("check_references: exclusive backends serve one device, rng may be shared") {
  Diagnostics diagnostics = check_references(
      yaml("backends:\n  block: {disk0: {driver: raw, file: a}}\n  rng: {r: {driver: builtin}}\n"
           "devices:\n  - {driver: virtio-blk-pci, id: vda, drive: disk0}\n  - {driver: virtio-blk-pci, "
           "drive: disk0}\n"
           "  - {driver: virtio-rng-pci, rng: r}\n  - {driver: virtio-rng-mmio, rng: r}\n",
           "m.yaml"));
  CHECK(dump(diagnostics) ==
        "m.yaml:6:37: devices[1].drive: block backend \"disk0\" is already used by devices[0] (vda) (a block "
        "backend "
        "serves one device; define another under backends.block)\n");
}

TEST_CASE("check_references: passthrough and host name passthrough entries, exclusively") {
  const char* text =
      "passthrough:\n  gpu0: {driver: vfio-pci, host: \"0000:01:00.0\"}\n"
      "devices:\n  - {driver: vfio-pci, passthrough: gpu0}\n  - {driver: vfio-pci, host: gpu0}\n"
      "  - {driver: vfio-pci}\n";
  Diagnostics diagnostics = check_references(yaml(text, "m.yaml"));
  CHECK(dump(diagnostics) ==
        "m.yaml:5:30: devices[1].host: passthrough entry \"gpu0\" is already used by devices[0] (a "
        "passthrough entry "
        "serves one device; define another under passthrough)\n"
        "m.yaml:6:5: devices[2]: vfio-pci needs a host device (add passthrough: NAME, naming an entry under "
        "passthrough)\n");
}

TEST_CASE("check_references: unused backends are warnings, not errors") {
  Diagnostics diagnostics =
      check_references(yaml("backends: {chardev: {con0: {driver: stdio}, con1: {driver: null}}}\n"
                            "devices: [{driver: ns16550, chardev: con0}]\n",
                            "m.yaml"));
  REQUIRE(diagnostics.size() == 1);
  CHECK_FALSE(diagnostics[0].is_error());
  CHECK(diagnostics[0].path == "backends.chardev.con1");
  CHECK_FALSE(has_errors(diagnostics));
}

TEST_CASE("checks survive documents of the wrong shape") {
  for (const char* text : {"5", "[1, 2]", "devices: 5", "devices: [5, [], {id: 3}]", "backends: []",
                           "backends: {block: 5}", "devices: [{drive: 5}]", "cpu: {count: 2, topology: 3}"}) {
    Node doc = yaml(text);
    CHECK_NOTHROW(check_references(doc));
    CHECK_NOTHROW(check_device_ids(doc));
    CHECK_NOTHROW(check_machine_kind(doc));
  }
}

TEST_CASE("check_accel_options: lockstep needs a compiled tier") {
  Diagnostics d = check_accel_options(yaml("accel: [kvm, {type: jit, lockstep: true}]", "m.yaml"));
  REQUIRE(d.size() == 1);
  CHECK(d[0].path == "accel[1].lockstep");
  CHECK(d[0].message == "lockstep needs a compiled tier, and the tier is interp (the default)");
  CHECK(d[0].hint.find("tier: llvm") != std::string::npos);
  d = check_accel_options(yaml("accel: [{type: jit, tier: interp, lockstep: true}]", "m.yaml"));
  REQUIRE(d.size() == 1);
  CHECK(d[0].path == "accel[0].tier");
  CHECK(d[0].location.to_string() == "m.yaml:1:27");
  CHECK(check_accel_options(yaml("accel: [{type: jit, tier: llvm, lockstep: true}]")).empty());
  CHECK(check_accel_options(yaml("accel: [{type: jit, tier: auto, lockstep: true}]")).empty());
  CHECK(check_accel_options(yaml("accel: [{type: jit, lockstep: false}]")).empty());
  CHECK(check_accel_options(yaml("accel: [{type: jit, tier: 3, lockstep: true}]")).empty());  // the schema's
  CHECK(check_accel_options(yaml("accel: jit")).empty());
}
