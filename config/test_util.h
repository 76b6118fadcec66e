// Helpers shared by config's tests.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "config/loader.h"
#include "config/machine.h"

namespace config::testing {

// Parses YAML that the test expects to be well-formed.
inline Node yaml(const std::string& text, const std::string& file = "test.yaml") {
  ParseResult parsed = parse_yaml_string(text, file);
  for (const Diagnostic& d : parsed.diagnostics) MESSAGE(d.to_string());
  REQUIRE(parsed.ok());
  return parsed.node;
}

// The first diagnostic whose message contains `needle`, or nullptr.
inline const Diagnostic* find_message(const Diagnostics& diagnostics, const std::string& needle) {
  auto it = std::find_if(diagnostics.begin(), diagnostics.end(),
                         [&](const Diagnostic& d) { return d.message.find(needle) != std::string::npos; });
  return it == diagnostics.end() ? nullptr : &*it;
}

// One line per diagnostic, in output order (sorted by location, as validate prints them).
inline std::string dump(Diagnostics diagnostics) {
  sort_diagnostics(diagnostics);
  std::string text;
  for (const Diagnostic& d : diagnostics) text += d.to_string() + "\n";
  return text;
}

}  // namespace config::testing
