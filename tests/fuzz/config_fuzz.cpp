// libFuzzer target: any bytes, read as YAML and as TOML, then through every later stage (interpolation,
// paths, schema, semantic checks). The loader's contract is "never crash, never hang, never throw";
// libFuzzer + ASan find the inputs that break it. Built by config_fuzz_test.sh with clang++-14.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/loader.h"
#include "config/machine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const config::Environment env = config::Environment::fixed({{"HOME", "/home/fuzz"}, {"X", "x"}});
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (config::Format format : {config::Format::Yaml, config::Format::Toml}) {
    config::ParseResult parsed = config::parse_string(text, "fuzz.input", format);
    if (!parsed.ok()) continue;
    config::Diagnostics diagnostics = config::process_document(parsed.node, env);
    for (const config::Diagnostic& d : diagnostics) (void)d.to_string();
  }
  return 0;
}
