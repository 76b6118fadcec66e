// Snapshots of a running machine: save to a directory, and restore into a freshly built machine.
//
//   DIR/config.json  the effective config (what `up` resolved, extends merged)
//   DIR/state.vmls   header (format version, vmlaunch version, arch, machine type, CPU model and
//                    features, RAM layout, the parts by device id with their state versions, disks
//                    by size and mtime, the guest clock) + vCPU and device states, checksummed
//                    (state_file.h)
//   DIR/ram.zst      guest RAM, zstd, zero pages skipped (ram.h)
//
// Saving: the caller has paused the machine (vCPUs parked, guest clock stopped). save() refuses if
// any part cannot be saved (naming it), quiesces every part (in-flight I/O completes), saves,
// writes the files (state.vmls last, via rename, so a directory with one is complete) and
// unquiesces. Restoring: open() reads and checks everything that does not need a machine (checksum,
// format version, RAM file size, disks unchanged, files present); check_compatible() compares the
// snapshot with the graph about to be built; restore() fills a built machine before its vCPUs run.
// Block images are referenced, not copied: a restore refuses disks whose size, mtime or qcow2
// header changed, and qcow2 backing files likewise.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"
#include "graph/graph.h"
#include "hw/machine.h"
#include "snapshot/ram.h"
#include "snapshot/state_file.h"

namespace snapshot {

struct SaveRequest {
  std::filesystem::path dir;       // created if missing; existing snapshot files in it are replaced
  nlohmann::json config;           // the effective config, written as DIR/config.json
  std::filesystem::path base_dir;  // where the config's relative backend paths resolve
  std::string vmlaunch_version;
  std::string accelerator;  // "jit"
  const graph::Graph* graph = nullptr;
  unsigned threads = 4;  // RAM compression threads
  // The machine stops after the snapshot: the devices stay quiesced (no I/O after what was saved).
  bool stop_after = false;
};

struct SaveResult {
  RamStats ram;
  uint64_t state_bytes = 0;
  double seconds = 0;  // quiesce to files synced
};

base::ErrorOr<SaveResult> save(hw::Machine& machine, const SaveRequest& request);

struct Opened {
  std::filesystem::path dir;
  StateFile state;
  nlohmann::json config;           // DIR/config.json
  std::filesystem::path base_dir;  // the original config's directory
};

// Reads DIR and checks what needs no machine: format and vmlaunch versions, checksum, the RAM
// file's size, the files the machine needs (disk images, boot images) exist and disks are unchanged.
base::ErrorOr<Opened> open(const std::filesystem::path& dir);

// The snapshot against the machine the config resolves to: architecture, machine type, CPU model,
// features and count, RAM size, accelerator and the set of devices (ids and drivers).
base::ErrorOr<void> check_compatible(const nlohmann::json& header, const graph::Graph& graph,
                                     std::string_view accelerator);

// Loads RAM, vCPUs, the parts and the guest clock into a freshly built machine whose vCPUs have
// not run. The clock is stepped forward by the wall-clock time since the snapshot (the guest's
// time of day stays right). Errors name the part.
base::ErrorOr<void> restore(hw::Machine& machine, const Opened& opened, unsigned threads = 4);

// A disk image as a snapshot records it: size and modification time, and for a qcow2 image its
// header cluster's checksum and the fields saying where its data lives (L1 and refcount tables,
// backing file), which change when the image is rebased, resized or committed into. null when the
// file cannot be stat'ed.
nlohmann::json disk_identity(const std::filesystem::path& path);
// The identities of an image and its qcow2 backing chain (at most 16 deep), each with "backend"
// (the block backend's name, "NAME backing file N" for the chain) and "path".
std::vector<nlohmann::json> disk_chain(const std::string& backend, const std::filesystem::path& path);
// Refuses a disk whose identity is not the saved one, naming the backend, the path and what changed.
base::ErrorOr<void> check_disk_unchanged(const nlohmann::json& saved);

// The header's fields also written in `vmlaunch snapshot --json` / shown by errors.
std::string describe(const nlohmann::json& header);

}  // namespace snapshot
