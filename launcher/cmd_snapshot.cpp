// `vmlaunch snapshot NAME DIR [--stop]`: asks the machine's VMM (its control socket's `snapshot`)
// to pause the machine, write a snapshot into DIR (docs/snapshots.md) and continue it, or with
// --stop to end it there. `vmlaunch up --restore DIR` continues it later.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "launcher/command.h"
#include "launcher/machine_state.h"
#include "vmm/control_server.h"
#include "vmm/state_dir.h"

namespace launcher {
namespace {

// Moves the files of a snapshot directory into DIR (made if missing; snapshot files there are
// replaced): state.vmls last, since a directory holding it is a complete snapshot. Renames within
// one file system, copies across. Returns "" or what failed.
std::string move_snapshot(const std::filesystem::path& from, const std::filesystem::path& to) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return "mkdir " + to.string() + ": " + ec.message();
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(from, ec)) files.push_back(entry.path());
  if (ec) return from.string() + ": " + ec.message();
  std::stable_partition(files.begin(), files.end(),
                        [](const fs::path& f) { return f.filename() != "state.vmls"; });
  for (const fs::path& file : files) {
    fs::path dest = to / file.filename();
    fs::rename(file, dest, ec);
    if (ec) {  // another file system: copy, then drop the original
      ec.clear();
      fs::copy_file(file, dest, fs::copy_options::overwrite_existing, ec);
      if (ec) return "copy " + file.string() + ": " + ec.message();
      fs::remove(file, ec);
    }
  }
  fs::remove_all(from, ec);
  return {};
}

int take_snapshot(const std::string& name, const std::string& dir, bool stop, bool json) {
  if (auto valid = vmm::check_name(name); !valid.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", valid.error().message.c_str());
    return kExitBadInput;
  }
  std::error_code ec;
  std::filesystem::path target = std::filesystem::absolute(dir, ec);
  if (ec || dir.empty()) {
    std::fprintf(stderr, "vmlaunch: snapshot directory %s: %s\n", dir.c_str(),
                 ec ? ec.message().c_str() : "empty");
    return kExitBadInput;
  }
  auto root = open_state_root();
  if (!root) return kExitRuntimeFailure;
  std::optional<vmm::MachineRecord> running = running_record(*root, name);
  if (!running) return kExitRuntimeFailure;
  const vmm::MachineRecord& record = *running;
  // A jailed VMM sees only its own files (security.json says whether it is jailed): it writes into
  // its machine directory, bound into the jail at the same path, and this moves the files to DIR.
  // The name lock keeps a foreground `up` from removing that directory meanwhile (--stop).
  bool jailed = false;
  {
    std::ifstream in(record.dir / "security.json");
    nlohmann::json security = nlohmann::json::parse(in, nullptr, false);
    jailed = security.is_object() && security.value("jail", false);
  }
  std::optional<vmm::NameLock> lock;
  std::filesystem::path write_to = target;
  if (jailed) {
    auto acquired = vmm::NameLock::acquire(*root, name);
    if (!acquired.ok()) {
      std::fprintf(stderr, "vmlaunch: %s\n", acquired.error().message.c_str());
      return kExitRuntimeFailure;
    }
    lock.emplace(std::move(acquired.value()));
    write_to = record.dir / "snapshot.partial";
    std::filesystem::remove_all(write_to, ec);
  }
  auto client = vmm::ControlClient::connect(record.dir / "control.sock");
  if (!client.ok()) {
    std::fprintf(stderr, "vmlaunch: %s: control socket: %s\n", name.c_str(), client.error().message.c_str());
    return kExitRuntimeFailure;
  }
  // Writing RAM takes a while for large guests: no short timeout.
  auto reply = client.value().execute("snapshot", {{"dir", write_to.string()}, {"stop", stop}}, 600'000);
  if (!reply.ok()) {
    std::fprintf(stderr, "vmlaunch: %s: snapshot: %s\n", name.c_str(), reply.error().message.c_str());
    if (jailed) std::filesystem::remove_all(write_to, ec);
    return kExitRuntimeFailure;
  }
  if (jailed) {
    if (auto moved = move_snapshot(write_to, target); !moved.empty()) {
      std::fprintf(stderr, "vmlaunch: %s: snapshot written in %s but not moved to %s: %s\n", name.c_str(),
                   write_to.c_str(), target.c_str(), moved.c_str());
      return kExitRuntimeFailure;
    }
  }
  const nlohmann::json& r = reply.value();
  if (json) {
    std::printf("%s\n", r.dump(2).c_str());
  } else {
    std::printf("%s: snapshot in %s (%.1f MiB RAM, %.1f MiB written, %.2f s)%s\n", name.c_str(),
                target.c_str(), r.value("ram_bytes", 0.0) / 1048576.0,
                (r.value("ram_file_bytes", 0.0) + r.value("state_file_bytes", 0.0)) / 1048576.0,
                r.value("seconds", 0.0), stop ? "; the machine stopped" : "");
  }
  return kExitOk;
}

}  // namespace

void register_snapshot(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "snapshot",
      "Save a running machine to DIR: it pauses, its devices finish their in-flight I/O, the effective "
      "config, a checksummed state file and its RAM (zstd) are written, and it continues (or stops with "
      "--stop). `vmlaunch up --restore DIR` continues it from there. Disk images are referenced, not "
      "copied: keep them unchanged. Exit 1 if the machine is not running or cannot be saved (the "
      "message names the device)");
  auto name = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  auto stop = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("NAME", *name, "Machine name (see ps)")->required();
  cmd->add_option("DIR", *dir, "Directory to write (created; a snapshot already there is replaced)")
      ->required();
  cmd->add_flag("--stop", *stop, "Stop the machine after the snapshot instead of letting it continue");
  cmd->add_flag("--json", *json, "Print what was written (sizes, seconds) as JSON");
  cmd->callback([&action, name, dir, stop, json] {
    action = [name, dir, stop, json] { return take_snapshot(*name, *dir, *stop, *json); };
  });
}

}  // namespace launcher
