// `vmlaunch accel`: every accelerator vmlaunch knows, whether it can run here, and why not.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "accel/registry.h"
#include "launcher/command.h"

namespace launcher {
namespace {

int list_accelerators() {
  const accel::Registry& registry = accel::Registry::builtin();
  std::printf("%-6s %-16s %-6s %-8s %s\n", "NAME", "GUESTS", "USABLE", "IN BUILD", "DETAIL");
  for (const accel::AcceleratorInfo& info : registry.accelerators()) {
    accel::Availability availability = info.probe();
    std::string arches;
    for (const std::string& a : info.guest_arches) arches += (arches.empty() ? "" : ",") + a;
    std::printf("%-6s %-16s %-6s %-8s %s\n", info.name.c_str(), arches.c_str(),
                availability.usable ? "yes" : "no", registry.has_factory(info.name) ? "yes" : "no",
                availability.detail.c_str());
  }
  return kExitOk;
}

}  // namespace

void register_accel(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand("accel",
                                     "List accelerators, the guest architectures they run, and whether each "
                                     "is usable on this host (and why)");
  cmd->callback([&action] { action = list_accelerators; });
}

}  // namespace launcher
