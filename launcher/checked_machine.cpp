#include "launcher/checked_machine.h"

#include <cstdio>
#include <set>

#include "accel/registry.h"
#include "config/schema.h"
#include "graph/buildable.h"
#include "launcher/command.h"

namespace launcher {

namespace {

// cpu.features by the rules of the accelerators that could run the file (static rules: whether this
// host's KVM offers a feature is `up`'s question). An entry none of them can honour is bad input.
config::Diagnostics check_cpu_features(const config::Node& document, const graph::AccelChoice& accel) {
  config::Diagnostics out;
  const config::Node* cpu = document.is_map() ? document.find("cpu") : nullptr;
  const config::Node* features = cpu && cpu->is_map() ? cpu->find("features") : nullptr;
  if (!features || !features->is_list() || accel.candidates.empty()) return out;
  for (size_t i = 0; i < features->items().size(); ++i) {
    const config::Node& item = features->items()[i];
    if (!item.is_string() || item.as_string().empty()) continue;
    std::string feature = item.as_string();
    if (feature[0] != '+' && feature[0] != '-') feature = "+" + feature;  // the schema's "name" = "+name"
    std::string why;
    bool honoured = false;
    for (const std::string& candidate : accel.candidates) {
      std::string problem = accel::Registry::builtin().cpu_feature_problem(candidate, feature);
      if (problem.empty()) {
        honoured = true;
        break;
      }
      if (why.empty()) why = problem.rfind(candidate + ": ", 0) == 0 ? problem : candidate + ": " + problem;
    }
    if (!honoured)
      out.push_back(config::Diagnostic::error(item.location(), config::join_path("cpu.features", i), why,
                                              "remove it, or name a feature of this architecture"));
  }
  return out;
}

}  // namespace

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
  config::Diagnostics features = check_cpu_features(out.loaded.document, out.resolved.graph.accel);
  buildable.insert(buildable.end(), features.begin(), features.end());
  config::sort_diagnostics(buildable);
  out.diagnostics.insert(out.diagnostics.end(), buildable.begin(), buildable.end());
  if (!out.resolved.ok() || config::has_errors(buildable)) out.status = kExitBadInput;
  return out;
}

}  // namespace launcher
