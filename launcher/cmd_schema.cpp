#include <CLI/CLI.hpp>
#include <cstdio>

#include "config/schema.h"
#include "launcher/command.h"

namespace launcher {

void register_schema(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "schema", "Print the JSON Schema (draft-07) of machine files, for editors and other tools");
  cmd->callback([&action] {
    action = [] {
      std::string_view text = config::schema_text();
      std::fwrite(text.data(), 1, text.size(), stdout);
      return kExitOk;
    };
  });
}

}  // namespace launcher
