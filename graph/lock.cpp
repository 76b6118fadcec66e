#include "graph/lock.h"

#include <sys/stat.h>

#include "config/loader.h"
#include "graph/json_text.h"

namespace graph {

std::string lock_path_for(const std::string& config_path) {
  return config_path + ".lock";
}

std::optional<Lock> read_lock_file(const std::string& config_path, config::Diagnostics& diagnostics) {
  if (config_path == "-") return std::nullopt;  // a machine file on stdin has no lock file
  std::string path = lock_path_for(config_path);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  std::string error;
  std::optional<std::string> text = config::read_file(path, &error);
  if (!text) {
    diagnostics.push_back(config::Diagnostic::error({path}, "", "cannot read the lock file: " + error));
    return std::nullopt;
  }
  config::ParseResult parsed = config::parse_string(*text, path, config::Format::Yaml);
  for (config::Diagnostic& d : parsed.diagnostics) diagnostics.push_back(std::move(d));
  if (!parsed.ok()) return std::nullopt;
  size_t before = diagnostics.size();
  Lock lock = lock_from_document(parsed.node, diagnostics);
  if (config::has_errors({diagnostics.begin() + static_cast<long>(before), diagnostics.end()}))
    return std::nullopt;
  return lock;
}

Lock lock_from_document(const config::Node& document, config::Diagnostics& diagnostics) {
  Lock lock;
  lock.location = document.location();
  auto bad = [&](const config::Location& at, std::string path, std::string message) {
    diagnostics.push_back(
        config::Diagnostic::error(at, std::move(path), std::move(message),
                                  "delete the lock file and run `vmlaunch plan --lock` again"));
  };
  if (!document.is_map()) {
    bad(document.location(), "", "a lock file is a JSON object");
    return lock;
  }
  const config::Node* version = document.find("vmlaunch-lock");
  if (!version || !version->is_int() || version->as_int() != 1) {
    bad(version ? version->location() : document.location(), "vmlaunch-lock",
        "unsupported lock file version");
    return lock;
  }
  if (const config::Node* machine = document.find("machine"); machine && machine->is_string())
    lock.machine = machine->as_string();
  const config::Node* devices = document.find("devices");
  if (!devices || !devices->is_list()) {
    bad(document.location(), "devices", "missing devices list");
    return lock;
  }
  for (size_t i = 0; i < devices->items().size(); ++i) {
    const config::Node& item = devices->items()[i];
    std::string path = "devices[" + std::to_string(i) + "]";
    auto field = [&](const char* key) -> const config::Node* {
      const config::Node* n = item.is_map() ? item.find(key) : nullptr;
      return n && n->is_string() ? n : nullptr;
    };
    const config::Node *id = field("id"), *driver = field("driver"), *bus = field("bus"),
                       *addr = field("addr");
    if (!id || !driver || !bus || !addr) {
      bad(item.location(), path, "a lock entry needs id, driver, bus and addr strings");
      continue;
    }
    lock.entries.push_back(
        {id->as_string(), driver->as_string(), bus->as_string(), addr->as_string(), item.location()});
  }
  return lock;
}

Lock lock_from_graph(const Graph& graph) {
  Lock lock;
  lock.machine = graph.machine.arch + "/" + graph.machine.type;
  for (const Device& d : graph.devices) {
    if (d.builtin || !d.address_inferred || d.bus.empty()) continue;
    lock.entries.push_back({d.id, d.driver, d.bus, d.address.to_string(), {}});
  }
  return lock;
}

std::string lock_to_json(const Lock& lock) {
  std::string out = "{\n  \"vmlaunch-lock\": 1,\n  \"machine\": " + json_string(lock.machine) + ",\n";
  out += "  \"devices\": [";
  for (size_t i = 0; i < lock.entries.size(); ++i) {
    const LockEntry& e = lock.entries[i];
    out += i ? ",\n" : "\n";
    out += "    {\"id\": " + json_string(e.id) + ", \"driver\": " + json_string(e.driver) +
           ", \"bus\": " + json_string(e.bus) + ", \"addr\": " + json_string(e.addr) + "}";
  }
  out += lock.entries.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

}  // namespace graph
