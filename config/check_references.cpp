#include <map>
#include <set>

#include "config/checks.h"
#include "config/did_you_mean.h"
#include "config/schema.h"

namespace config {
namespace {

struct Kind {
  const char* name;   // the x-vmlaunch-ref value
  const char* label;  // in messages: "block backend"
  const char* where;  // where such backends are defined
  bool exclusive;     // one device at most (a disk or a host device cannot be shared)
};

// The kinds of named resources devices refer to. rng sources can feed several devices; a chardev,
// disk, network backend or host device serves exactly one.
const Kind kKinds[] = {
    {"chardev", "chardev backend", "backends.chardev", true},
    {"block", "block backend", "backends.block", true},
    {"net", "net backend", "backends.net", true},
    {"rng", "rng backend", "backends.rng", false},
    {"fs", "fs backend", "backends.fs", true},
    {"passthrough", "passthrough entry", "passthrough", true},
};

const Kind* find_kind(const std::string& name) {
  for (const Kind& kind : kKinds)
    if (name == kind.name) return &kind;
  return nullptr;
}

const Node* definitions(const Node& document, const Kind& kind) {
  if (!document.is_map()) return nullptr;
  const Node* table = nullptr;
  if (std::string(kind.name) == "passthrough") {
    table = document.find("passthrough");
  } else if (const Node* backends = document.find("backends"); backends && backends->is_map()) {
    table = backends->find(kind.name);
  }
  return table && table->is_map() ? table : nullptr;
}

std::vector<std::string> names_in(const Node* table) {
  std::vector<std::string> names;
  if (table)
    for (const Node::Entry& entry : table->entries()) names.push_back(entry.key);
  return names;
}

std::string describe_device(const Node& device, size_t index) {
  std::string text = "devices[" + std::to_string(index) + "]";
  if (const Node* id = device.find("id"); id && id->is_string()) text += " (" + id->as_string() + ")";
  return text;
}

}  // namespace

Diagnostics check_references(const Node& document) {
  Diagnostics out;
  const nlohmann::json* device_schema = schema_resolve(schema_json()["definitions"]["device"]);
  const Node* devices = document.is_map() ? document.find("devices") : nullptr;
  // kind -> backend name -> first device using it
  std::map<std::string, std::map<std::string, size_t>> used;
  if (devices && devices->is_list() && device_schema) {
    for (size_t i = 0; i < devices->items().size(); ++i) {
      const Node& device = devices->items()[i];
      if (!device.is_map()) continue;
      const std::string device_path = join_path("devices", i);
      bool has_passthrough = false;
      for (const Node::Entry& entry : device.entries()) {
        const nlohmann::json* property = schema_property(*device_schema, entry.key);
        const nlohmann::json* ref = property ? schema_keyword(*property, "x-vmlaunch-ref") : nullptr;
        if (!ref || !ref->is_string() || !entry.value.is_string()) continue;
        const Kind* kind = find_kind(ref->get<std::string>());
        if (!kind) continue;
        const std::string& name = entry.value.as_string();
        const std::string path = join_path(device_path, entry.key);
        const Location& at = entry.value.location();
        if (std::string(kind->name) == "passthrough") {
          if (has_passthrough)
            out.push_back(Diagnostic::error(at, path, "a device takes one host device",
                                            "write either passthrough or host, not both"));
          has_passthrough = true;
        }
        const Node* table = definitions(document, *kind);
        const std::string label = kind->label;
        if (table && table->find(name)) {
          auto [first, inserted] = used[kind->name].emplace(name, i);
          if (!inserted && kind->exclusive)
            out.push_back(
                Diagnostic::error(at, path,
                                  label + " \"" + name + "\" is already used by " +
                                      describe_device(devices->items()[first->second], first->second),
                                  "a " + label + " serves one device; define another under " + kind->where));
          continue;
        }
        // Not there: perhaps it is defined, but as another kind ("drive: con0" naming a chardev).
        const Kind* actual = nullptr;
        for (const Kind& other : kKinds)
          if (&other != kind && definitions(document, other) && definitions(document, other)->find(name))
            actual = &other;
        std::vector<std::string> candidates = names_in(table);
        std::string hint = candidates.empty() ? "no " + label + " is defined; add one under " + kind->where
                                              : suggestion_hint(name, candidates);
        if (hint.rfind("known: ", 0) == 0) hint = std::string(kind->where) + " has: " + hint.substr(7);
        if (actual)
          out.push_back(Diagnostic::error(at, path,
                                          "\"" + name + "\" is a " + actual->label + " (" + actual->where +
                                              "), but " + entry.key + " needs a " + label,
                                          hint));
        else
          out.push_back(Diagnostic::error(at, path, "unknown " + label + " \"" + name + "\"", hint));
      }
      const Node* driver = device.find("driver");
      if (driver && driver->is_string() && (driver->as_string() == "vfio-pci" || driver->as_string() == "usb-host") && !has_passthrough)
        out.push_back(Diagnostic::error(device.location(), device_path, driver->as_string() + " needs a host device",
                                        "add passthrough: NAME, naming an entry under passthrough"));
    }
  }
  for (const Kind& kind : kKinds) {
    const Node* table = definitions(document, kind);
    if (!table) continue;
    for (const Node::Entry& entry : table->entries()) {
      if (used[kind.name].count(entry.key)) continue;
      out.push_back(
          Diagnostic::warning(entry.key_location, join_path(kind.where, entry.key),
                              std::string(kind.label) + " \"" + entry.key + "\" is not used by any device",
                              "remove it, or refer to it from a device"));
    }
  }
  return out;
}

}  // namespace config
