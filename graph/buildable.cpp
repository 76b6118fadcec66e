#include "graph/buildable.h"

#include "base/field_use.h"
#include "hw/catalogue/catalogue.h"

// Refused at validate until they can take effect (see check_buildable).
VML_REFUSES("passthrough.*");
VML_REFUSES("devices[].passthrough");
VML_REFUSES("devices[].host");
VML_REFUSES("devices[].bootindex");
VML_REFUSES("device-type:vfio-pci");  // through its passthrough entry

namespace graph {

config::Diagnostics check_buildable(const Graph& graph) {
  namespace cat = hw::catalogue;
  config::Diagnostics out;
  for (size_t i = 0; i < graph.devices.size(); ++i) {
    const Device& d = graph.devices[i];
    if (d.builtin) continue;
    const std::string path = "devices[" + std::to_string(d.config_index) + "]";
    if (std::string_view why = cat::device_not_yet(d.driver); !why.empty())
      out.push_back(config::Diagnostic::error(d.location, path + ".driver",
                                              "\"" + d.driver + "\" cannot run yet", std::string(why)));
    for (const Property& p : d.properties) {
      if (p.is_default) continue;
      if (std::string_view why = cat::property_not_yet(d.driver, p.name); !why.empty())
        out.push_back(
            config::Diagnostic::error(p.location.known() ? p.location : d.location, path + "." + p.name,
                                      d.driver + "." + p.name + " has no effect yet", std::string(why)));
    }
  }
  for (const Backend& b : graph.backends)
    if (b.kind == BackendKind::Passthrough)
      out.push_back(config::Diagnostic::warning(b.location, "passthrough." + b.name, kNoPassthrough,
                                                "vmlaunch up refuses machines with passthrough entries until "
                                                "it can attach them"));
  return out;
}

}  // namespace graph
