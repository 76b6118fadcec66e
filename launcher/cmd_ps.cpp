// `vmlaunch ps [--all] [--json]`: the machines in the state directory. Running and stale ones by
// default (stale: the VMM is gone without saying so; the next `up -d` or `down` of it cleans up),
// stopped ones too with --all.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "graph/render.h"
#include "launcher/command.h"
#include "launcher/machine_state.h"

namespace launcher {
namespace {

int run_ps(bool all, bool json) {
  auto root = open_state_root();
  if (!root) return kExitRuntimeFailure;
  nlohmann::json list = nlohmann::json::array();
  std::vector<vmm::MachineRecord> shown;
  for (vmm::MachineRecord& record : vmm::list_records(*root)) {
    if (!all && record.state == "stopped") continue;
    list.push_back(record_json(record));
    shown.push_back(std::move(record));
  }
  if (json) {
    std::printf("%s\n", list.dump(2).c_str());
    return kExitOk;
  }
  std::printf("%-20s %-8s %-6s %5s %9s %8s %8s  %s\n", "NAME", "STATE", "ACCEL", "VCPUS", "MEMORY", "UPTIME",
              "PID", "CONFIG");
  for (const vmm::MachineRecord& record : shown) {
    std::string state = record.state;
    if (state == "stopped") state += "(" + std::to_string(record.exit_status) + ")";
    std::printf("%-20s %-8s %-6s %5u %9s %8s %8ld  %s\n", record.name.c_str(), state.c_str(),
                record.accelerator.empty() ? "-" : record.accelerator.c_str(), record.vcpus,
                record.memory ? graph::format_size(record.memory).c_str() : "-",
                format_uptime(record).c_str(), record.pid, record.config_path.c_str());
  }
  return kExitOk;
}

}  // namespace

void register_ps(CLI::App& app, Action& action) {
  CLI::App* cmd =
      app.add_subcommand("ps", "List machines started with `up -d`: running and stale ones (all with --all)");
  auto all = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("-a,--all", *all, "Also list stopped machines");
  cmd->add_flag("--json", *json, "Print a JSON array");
  cmd->callback([&action, all, json] { action = [all, json] { return run_ps(*all, *json); }; });
}

}  // namespace launcher
