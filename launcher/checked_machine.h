// The one sequence of checks that `validate`, `plan` and `up` share: load the file (schema and
// semantic checks), read its lock file, resolve the device graph. None of it asks the host, so the
// answer is the same wherever it runs; `validate` is `plan` without the rendering.
#pragma once

#include <optional>
#include <string>

#include "config/diagnostic.h"
#include "config/machine.h"
#include "graph/lock.h"
#include "graph/resolve.h"

namespace launcher {

struct CheckedMachine {
  config::LoadResult loaded;
  std::optional<graph::Lock> lock;
  graph::ResolveResult resolved;    // complete only when status == kExitOk
  config::Diagnostics diagnostics;  // everything to show, in the order found
  int status = 0;                   // kExitOk, kExitBadInput, or kExitRuntimeFailure (unreadable)
  bool ok() const { return status == 0; }
};

CheckedMachine check_machine(const std::string& file);

void print_diagnostics(const config::Diagnostics& diagnostics);

}  // namespace launcher
