// `vmlaunch plan FILE`: load and check a machine file, resolve its device graph (honouring the lock
// file next to it) and print the result: a tree like QEMU's `info qtree`, JSON, or Graphviz DOT.
// `--lock` writes FILE.lock with every address vmlaunch chose, so later edits never move devices.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "graph/lock.h"
#include "graph/render.h"
#include "launcher/checked_machine.h"
#include "launcher/command.h"
#include "launcher/host_accelerator.h"

namespace launcher {
namespace {

int run_plan(const std::string& file, const std::string& format, bool write_lock) {
  CheckedMachine checked = check_machine(file);
  print_diagnostics(checked.diagnostics);
  if (!checked.ok()) return checked.status;
  const graph::ResolveResult& resolved = checked.resolved;

  std::string out = format == "json"  ? graph::render_json(resolved.graph)
                    : format == "dot" ? graph::render_dot(resolved.graph)
                                      : graph::render_text(resolved.graph);
  std::fwrite(out.data(), 1, out.size(), stdout);
  // Whether this host could run it goes to stderr: the plan itself is the same on every host.
  std::string note = host_note(resolved.graph);
  if (!note.empty()) std::fprintf(stderr, "%s\n", note.c_str());

  if (write_lock) {
    graph::Lock fresh = graph::lock_from_graph(resolved.graph);
    auto written = graph::write_lock_file(file, graph::lock_to_json(fresh));
    if (!written) {
      std::fprintf(stderr, "vmlaunch: cannot write the lock file: %s\n", written.error().message.c_str());
      return kExitRuntimeFailure;
    }
    const std::string& path = *written;
    std::fprintf(stderr, "wrote %s (%zu inferred address%s)\n", path.c_str(), fresh.entries.size(),
                 fresh.entries.size() == 1 ? "" : "es");
  }
  return kExitOk;
}

}  // namespace

void register_plan(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "Resolve a machine file into its device graph and print it: buses, "
      "devices and addresses (* = chosen by "
      "vmlaunch, L = from the lock file), backends, memory map, IRQs and the "
      "accelerator the file prefers; the same on every host (a note on stderr says whether this "
      "host can run it). Exit 0 ok, 2 invalid, 1 unreadable.");
  auto file = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("text");
  auto write_lock = std::make_shared<bool>(false);
  cmd->add_option("FILE", *file, "Machine file (YAML, TOML or JSON)")->required();
  cmd->add_option("--format", *format, "Output format")->check(CLI::IsMember({"text", "json", "dot"}));
  cmd->add_flag("--lock", *write_lock,
                "Write FILE.lock with every inferred address; later runs (plan, up) keep devices there");
  cmd->callback([&action, file, format, write_lock] {
    action = [file, format, write_lock] { return run_plan(*file, *format, *write_lock); };
  });
}

}  // namespace launcher
