// `vmlaunch accel`: every accelerator vmlaunch knows, whether it can run here, and why not. With
// --json, the same plus host facts a scheduler can place machines by.
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "accel/registry.h"
#include "launcher/command.h"

namespace launcher {
namespace {

nlohmann::json host_facts() {
  struct utsname uts {};
  ::uname(&uts);
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page_size = ::sysconf(_SC_PAGESIZE);
  return {
      {"arch", uts.machine},
      {"kernel", std::string(uts.sysname) + " " + uts.release},
      {"cpus", std::thread::hardware_concurrency()},
      {"memory_bytes",
       pages > 0 && page_size > 0 ? static_cast<unsigned long long>(pages) * page_size : 0ull},
      {"kvm_device", accel::kvm_device_path()},
  };
}

int list_accelerators(bool as_json) {
  const accel::Registry& registry = accel::Registry::builtin();
  nlohmann::json list = nlohmann::json::array();
  if (!as_json) std::printf("%-6s %-16s %-6s %-8s %s\n", "NAME", "GUESTS", "USABLE", "IN BUILD", "DETAIL");
  for (const accel::AcceleratorInfo& info : registry.accelerators()) {
    accel::Availability availability = info.probe();
    bool in_build = registry.has_factory(info.name);
    if (as_json) {
      list.push_back({{"name", info.name},
                      {"description", info.description},
                      {"guest_arches", info.guest_arches},
                      {"usable", availability.usable && in_build},
                      {"in_build", in_build},
                      {"detail", availability.detail}});
      continue;
    }
    std::string arches;
    for (const std::string& a : info.guest_arches) arches += (arches.empty() ? "" : ",") + a;
    std::printf("%-6s %-16s %-6s %-8s %s\n", info.name.c_str(), arches.c_str(),
                availability.usable ? "yes" : "no", in_build ? "yes" : "no", availability.detail.c_str());
  }
  if (as_json) {
    nlohmann::json out = {{"host", host_facts()}, {"accelerators", list}};
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return kExitOk;
}

}  // namespace

void register_accel(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand("accel",
                                     "List accelerators, the guest architectures they run, and whether each "
                                     "is usable on this host (and why)");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json,
                "Print JSON: host facts (arch, CPUs, memory, KVM device) and each accelerator's "
                "usability, for schedulers");
  cmd->callback([&action, as_json] { action = [as_json] { return list_accelerators(*as_json); }; });
}

}  // namespace launcher
