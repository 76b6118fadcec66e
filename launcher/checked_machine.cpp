#include "launcher/checked_machine.h"

#include <cstdio>
#include <set>

#include "graph/buildable.h"
#include "launcher/command.h"

namespace launcher {

void print_diagnostics(const config::Diagnostics& diagnostics) {
  for (const config::Diagnostic& d : diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
}

CheckedMachine check_machine(const std::string& file) {
  CheckedMachine out;
  out.loaded = config::load_machine(file, config::Environment());
  if (!out.loaded.readable) {
    out.diagnostics = out.loaded.diagnostics;
    out.status = kExitRuntimeFailure;
    return out;
  }
  if (!out.loaded.ok()) {
    // Report the device graph's problems in the same run (unknown buses, taken slots, cycles), except
    // where the checks already flagged the same spot or a part of the same setting (`accel[1]` for
    // `accel`): one run shows everything that needs fixing, each thing once.
    out.diagnostics = out.loaded.diagnostics;
    if (out.loaded.document.is_map()) {
      std::set<std::string> flagged;
      for (const config::Diagnostic& d : out.loaded.diagnostics) flagged.insert(d.location.to_string());
      auto covered = [&](const config::Diagnostic& d) {
        if (flagged.count(d.location.to_string())) return true;
        for (const config::Diagnostic& seen : out.loaded.diagnostics) {
          const std::string& p = seen.path;
          if (!d.path.empty() && p.rfind(d.path, 0) == 0 &&
              (p.size() == d.path.size() || p[d.path.size()] == '[' || p[d.path.size()] == '.'))
            return true;
        }
        return false;
      };
      for (const config::Diagnostic& d : graph::resolve(out.loaded.document).diagnostics)
        if (d.is_error() && d.location.known() && !covered(d)) out.diagnostics.push_back(d);
    }
    config::sort_diagnostics(out.diagnostics);
    out.status = kExitBadInput;
    return out;
  }
  out.diagnostics = out.loaded.diagnostics;

  config::Diagnostics lock_diagnostics;
  out.lock = graph::read_lock_file(file, lock_diagnostics);
  out.diagnostics.insert(out.diagnostics.end(), lock_diagnostics.begin(), lock_diagnostics.end());
  if (config::has_errors(lock_diagnostics)) {
    out.status = kExitBadInput;
    return out;
  }

  graph::ResolveOptions options;
  options.lock = out.lock ? &*out.lock : nullptr;
  out.resolved = graph::resolve(out.loaded.document, options);
  out.diagnostics.insert(out.diagnostics.end(), out.resolved.diagnostics.begin(),
                         out.resolved.diagnostics.end());
  // Devices and properties no machine builder honours yet, passthrough entries (also on a partial
  // graph: one run shows everything).
  config::Diagnostics buildable = graph::check_buildable(out.resolved.graph);
  config::sort_diagnostics(buildable);
  out.diagnostics.insert(out.diagnostics.end(), buildable.begin(), buildable.end());
  if (!out.resolved.ok() || config::has_errors(buildable)) out.status = kExitBadInput;
  return out;
}

}  // namespace launcher
