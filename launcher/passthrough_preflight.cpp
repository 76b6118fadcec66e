#include "launcher/passthrough_preflight.h"

#include "launcher/machine_state.h"
#include "vmm/state_dir.h"

namespace launcher {
namespace {

// The host address of a vfio-pci entry; null for other entries (the schema requires `host`).
const config::Node* vfio_host(const graph::Backend& b) {
  if (b.kind != graph::BackendKind::Passthrough || b.driver != "vfio-pci") return nullptr;
  const config::Node* address = b.options.is_map() ? b.options.find("host") : nullptr;
  return address && address->is_string() ? address : nullptr;
}

// A usb-host entry's selector and serial; false for other entries.
bool usb_host(const graph::Backend& b, const config::Node*& selector, std::string& serial) {
  if (b.kind != graph::BackendKind::Passthrough || b.driver != "usb-host" || !b.options.is_map())
    return false;
  selector = b.options.find("host");
  if (!selector || !selector->is_string()) return false;
  const config::Node* s = b.options.find("serial");
  serial = s && s->is_string() ? s->as_string() : "";
  return true;
}

}  // namespace

config::Diagnostics preflight_passthrough(const graph::Graph& graph, const passthrough::HostFacts& host,
                                          const std::vector<passthrough::HeldDevice>& held) {
  config::Diagnostics out;
  for (const graph::Backend& b : graph.backends) {
    const config::Node* address = vfio_host(b);
    if (!address) continue;
    config::Location at = address->location().known() ? address->location() : b.location;
    std::vector<passthrough::Problem> problems =
        passthrough::check_vfio_pci(address->as_string(), graph.machine.ram_size, host);
    for (passthrough::Problem& p : passthrough::check_not_held(address->as_string(), held, host.root))
      problems.push_back(std::move(p));
    for (const passthrough::Problem& p : problems)
      out.push_back(config::Diagnostic::error(at, "passthrough." + b.name + ".host", p.message, p.fix));
  }
  for (const graph::Backend& b : graph.backends) {
    const config::Node* selector = nullptr;
    std::string serial;
    if (!usb_host(b, selector, serial)) continue;
    config::Location at = selector->location().known() ? selector->location() : b.location;
    std::vector<passthrough::Problem> problems =
        passthrough::check_usb_host(selector->as_string(), serial, host);
    if (auto path = passthrough::usb_path(selector->as_string(), serial, host.root))
      for (passthrough::Problem& p : passthrough::check_usb_not_held(*path, held))
        problems.push_back(std::move(p));
    for (const passthrough::Problem& p : problems)
      out.push_back(config::Diagnostic::error(at, "passthrough." + b.name + ".host", p.message, p.fix));
  }
  return out;
}

std::vector<passthrough::HeldDevice> devices_held_by_machines(const std::string& except) {
  std::vector<passthrough::HeldDevice> held;
  auto root = vmm::state_root();
  if (!root.ok()) return held;  // no machine can have been started with a state directory either
  for (const vmm::MachineRecord& record : vmm::list_records(root.value())) {
    if (!record.vmm_alive || record.name == except) continue;
    // Written by that machine's VMM, but read as untrusted: anything malformed is skipped.
    nlohmann::json info = nlohmann::json::parse(read_text(record.dir / "machine.json"), nullptr, false);
    if (!info.is_object()) continue;
    auto list = info.find("passthrough");
    if (list == info.end() || !list->is_array()) continue;
    for (const nlohmann::json& entry : *list) {
      if (!entry.is_object() || !entry.contains("host") || !entry["host"].is_string()) continue;
      passthrough::HeldDevice device;
      device.machine = record.name;
      device.pid = record.pid;
      device.entry =
          entry.contains("entry") && entry["entry"].is_string() ? entry["entry"].get<std::string>() : "?";
      device.bdf = entry["host"].get<std::string>();
      held.push_back(std::move(device));
    }
  }
  return held;
}

nlohmann::json passthrough_record(const graph::Graph& graph) {
  nlohmann::json out = nlohmann::json::array();
  for (const graph::Backend& b : graph.backends) {
    if (const config::Node* address = vfio_host(b))
      out.push_back({{"entry", b.name}, {"driver", b.driver}, {"host", address->as_string()}});
    // USB: the bus-port path it resolves to now, whatever the entry wrote (ids or path).
    const config::Node* selector = nullptr;
    std::string serial;
    if (usb_host(b, selector, serial))
      if (auto path = passthrough::usb_path(selector->as_string(), serial))
        out.push_back({{"entry", b.name}, {"driver", b.driver}, {"host", *path}});
  }
  return out;
}

}  // namespace launcher
