// What ps, inspect, logs and down share: the state root, and one machine's record as JSON and text.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "vmm/state_dir.h"

namespace launcher {

// The state root, or nullopt after printing why not.
std::optional<std::filesystem::path> open_state_root();

// The record of machine `name` when its VMM runs it; nullopt after printing why not (absent, stopped,
// or stale with the reason).
std::optional<vmm::MachineRecord> running_record(const std::filesystem::path& root, const std::string& name);

nlohmann::json record_json(const vmm::MachineRecord& record);

// A state file's whole text; empty when it cannot be read (state files are small, written by us).
std::string read_text(const std::filesystem::path& path);

// `down NAME`: presses the power button, waits `timeout` seconds, stops (at once with `force`), kills
// a VMM that does not stop, removes the state directory and prints the name (unless `quiet`). Takes
// the name lock. Returns false (after saying why) when the machine could not be stopped.
bool down_one(const std::filesystem::path& root, const std::string& name, double timeout, bool force,
              bool quiet = false);

// "3m12s", "2h05m", "-" when not running.
std::string format_uptime(const vmm::MachineRecord& record);

}  // namespace launcher
