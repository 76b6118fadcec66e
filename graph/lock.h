// The lock file: `vmlaunch plan --lock machine.yaml` writes machine.yaml.lock with the address of every
// device whose bus or address was inferred; later resolutions claim those addresses first, so adding
// or removing a device never moves the others (libvirt writes addresses back into its XML for the
// same reason). Entries are keyed by device id: unnamed devices have generated ids (<driver>.<n>, n
// counting unnamed devices of that driver in file order), so give devices an `id` to keep them stable
// when an unnamed device of the same driver is inserted before them. It is JSON, loaded through the YAML
// loader so every entry keeps its file:line:col.
//
//   {"vmlaunch-lock": 1, "machine": "riscv64/virt",
//    "devices": [{"id": "virtio-net-pci.0", "driver": "virtio-net-pci", "bus": "pcie.0", "addr": "02.0"}]}
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/diagnostic.h"
#include "config/location.h"
#include "config/node.h"
#include "graph/graph.h"

namespace graph {

struct LockEntry {
  std::string id;
  std::string driver;
  std::string bus;
  std::string addr;  // as Address::to_string() writes it: "02.0" on PCI, "3" elsewhere
  config::Location location;
};

struct Lock {
  std::string machine;  // "riscv64/virt"
  std::vector<LockEntry> entries;
  config::Location location;  // of the whole document
};

// The lock file next to a config: "<config path>.lock".
std::string lock_path_for(const std::string& config_path);

// Writes `text` to "<config_path>.lock" atomically (a temporary file in the same directory, then
// rename). Only next to a regular machine file (not stdin, not /dev/stdin), and never through a
// lock path that is a symlink or anything but a regular file. Returns the lock file's path.
base::ErrorOr<std::string> write_lock_file(const std::string& config_path, const std::string& text);

// Reads "<config_path>.lock" if it exists: nullopt when there is none (not an error); problems
// (unreadable, unparsable, malformed entries) become diagnostics at the lock file's line:col.
std::optional<Lock> read_lock_file(const std::string& config_path, config::Diagnostics& diagnostics);

// Reads a parsed lock document; malformed entries are reported and skipped.
Lock lock_from_document(const config::Node& document, config::Diagnostics& diagnostics);

// The lock for a resolved graph: every non-builtin device with an inferred bus or address.
Lock lock_from_graph(const Graph& graph);

// Pretty JSON text with a trailing newline; deterministic (graph order).
std::string lock_to_json(const Lock& lock);

}  // namespace graph
