#include "launcher/passthrough_preflight.h"

namespace launcher {

config::Diagnostics preflight_passthrough(const graph::Graph& graph, const passthrough::HostFacts& host) {
  config::Diagnostics out;
  for (const graph::Backend& b : graph.backends) {
    if (b.kind != graph::BackendKind::Passthrough || b.driver != "vfio-pci") continue;
    const config::Node* address = b.options.is_map() ? b.options.find("host") : nullptr;
    if (!address || !address->is_string()) continue;  // the schema requires it
    config::Location at = address->location().known() ? address->location() : b.location;
    for (const passthrough::Problem& p :
         passthrough::check_vfio_pci(address->as_string(), graph.machine.ram_size, host))
      out.push_back(config::Diagnostic::error(at, "passthrough." + b.name + ".host", p.message, p.fix));
  }
  return out;
}

}  // namespace launcher
