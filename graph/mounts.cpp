#include "graph/mounts.h"

#include <set>
#include <string>

#include "base/field_use.h"
#include "hw/catalogue/catalogue.h"

VML_CONSUMES("mounts");  // every field: location, tag, type and writable shape the generated pair

namespace graph {

namespace {

using config::Diagnostic;
using config::Location;
using config::Node;

constexpr size_t kVirtiofsTagMax = 36;  // struct virtio_fs_config.tag

const Node* get(const Node& map, std::string_view key) {
  return map.is_map() ? map.find(key) : nullptr;
}

// The map at `key` of `parent`, created (at `at`) when missing; null when it is something else (the
// schema reports that).
Node* child_map(Node& parent, const std::string& key, const Location& at) {
  if (!parent.find(key)) parent.set(key, Node::map(at), at);
  Node* node = parent.find(key);
  return node && node->is_map() ? node : nullptr;
}

bool machine_has_pci(const Node& document) {
  const Node* machine = get(document, "machine");
  const Node* arch = machine ? get(*machine, "arch") : nullptr;
  const Node* type = machine ? get(*machine, "type") : nullptr;
  if (!arch || !type || !arch->is_string() || !type->is_string()) return true;
  const hw::catalogue::MachineType* m =
      hw::catalogue::find_machine_type(arch->as_string(), type->as_string());
  if (!m) return true;  // the resolver reports the unknown machine
  for (const Bus& bus : m->buses)
    if (bus.kind == BusKind::Pci) return true;
  return false;
}

}  // namespace

bool has_mounts(const Node& document) {
  const Node* mounts = get(document, "mounts");
  return mounts && mounts->is_list() && mounts->size() > 0;
}

void expand_mounts(Node& document, config::Diagnostics& diagnostics) {
  if (!has_mounts(document)) return;
  const Node mounts = *document.find("mounts");
  const std::string transport = machine_has_pci(document) ? "-pci" : "-mmio";
  std::set<std::string> tags;
  for (size_t i = 0; i < mounts.items().size(); ++i) {
    const Node& mount = mounts.items()[i];
    const std::string path = "mounts[" + std::to_string(i) + "]";
    const Node* location = get(mount, "location");
    const Node* tag = get(mount, "tag");
    // Shapes (missing keys, wrong types) are the schema's to report; skip what it rejects.
    if (!location || !location->is_string() || !tag || !tag->is_string() || tag->as_string().empty())
      continue;
    const Node* type = get(mount, "type");
    const bool virtiofs = type && type->is_string() && type->as_string() == "virtiofs";
    if (virtiofs && tag->as_string().size() > kVirtiofsTagMax) {
      diagnostics.push_back(Diagnostic::error(tag->location(), path + ".tag",
                                              "a virtiofs tag is at most 36 bytes (virtio-fs config space)",
                                              "shorten the tag"));
      continue;
    }
    if (!tags.insert(tag->as_string()).second) {
      diagnostics.push_back(Diagnostic::error(tag->location(), path + ".tag",
                                              "duplicate mount tag \"" + tag->as_string() + "\"",
                                              "each mount needs its own tag: the guest mounts by tag"));
      continue;
    }
    const Location& at = mount.location();
    const std::string name = "mount-" + tag->as_string();
    const Node* writable = get(mount, "writable");
    bool read_only = !(writable && writable->is_bool() && writable->as_bool());

    Node* backends = child_map(document, "backends", at);
    Node* fs = backends ? child_map(*backends, "fs", at) : nullptr;
    if (!fs) continue;
    if (fs->find(name)) {
      diagnostics.push_back(Diagnostic::error(tag->location(), path + ".tag",
                                              "mount tag \"" + tag->as_string() +
                                                  "\" needs the fs backend name \"" + name +
                                                  "\", which backends.fs already uses",
                                              "rename that backend or choose another tag"));
      continue;
    }
    Node backend = Node::map(at);
    backend.set("driver", Node::string(virtiofs ? "virtiofsd" : "local", at), at);
    backend.set("path", *location, location->location());
    backend.set("readonly", Node::boolean(read_only, writable ? writable->location() : at),
                writable ? writable->location() : at);
    fs->set(name, std::move(backend), tag->location());

    if (!document.find("devices")) document.set("devices", Node::list(at), at);
    Node* devices = document.find("devices");
    if (!devices || !devices->is_list()) continue;
    Node device = Node::map(at);
    device.set("driver", Node::string((virtiofs ? "vhost-user-fs" : "virtio-9p") + transport, at), at);
    device.set("id", Node::string(name, tag->location()), tag->location());
    device.set("fsdev", Node::string(name, tag->location()), tag->location());
    device.set(virtiofs ? "tag" : "mount_tag", *tag, tag->location());
    devices->push_back(std::move(device));
  }
}

}  // namespace graph
