// `vmlaunch inspect NAME [--json]`: one machine's record, the device graph it runs (with addresses)
// and the effective config, as written when it started; a running machine also reports its live
// state and counters through the control socket.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "launcher/command.h"
#include "launcher/machine_state.h"
#include "vmm/control_server.h"

namespace launcher {
namespace {

int run_inspect(const std::string& name, bool json) {
  if (auto valid = vmm::check_name(name); !valid.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", valid.error().message.c_str());
    return kExitBadInput;
  }
  auto root = open_state_root();
  if (!root) return kExitRuntimeFailure;
  std::error_code ec;
  if (!std::filesystem::is_directory(*root / name, ec)) {
    std::fprintf(stderr, "vmlaunch: no machine named %s\n", name.c_str());
    return kExitRuntimeFailure;
  }
  vmm::MachineRecord record = vmm::read_record(*root, name);
  nlohmann::json out = record_json(record);
  out["graph"] = nlohmann::json::parse(read_text(record.dir / "graph.json"), nullptr, false);
  out["effective_config"] = nlohmann::json::parse(read_text(record.dir / "config.json"), nullptr, false);
  // What the VMM confined itself to (written when it armed its filters; absent before that).
  nlohmann::json security = nlohmann::json::parse(read_text(record.dir / "security.json"), nullptr, false);
  out["security"] = security.is_discarded() ? nlohmann::json() : security;
  if (out["graph"].is_discarded()) out["graph"] = nullptr;
  if (out["effective_config"].is_discarded()) out["effective_config"] = nullptr;
  if (record.state == "running") {
    if (auto client = vmm::ControlClient::connect(record.dir / "control.sock"); client.ok()) {
      if (auto stats = client.value().execute("query-stats"); stats.ok()) out["stats"] = stats.value();
    }
  }
  if (json) {
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return kExitOk;
  }
  std::printf(
      "name:        %s\nstate:       %s\npid:         %ld\naccelerator: %s\nvcpus:       %u\n"
      "memory:      %llu\nuptime:      %s\nconfig:      %s\nstate dir:   %s\n",
      record.name.c_str(), record.state.c_str(), record.pid, record.accelerator.c_str(), record.vcpus,
      record.memory, format_uptime(record).c_str(), record.config_path.c_str(), record.dir.c_str());
  if (record.state == "stale") std::printf("stale:       %s\n", record.stale_reason.c_str());
  if (record.state == "stopped")
    std::printf("exit:        %d (%s)\n", record.exit_status, record.exit_reason.c_str());
  if (security.is_object()) {
    std::printf("seccomp:     %s\nruns as:     uid %s gid %s\n", security.value("seccomp", "").c_str(),
                security.value("uid", nlohmann::json()).dump().c_str(),
                security.value("gid", nlohmann::json()).dump().c_str());
    if (auto sizes = security.find("allow_list_sizes"); sizes != security.end() && sizes->is_object()) {
      std::printf("allow-lists: system calls per thread role\n");
      for (const auto& [role, count] : sizes->items())
        std::printf("  %-12s %s\n", role.c_str(), count.dump().c_str());
    }
  }
  std::printf("\n%s", read_text(record.dir / "graph.txt").c_str());
  return kExitOk;
}

}  // namespace

void register_inspect(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Show one machine: state, pid, resources, its device graph and the effective config it runs");
  auto name = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("NAME", *name, "Machine name (see ps)")->required();
  cmd->add_flag("--json", *json, "Print JSON, with the graph and the effective config");
  cmd->callback([&action, name, json] { action = [name, json] { return run_inspect(*name, *json); }; });
}

}  // namespace launcher
