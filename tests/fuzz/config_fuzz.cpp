// libFuzzer target: any bytes, read as YAML and as TOML, then through every later stage (interpolation,
// paths, schema, semantic checks). The loader's contract is "never crash, never hang, never throw";
// libFuzzer + ASan find the inputs that break it. Built by config_fuzz_test.sh with clang++-14.
// Beyond not crashing, two properties from issue 14 are checked on every input: no string or key
// of an accepted document holds a NUL byte (it would cut a path where it reaches the C library),
// and no message carries a raw control character (quoted user text must not drive a terminal).
// A document the checks accept then goes through what `validate` and `plan` run next (graph
// resolution, the buildable checks, every rendering of the plan): they too must not crash, and a
// graph resolution that reports no error must give a graph that renders.
// The same bytes are also a lock file (graph/lock.h: machine.yaml.lock, hostile when a checkout is):
// honoured by the resolution of two fixed machines with inferred PCI addresses, it may move
// devices or be reported, never crash the resolution or make it claim one address twice.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "config/loader.h"
#include "config/machine.h"
#include "graph/buildable.h"
#include "graph/render.h"
#include "graph/resolve.h"

namespace {

[[noreturn]] void violated(const char* property, std::string_view detail) {
  std::fprintf(stderr, "property violated: %s: %.*s\n", property,
               static_cast<int>(detail.size() > 200 ? 200 : detail.size()), detail.data());
  std::abort();
}

void check_no_nul(const config::Node& node) {
  if (node.is_string() && node.as_string().find('\0') != std::string::npos)
    violated("NUL in a string", node.as_string());
  if (node.is_map())
    for (const config::Node::Entry& entry : node.entries()) {
      if (entry.key.find('\0') != std::string::npos) violated("NUL in a key", entry.key);
      check_no_nul(entry.value);
    }
  if (node.is_list())
    for (const config::Node& item : node.items()) check_no_nul(item);
}

void check_messages(const config::Diagnostics& diagnostics) {
  for (const config::Diagnostic& d : diagnostics) {
    std::string text = d.to_string();
    for (char c : text)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) violated("control character in a message", text);
  }
}

// Machines whose devices' addresses a lock file can pin: PCI on riscv64 and x86_64, virtio-mmio.
constexpr std::string_view kLockedMachines[] = {
    R"(name: locked-riscv
machine: {arch: riscv64, type: virt, memory: 64MiB}
accel: [jit]
boot: {firmware: none, kernel: /dev/null}
backends:
  block: {d0: {driver: raw, file: /dev/null}, d1: {driver: raw, file: /dev/null}}
  net: {n0: {driver: user}}
devices:
  - {driver: virtio-blk-pci, drive: d0}
  - {driver: virtio-blk-pci, id: second, drive: d1}
  - {driver: virtio-net-pci, netdev: n0}
  - {driver: virtio-rng-mmio}
)",
    R"(name: locked-pc
machine: {arch: x86_64, type: pc, memory: 64MiB}
accel: [kvm]
boot: {kernel: /dev/null}
backends:
  block: {d0: {driver: raw, file: /dev/null}}
devices:
  - {driver: pci-bridge, id: br1}
  - {driver: virtio-blk-pci, drive: d0}
  - {driver: virtio-rng-pci, bus: br1}
)"};

void fuzz_lock(std::string_view text) {
  static const std::vector<config::Node>* machines = [] {
    auto* out = new std::vector<config::Node>();
    static const config::Environment env = config::Environment::fixed({{"HOME", "/home/fuzz"}});
    for (std::string_view machine : kLockedMachines) {
      config::ParseResult parsed = config::parse_string(machine, "locked.yaml", config::Format::Yaml);
      if (!parsed.ok() || config::has_errors(config::process_document(parsed.node, env)) ||
          !graph::resolve(parsed.node).ok())
        violated("a fixed machine for the lock fuzzer does not resolve", machine);
      out->push_back(parsed.node);
    }
    return out;
  }();
  config::ParseResult parsed = config::parse_string(text, "fuzz.yaml.lock", config::Format::Yaml);
  if (!parsed.ok()) return;
  config::Diagnostics diagnostics;
  graph::Lock lock = graph::lock_from_document(parsed.node, diagnostics);
  check_messages(diagnostics);
  for (const config::Node& machine : *machines) {
    graph::ResolveOptions options;
    options.lock = &lock;
    graph::ResolveResult resolved = graph::resolve(machine, options);
    check_messages(resolved.diagnostics);
    if (!resolved.ok()) continue;
    // Two devices at one address of one bus would be a machine that cannot be built.
    std::set<std::pair<std::string, std::string>> taken;
    for (const graph::Device& device : resolved.graph.devices) {
      if (device.builtin || device.bus.empty()) continue;
      if (!taken.insert({device.bus, device.address.to_string()}).second)
        violated("a lock file made two devices share an address", device.id);
    }
    (void)graph::render_text(resolved.graph);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const config::Environment env = config::Environment::fixed({{"HOME", "/home/fuzz"}, {"X", "x"}});
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (config::Format format : {config::Format::Yaml, config::Format::Toml}) {
    config::ParseResult parsed = config::parse_string(text, "fuzz.input", format);
    check_messages(parsed.diagnostics);
    if (!parsed.ok()) continue;
    check_no_nul(parsed.node);
    config::Diagnostics diagnostics = config::process_document(parsed.node, env);
    check_messages(diagnostics);
    if (config::has_errors(diagnostics)) continue;
    graph::ResolveResult resolved = graph::resolve(parsed.node);
    check_messages(resolved.diagnostics);
    check_messages(graph::check_buildable(resolved.graph));
    if (!resolved.ok()) continue;
    if (graph::render_text(resolved.graph).empty() || graph::render_json(resolved.graph).empty())
      violated("an accepted graph renders to nothing", text);
    (void)graph::render_dot(resolved.graph);
  }
  fuzz_lock(text);
  return 0;
}
