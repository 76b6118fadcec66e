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

TEST_CASE("devices and properties without a builder are refused where they are written") {
  auto r = resolve_yaml(std::string(kPc) +
                        "backends: {block: {d: {driver: raw, file: /x}, e: {driver: raw, file: /y}}}\n"
                        "devices:\n"
                        "  - {driver: virtio-scsi-pci, id: scsi0}\n"
                        "  - {driver: scsi-hd, bus: scsi0.0, drive: d}\n"
                        "  - {driver: virtio-blk-pci, drive: e, bootindex: 1}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  config::Diagnostics found = graph::check_buildable(r.graph);
  CAPTURE(all(found));
  REQUIRE(found.size() == 3);
  CHECK(found[0].to_string().rfind(
            "m.yaml:6:5: devices[0].driver: \"virtio-scsi-pci\" cannot run yet (vmlaunch has no "
            "SCSI emulation yet; use virtio-blk-pci",
            0) == 0);
  CHECK(found[1].path == "devices[1].driver");
  CHECK(found[2].to_string().rfind(
            "m.yaml:8:40: devices[2].bootindex: virtio-blk-pci.bootindex has no effect yet", 0) == 0);
  for (const config::Diagnostic& d : found) CHECK(d.is_error());
}

TEST_CASE("a property left at its default, and buildable devices, pass") {
  auto r = resolve_yaml(std::string(kPc) +
                        "backends: {block: {d: {driver: raw, file: /x}}}\n"
                        "devices: [{driver: virtio-blk-pci, drive: d}, {driver: virtio-rng-pci}]\n");
  REQUIRE(r.ok());
  CHECK(graph::check_buildable(r.graph).empty());
}

TEST_CASE("passthrough entries are a warning on every host, used or not") {
  auto r = resolve_yaml(std::string(kRiscv) + kBackends);
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  config::Diagnostics found = graph::check_buildable(r.graph);
  REQUIRE(found.size() == 1);
  CHECK_FALSE(found[0].is_error());
  CHECK(found[0].path == "passthrough.gpu0");
  CHECK(found[0].message == graph::kNoPassthrough);
}
