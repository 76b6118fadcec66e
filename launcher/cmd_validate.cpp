#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "launcher/checked_machine.h"
#include "launcher/command.h"

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
int validate_files(const std::vector<std::string>& files, bool as_json) {
  int status = kExitOk;
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& file : files) {
    // Every check `plan` runs, the device graph included; nothing that depends on this host.
    CheckedMachine checked = check_machine(file);
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
      "file:line:col: path: message. Exit 0 valid, 2 invalid, 1 unreadable.");
  auto files = std::make_shared<std::vector<std::string>>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("FILE", *files, "Machine files to check")->required();
  cmd->add_flag("--json", *as_json, "Also print the diagnostics as a JSON array on stdout");
  cmd->callback(
      [&action, files, as_json] { action = [files, as_json] { return validate_files(*files, *as_json); }; });
}

}  // namespace launcher
