#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "launcher/checked_machine.h"
#include "launcher/command.h"
#include "launcher/passthrough_preflight.h"

namespace launcher {
namespace {

nlohmann::json diagnostic_json(const config::Diagnostic& d) {
  return {
      {"severity", d.is_error() ? "error" : "warning"},
      {"file", d.location.file},
      {"line", d.location.line},
      {"column", d.location.column},
      {"path", d.path},
      {"message", d.message},
      {"hint", d.hint},
  };
}

// Exit status over several files: a file that could not be read (1) outranks an invalid one (2):
// the run did not check everything it was asked to.
int validate_files(const std::vector<std::string>& files, bool as_json, bool on_host) {
  int status = kExitOk;
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& file : files) {
    // Every check `plan` runs, the device graph included; nothing that depends on this host.
    CheckedMachine checked = check_machine(file);
    // --host: also whether this host can give the machine what it asks for (passthrough devices).
    // A host fact, not the file's fault: exit 1.
    if (on_host && checked.ok()) {
      config::Diagnostics host = preflight_passthrough(
          checked.resolved.graph, passthrough::HostFacts::of_this_process(), devices_held_by_machines());
      if (!host.empty()) checked.status = kExitRuntimeFailure;
      checked.diagnostics.insert(checked.diagnostics.end(), host.begin(), host.end());
    }
    for (const config::Diagnostic& d : checked.diagnostics) {
      std::fprintf(stderr, "%s\n", d.to_string().c_str());
      if (as_json) all.push_back(diagnostic_json(d));
    }
    if (checked.status == kExitRuntimeFailure)
      status = kExitRuntimeFailure;
    else if (checked.status == kExitBadInput && status == kExitOk)
      status = kExitBadInput;
  }
  // Messages quote the user's text; replace rather than throw on bytes that are not UTF-8.
  if (as_json) std::printf("%s\n", all.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return status;
}

}  // namespace

void register_validate(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "validate",
      "Check machine files (YAML, TOML or JSON) against the schema, the semantic rules and the device graph "
      "(every check `plan` makes, none that depends on this host); every problem is reported as "
      "file:line:col: path: message. Exit 0 valid, 2 invalid, 1 unreadable (or, with --host, not runnable "
      "here).");
  auto files = std::make_shared<std::vector<std::string>>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("FILE", *files, "Machine files to check")->required();
  auto on_host = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "Also print the diagnostics as a JSON array on stdout");
  cmd->add_flag("--host", *on_host,
                "Also check what `up` checks on this host before starting: each passthrough entry's device "
                "(present, bound to vfio-pci, its IOMMU group, /dev/vfio permissions, RLIMIT_MEMLOCK)");
  cmd->callback([&action, files, as_json, on_host] {
    action = [files, as_json, on_host] { return validate_files(*files, *as_json, *on_host); };
  });
}

}  // namespace launcher
