#include "launcher/host_accelerator.h"

#include "base/field_use.h"

VML_CONSUMES("accel");  // up tries the candidates in the file's order

namespace launcher {

accel::Selection select_on_host(const graph::Graph& graph) {
  const accel::Registry& registry = accel::Registry::builtin();
  accel::Selection selection = registry.select(graph.accel.candidates, graph.machine.arch);
  if (selection.ok && !registry.has_factory(selection.name)) {
    selection.ok = false;
    selection.rejected.push_back({selection.name, "not built into this vmlaunch"});
    selection.error = "no usable accelerator for " + graph.machine.arch + " guests:";
    for (size_t i = 0; i < selection.rejected.size(); ++i)
      selection.error +=
          std::string(i ? ";" : "") + " " + selection.rejected[i].name + ": " + selection.rejected[i].reason;
  }
  return selection;
}

std::string host_note(const graph::Graph& graph) {
  if (graph.accel.candidates.empty()) return {};
  accel::Selection selection = select_on_host(graph);
  std::string rejected;
  for (const accel::Selection::Rejected& r : selection.rejected)
    rejected += (rejected.empty() ? "" : "; ") + r.name + ": " + r.reason;
  if (!selection.ok)
    return "note: this host cannot run this machine (" + rejected + "); `vmlaunch up` here would exit 1";
  if (selection.name == graph.accel.name) return "note: this host can run it on " + selection.name;
  return "note: this host cannot run " + graph.accel.name + " (" + rejected +
         "); `vmlaunch up` here would use " + selection.name;
}

}  // namespace launcher
