#include <CLI/CLI.hpp>
#include <cstdio>

#include "launcher/command.h"
#include "launcher/version.h"

namespace launcher {

void register_version(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand("version", "Print vmlaunch's version");
  cmd->callback([&action] {
    action = [] {
      std::printf("vmlaunch %s\n", kVersion);
      return kExitOk;
    };
  });
}

}  // namespace launcher
