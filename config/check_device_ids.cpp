#include <map>

#include "config/checks.h"
#include "config/schema.h"

namespace config {

Diagnostics check_device_ids(const Node& document) {
  Diagnostics out;
  const Node* devices = document.is_map() ? document.find("devices") : nullptr;
  if (!devices || !devices->is_list()) return out;
  std::map<std::string, size_t> first_use;
  for (size_t i = 0; i < devices->items().size(); ++i) {
    const Node& device = devices->items()[i];
    const Node* id = device.is_map() ? device.find("id") : nullptr;
    if (!id || !id->is_string()) continue;
    auto [it, inserted] = first_use.emplace(id->as_string(), i);
    if (!inserted)
      out.push_back(Diagnostic::error(id->location(), join_path(join_path("devices", i), "id"),
                                      "duplicate device id \"" + id->as_string() + "\"",
                                      "devices[" + std::to_string(it->second) + "] already has it"));
  }
  return out;
}

}  // namespace config
