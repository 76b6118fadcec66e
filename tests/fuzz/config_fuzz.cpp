// libFuzzer target: any bytes, read as YAML and as TOML, then through every later stage (interpolation,
// paths, schema, semantic checks). The loader's contract is "never crash, never hang, never throw";
// libFuzzer + ASan find the inputs that break it. Built by config_fuzz_test.sh with clang++-14.
// Beyond not crashing, two properties from issue 14 are checked on every input: no string or key
// of an accepted document holds a NUL byte (it would cut a path where it reaches the C library),
// and no message carries a raw control character (quoted user text must not drive a terminal).
// A document the checks accept then goes through what `validate` and `plan` run next (graph
// resolution, the buildable checks, every rendering of the plan): they too must not crash, and a
// graph resolution that reports no error must give a graph that renders.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

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
  return 0;
}
