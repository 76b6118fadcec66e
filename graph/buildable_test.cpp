#include "graph/buildable.h"

#include <doctest/doctest.h>

#include "tests/graph/resolve_helpers.h"

using namespace graph_test;

namespace {
std::string all(const config::Diagnostics& diagnostics) {
  std::string out;
  for (const config::Diagnostic& d : diagnostics) out += d.to_string() + "\n";
  return out;
}
}  // namespace

TEST_CASE("properties without an effect are refused where they are written") {
  auto r = resolve_yaml(std::string(kPc) +
                        "backends: {block: {d: {driver: raw, file: /x}, e: {driver: raw, file: /y}}}\n"
                        "devices:\n"
                        "  - {driver: virtio-scsi-pci, id: scsi0}\n"
                        "  - {driver: scsi-hd, bus: scsi0.0, drive: d}\n"
                        "  - {driver: virtio-blk-pci, drive: e, bootindex: 1}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  config::Diagnostics found = graph::check_buildable(r.graph);
  CAPTURE(all(found));
  REQUIRE(found.size() == 1);
  CHECK(found[0].to_string().rfind(
            "m.yaml:8:40: devices[2].bootindex: virtio-blk-pci.bootindex has no effect yet", 0) == 0);
  CHECK(found[0].is_error());
}

TEST_CASE("bootindex takes effect on pc with SeaBIOS, which reads the boot order") {
  auto r = resolve_yaml(
      "machine: {arch: x86_64, type: pc, memory: 64M}\n"
      "boot: {firmware: seabios}\n"
      "backends: {block: {e: {driver: raw, file: /y}}}\n"
      "devices:\n"
      "  - {driver: virtio-blk-pci, drive: e, bootindex: 1}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(all(graph::check_buildable(r.graph)).empty());
}

TEST_CASE("SCSI and virtio-serial controllers with their disks and ports can run") {
  auto r = resolve_yaml(std::string(kPc) +
                        "backends:\n"
                        "  block: {d: {driver: raw, file: /x}, c: {driver: raw, file: /y}}\n"
                        "  chardev: {p: {driver: \"null\"}, q: {driver: \"null\"}}\n"
                        "devices:\n"
                        "  - {driver: virtio-scsi-pci, id: scsi0}\n"
                        "  - {driver: scsi-hd, bus: scsi0.0, drive: d}\n"
                        "  - {driver: scsi-cd, bus: scsi0.0, drive: c}\n"
                        "  - {driver: virtio-serial-pci, id: vser}\n"
                        "  - {driver: virtconsole, bus: vser.0, chardev: p}\n"
                        "  - {driver: virtserialport, bus: vser.0, chardev: q, name: org.example.0}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(graph::check_buildable(r.graph).empty());
}

TEST_CASE("a property left at its default, and buildable devices, pass") {
  auto r = resolve_yaml(std::string(kPc) +
                        "backends: {block: {d: {driver: raw, file: /x}}}\n"
                        "devices: [{driver: virtio-blk-pci, drive: d}, {driver: virtio-rng-pci}]\n");
  REQUIRE(r.ok());
  CHECK(graph::check_buildable(r.graph).empty());
}

TEST_CASE("vfio-pci is refused on machines other than x86_64 pc, passthrough entries are fine") {
  auto riscv =
      resolve_yaml(std::string(kRiscv) + kBackends + "devices: [{driver: vfio-pci, passthrough: gpu0}]\n");
  REQUIRE_MESSAGE(riscv.ok(), diagnostics_text(riscv));
  config::Diagnostics found = graph::check_buildable(riscv.graph);
  REQUIRE(found.size() == 1);
  CHECK(found[0].is_error());
  CHECK(found[0].path == "devices[0].driver");
  CHECK(found[0].message == graph::kVfioPciOnlyOnPc);
  auto pc = resolve_yaml(std::string(kPc) + kBackends + "devices: [{driver: vfio-pci, passthrough: gpu0}]\n");
  REQUIRE_MESSAGE(pc.ok(), diagnostics_text(pc));
  CHECK(graph::check_buildable(pc.graph).empty());
}
