// Test helpers: resolve a machine written inline as YAML. Resolution never asks the host (the
// accelerator is the file's preference), so these need no fake accelerators.
#pragma once

#include <stdexcept>
#include <string>

#include "config/loader.h"
#include "graph/resolve.h"

namespace graph_test {

inline config::Node parse(const std::string& yaml, const std::string& file = "m.yaml") {
  config::ParseResult parsed = config::parse_yaml_string(yaml, file);
  if (!parsed.ok()) {
    std::string message = "test YAML does not parse:";
    for (const config::Diagnostic& d : parsed.diagnostics) message += " " + d.to_string();
    throw std::runtime_error(message);
  }
  return parsed.node;
}

inline graph::ResolveResult resolve_yaml(const std::string& yaml, const graph::Lock* lock = nullptr) {
  static config::Node document;  // resolve() keeps no references, but keep it alive for clarity
  document = parse(yaml);
  graph::ResolveOptions options;
  options.lock = lock;
  return graph::resolve(document, options);
}

inline std::string diagnostics_text(const graph::ResolveResult& r) {
  std::string out;
  for (const config::Diagnostic& d : r.diagnostics) out += d.to_string() + "\n";
  return out;
}

constexpr const char* kRiscv =
    "name: t\nmachine: {arch: riscv64, type: virt, memory: 256MiB}\naccel: [kvm, jit]\n";
constexpr const char* kPc = "name: t\nmachine: {arch: x86_64, type: pc, memory: 1G}\naccel: [kvm]\n";
constexpr const char* kMicrovm =
    "name: t\nmachine: {arch: x86_64, type: microvm, memory: 1G}\naccel: [kvm]\n";
constexpr const char* kBackends =
    "backends:\n"
    "  chardev: {con0: {driver: stdio}, con1: {driver: null}}\n"
    "  block: {disk0: {driver: raw, file: a.img}, disk1: {driver: raw, file: b.img}}\n"
    "  net: {net0: {driver: user}, net1: {driver: user}}\n"
    "  rng: {rng0: {driver: random}}\n"
    "passthrough: {gpu0: {driver: vfio-pci, host: \"0000:01:00.0\"}}\n";

}  // namespace graph_test
