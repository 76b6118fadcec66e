// `plan` output: the text tree, JSON that parses and agrees with the graph, DOT that Graphviz renders.
#include "graph/render.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/graph/resolve_helpers.h"
#include "tests/skip.h"

using namespace graph_test;

namespace {

graph::ResolveResult sample() {
  return resolve_yaml(std::string(kRiscv) + kBackends +
                      "boot: {firmware: opensbi, kernel: /k/Image, cmdline: \"console=ttyS0 \\\"q\\\"\"}\n"
                      "devices:\n"
                      "  - {driver: ns16550, id: serial0, chardev: con0}\n"
                      "  - {driver: pci-bridge, id: br1, bus: pcie.0, addr: 4}\n"
                      "  - {driver: virtio-blk-pci, id: vda, drive: disk0, bus: br1, addr: 1}\n"
                      "  - {driver: virtio-net-pci, netdev: net0}\n"
                      "  - {driver: virtio-scsi-pci, id: scsi0}\n");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("text: buses as a tree, inferred addresses marked, backends, memory map and IRQs") {
  auto r = sample();
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  std::string text = graph::render_text(r.graph);
  CHECK(contains(text,
                 "machine riscv64/virt \"t\": 256 MiB RAM, 1 CPU (rv64gc; 1 socket x 1 core x 1 thread)\n"));
  CHECK(contains(text, "accelerator: jit (first of [kvm, jit] that runs riscv64 guests)\n"));
  CHECK(contains(text, "  not kvm: runs only x86_64 guests\n"));
  CHECK(contains(text, "  bus pcie.0 (pci, slots 0-31)\n"));
  CHECK(contains(text, "    dev br1: pci-bridge @ 04.0, irq 32\n"));
  CHECK(contains(text, "      bus br1 (pci, slots 0-31)\n"));
  CHECK(contains(text, "        dev vda: virtio-blk-pci @ 01.0, irq 33\n"));
  CHECK(contains(text, "            drive -> block disk0 (raw)\n"));
  CHECK(contains(text, "  * dev virtio-net-pci.0: virtio-net-pci @ 01.0, irq 33\n"));
  CHECK(contains(text, "  * dev serial0: ns16550 @ slot 0, mmio 0x10000000-0x100000ff, irq 10\n"));
  CHECK(contains(text, "      bus scsi0.0 (scsi, slots 0-255)\n"));
  CHECK(contains(text, "  0x0000000080000000-0x000000008fffffff  ram         ram              256 MiB\n"));
  CHECK(contains(text, "  block disk1: raw, unused\n"));
  CHECK(contains(text, "irq lines (plic):\n"));
  CHECK(contains(text, "  10: serial0\n"));
  CHECK(contains(text, "boot: firmware opensbi, kernel /k/Image, cmdline \"console=ttyS0 \\\"q\\\"\"\n"));
}

TEST_CASE("json parses and agrees with the graph") {
  auto r = sample();
  REQUIRE(r.ok());
  nlohmann::json j = nlohmann::json::parse(graph::render_json(r.graph));
  CHECK(j["machine"]["arch"] == "riscv64");
  CHECK(j["machine"]["ram_size"] == 256ull << 20);
  CHECK(j["accel"]["name"] == "jit");
  CHECK(j["accel"]["candidates"] == nlohmann::json::array({"jit"}));
  CHECK(j["boot"]["cmdline"] == "console=ttyS0 \"q\"");
  CHECK(j["devices"].size() == r.graph.devices.size());
  CHECK(j["buses"].size() == r.graph.buses.size());
  nlohmann::json vda;
  for (const auto& d : j["devices"])
    if (d["id"] == "vda") vda = d;
  CHECK(vda["bus"] == "br1");
  CHECK(vda["addr"] == "01.0");
  CHECK(vda["slot"] == 1);
  CHECK(vda["function"] == 0);
  CHECK(vda["inferred"] == false);
  CHECK(vda["irq"] == 33);
  CHECK(vda["backends"][0]["name"] == "disk0");
  CHECK(vda["properties"]["queue-size"] == 256);
  CHECK(vda["location"] == "m.yaml:14:5");
  CHECK(j["memory_map"].size() == r.graph.memory_map.size());
  CHECK(j["irqs"][0]["controller"] == "plic");
}

TEST_CASE("dot is rendered by Graphviz") {
  if (std::system("command -v dot >/dev/null 2>&1") != 0) VML_SKIP("graphviz (dot) is not installed");
  auto r = sample();
  REQUIRE(r.ok());
  std::string dot = graph::render_dot(r.graph);
  CHECK(contains(dot, "\"bus:br1\" -> \"dev:vda\";"));
  CHECK(contains(dot, "\"dev:br1\" -> \"bus:br1\";"));
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = tmp ? tmp : "/tmp";
  std::string in = dir + "/plan.dot", out = dir + "/plan.svg";
  std::ofstream(in) << dot;
  REQUIRE(std::system(("dot -Tsvg -o '" + out + "' '" + in + "' 2>'" + dir + "/dot.err'").c_str()) == 0);
  std::stringstream svg;
  svg << std::ifstream(out).rdbuf();
  CHECK(contains(svg.str(), "<svg"));
  CHECK(contains(svg.str(), "virtio&#45;blk&#45;pci"));
}

TEST_CASE("sizes print in the largest exact binary unit") {
  CHECK(graph::format_size(512ull << 20) == "512 MiB");
  CHECK(graph::format_size(4096) == "4 KiB");
  CHECK(graph::format_size(1536) == "1536 bytes");
  CHECK(graph::format_size(1) == "1 byte");
  CHECK(graph::format_size(3ull << 30) == "3 GiB");
}
