// `vmlaunch pause NAME` and `vmlaunch resume NAME`: freeze a detached machine (vCPUs parked with
// their state, the guest clock stopped, its console quiet) and let it continue. Clients of the
// machine's control socket, like every lifecycle command.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "launcher/command.h"
#include "launcher/machine_state.h"
#include "vmm/control_server.h"

namespace launcher {
namespace {

int pause_or_resume(const std::string& name, const std::string& command) {
  if (auto valid = vmm::check_name(name); !valid.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", valid.error().message.c_str());
    return kExitBadInput;
  }
  auto root = open_state_root();
  if (!root) return kExitRuntimeFailure;
  std::optional<vmm::MachineRecord> running = running_record(*root, name);
  if (!running) return kExitRuntimeFailure;
  const vmm::MachineRecord& record = *running;
  auto client = vmm::ControlClient::connect(record.dir / "control.sock");
  if (!client.ok()) {
    std::fprintf(stderr, "vmlaunch: %s: control socket: %s\n", name.c_str(), client.error().message.c_str());
    return kExitRuntimeFailure;
  }
  auto reply = client.value().execute(command);
  if (!reply.ok()) {
    std::fprintf(stderr, "vmlaunch: %s: %s\n", name.c_str(), reply.error().message.c_str());
    return kExitRuntimeFailure;
  }
  std::printf("%s\n", name.c_str());
  return kExitOk;
}

void register_one(CLI::App& app, Action& action, const std::string& command, const std::string& help) {
  CLI::App* cmd = app.add_subcommand(command, help);
  auto name = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "Machine name (see ps)")->required();
  cmd->callback(
      [&action, name, command] { action = [name, command] { return pause_or_resume(*name, command); }; });
}

}  // namespace

void register_pause(CLI::App& app, Action& action) {
  register_one(app, action, "pause",
               "Freeze a detached machine: its vCPUs stop where they are and its guest clock stops (exit 1 "
               "if it is not running or cannot pause)");
  register_one(app, action, "resume", "Let a paused machine continue as if no time had passed");
}

}  // namespace launcher
