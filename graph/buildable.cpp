#include "graph/buildable.h"

#include "base/field_use.h"
#include "hw/catalogue/catalogue.h"

// Refused at validate until they can take effect (see check_buildable): bootindex takes effect only
// where a firmware reads the boot order (x86_64/pc with SeaBIOS, hw/x86/seabios.cpp).
VML_REFUSES("devices[].bootindex");

namespace graph {

config::Diagnostics check_buildable(const Graph& graph) {
  namespace cat = hw::catalogue;
  config::Diagnostics out;
  const bool reads_boot_order =
      graph.machine.arch == "x86_64" && graph.machine.type == "pc" && graph.boot.firmware == "seabios";
  for (size_t i = 0; i < graph.devices.size(); ++i) {
    const Device& d = graph.devices[i];
    if (d.builtin) continue;
    const std::string path = "devices[" + std::to_string(d.config_index) + "]";
    if (std::string_view why = cat::device_not_yet(d.driver); !why.empty())
      out.push_back(config::Diagnostic::error(d.location, path + ".driver",
                                              "\"" + d.driver + "\" cannot run yet", std::string(why)));
    for (const Property& p : d.properties) {
      if (p.is_default) continue;
      if (p.name == "bootindex" && reads_boot_order) continue;
      if (std::string_view why = cat::property_not_yet(d.driver, p.name); !why.empty())
        out.push_back(
            config::Diagnostic::error(p.location.known() ? p.location : d.location, path + "." + p.name,
                                      d.driver + "." + p.name + " has no effect yet", std::string(why)));
    }
  }
  // The device model delivers the host device's interrupts as MSI only, which pc's in-kernel LAPICs
  // take (riscv virt has no MSI controller, microvm no PCI).
  if (graph.machine.arch != "x86_64" || graph.machine.type != "pc")
    for (const Device& d : graph.devices)
      if (d.driver == "vfio-pci")
        out.push_back(config::Diagnostic::error(
            d.location, "devices[" + std::to_string(d.config_index) + "].driver", kVfioPciOnlyOnPc,
            "use machine {arch: x86_64, type: pc}; INTx forwarding (riscv virt) "
            "is not written yet"));
  return out;
}

}  // namespace graph
