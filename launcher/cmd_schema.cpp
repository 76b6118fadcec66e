// `vmlaunch schema`: the JSON Schema of machine files. `--consumers` lists, for tests and the
// curious, which of its settings and which catalogue device types this binary's code honours or
// refuses (see base/field_use.h): tests/config/consumers_test fails on any without one.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/field_use.h"
#include "config/schema.h"
#include "hw/catalogue/catalogue.h"
#include "hw/device_model.h"
#include "launcher/command.h"

namespace launcher {
namespace {

int print_consumers() {
  nlohmann::json fields = nlohmann::json::array();
  for (const base::FieldUse& use : base::field_uses())
    fields.push_back({{"path", use.path}, {"refused", use.refused}, {"file", use.file}, {"line", use.line}});
  nlohmann::json devices = nlohmann::json::array();
  for (const hw::catalogue::DeviceType& type : hw::catalogue::device_types())
    devices.push_back({{"name", type.name},
                       {"model", hw::find_device_model(type.name) != nullptr},
                       {"not_yet", std::string(hw::catalogue::device_not_yet(type.name))}});
  nlohmann::json out = {{"fields", fields}, {"device_types", devices}};
  std::printf("%s\n", out.dump(2).c_str());
  return kExitOk;
}

}  // namespace

void register_schema(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "schema", "Print the JSON Schema (draft-07) of machine files, for editors and other tools");
  auto consumers = std::make_shared<bool>(false);
  cmd->add_flag("--consumers", *consumers,
                "Instead, print as JSON which settings and device types this vmlaunch's code honours or "
                "refuses, and where");
  cmd->callback([&action, consumers] {
    action = [consumers]() -> int {
      if (*consumers) return print_consumers();
      std::string_view text = config::schema_text();
      std::fwrite(text.data(), 1, text.size(), stdout);
      return kExitOk;
    };
  });
}

}  // namespace launcher
