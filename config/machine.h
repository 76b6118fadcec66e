// The entry point for everyone who reads machine files (validate, plan, up):
//   LoadResult r = config::load_machine("examples/riscv64-linux.yaml", config::Environment());
//   for (auto& d : r.diagnostics) std::cerr << d.to_string() << "\n";
//   if (r.ok()) use(r.document);
// The document is merged (extends), interpolated (${VAR}), path-resolved (relative to the file that
// wrote each path) and checked against the schema and the semantic checks.
#pragma once

#include <string>
#include <vector>

#include "config/diagnostic.h"
#include "config/environment.h"
#include "config/loader.h"
#include "config/node.h"

namespace config {

struct LoadResult {
  Node document;                   // the resolved machine; a Map when the file could be parsed
  Diagnostics diagnostics;         // every problem found (errors and warnings), sorted by file, line, column
  std::vector<std::string> files;  // the files read: the machine file first, then what it extends
  bool readable = true;            // false when the machine file itself could not be read (exit 1)

  // Readable and without errors (warnings allowed): safe to plan and run.
  bool ok() const { return readable && !has_errors(diagnostics); }
};

LoadResult load_machine(const std::string& path, const Environment& env = Environment());

// The stages after parsing, for a document that did not come from load_machine (tests, fuzzing):
// interpolation, path resolution, then check_machine. Returns all diagnostics, sorted.
Diagnostics process_document(Node& document, const Environment& env);

// Schema validation plus every semantic check, on an already resolved document.
Diagnostics check_machine(const Node& document);

// Stable order for output: by file, line, column; exact duplicates removed.
void sort_diagnostics(Diagnostics& diagnostics);

}  // namespace config
