// vmlaunch: one checked-in file describes a machine; this binary validates, plans and runs it.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "launcher/command.h"

int main(int argc, char** argv) {
  CLI::App app{"vmlaunch: run virtual machines described by checked-in YAML or TOML files"};
  app.require_subcommand(1);
  app.fallthrough(false);

  launcher::Action action;
  launcher::register_version(app, action);
  launcher::register_validate(app, action);
  launcher::register_schema(app, action);
  launcher::register_up(app, action);
  launcher::register_plan(app, action);
  launcher::register_devices(app, action);
  launcher::register_accel(app, action);
  launcher::register_ps(app, action);
  launcher::register_inspect(app, action);
  launcher::register_logs(app, action);
  launcher::register_down(app, action);
  launcher::register_pause(app, action);
  launcher::register_console(app, action);
  launcher::register_host(app, action);
  launcher::register_snapshot(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return launcher::kExitBadInput;
  }
  if (!action) return launcher::kExitBadInput;
  return action();
}
