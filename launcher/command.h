// How subcommands plug into the launcher. Each command lives in its own file and registers itself
// with the CLI11 app: it declares its options and, when chosen, stores the action main() runs.
// Actions return the process exit code: 0 ok, 1 runtime failure, 2 bad input (config, arguments).
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace launcher {

enum ExitCode : int { kExitOk = 0, kExitRuntimeFailure = 1, kExitBadInput = 2 };

using Action = std::function<int()>;

// One line per command; main() calls each. Defined in cmd_<name>.cpp.
void register_version(CLI::App& app, Action& action);
void register_validate(CLI::App& app, Action& action);
void register_schema(CLI::App& app, Action& action);
void register_up(CLI::App& app, Action& action);
void register_plan(CLI::App& app, Action& action);
void register_devices(CLI::App& app, Action& action);
void register_accel(CLI::App& app, Action& action);
void register_ps(CLI::App& app, Action& action);
void register_inspect(CLI::App& app, Action& action);
void register_logs(CLI::App& app, Action& action);
void register_down(CLI::App& app, Action& action);
void register_pause(CLI::App& app, Action& action);  // pause and resume
void register_console(CLI::App& app, Action& action);
void register_host(CLI::App& app, Action& action);  // host devices
void register_snapshot(CLI::App& app, Action& action);

}  // namespace launcher
