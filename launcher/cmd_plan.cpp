// `vmlaunch plan FILE`: load and check a machine file, resolve its device graph (honouring the lock
// file next to it) and print the result: a tree like QEMU's `info qtree`, JSON, or Graphviz DOT.
// `--lock` writes FILE.lock with every address vmlaunch chose, so later edits never move devices.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "accel/registry.h"
#include "config/machine.h"
#include "graph/lock.h"
#include "graph/render.h"
#include "graph/resolve.h"
#include "launcher/command.h"

namespace launcher {
namespace {

void print(const config::Diagnostics& diagnostics) {
  for (const config::Diagnostic& d : diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
}

int run_plan(const std::string& file, const std::string& format, bool write_lock) {
  config::LoadResult loaded = config::load_machine(file, config::Environment());
  if (!loaded.readable) {
    print(loaded.diagnostics);
    return kExitRuntimeFailure;
  }
  if (!loaded.ok()) {
    // Report the device graph's problems in the same run (unknown buses, taken slots, cycles), except
    // where the checks already flagged the same spot: one run shows everything that needs fixing.
    config::Diagnostics all = loaded.diagnostics;
    if (loaded.document.is_map()) {
      std::set<std::string> flagged;
      for (const config::Diagnostic& d : loaded.diagnostics) flagged.insert(d.location.to_string());
      for (const config::Diagnostic& d : graph::resolve(loaded.document).diagnostics)
        if (d.is_error() && d.location.known() && !flagged.count(d.location.to_string())) all.push_back(d);
    }
    config::sort_diagnostics(all);
    print(all);
    return kExitBadInput;
  }
  print(loaded.diagnostics);

  config::Diagnostics lock_diagnostics;
  std::optional<graph::Lock> lock = graph::read_lock_file(file, lock_diagnostics);
  print(lock_diagnostics);
  if (config::has_errors(lock_diagnostics)) return kExitBadInput;

  graph::ResolveOptions options;
  options.lock = lock ? &*lock : nullptr;
  options.accelerators = &accel::Registry::builtin();
  graph::ResolveResult resolved = graph::resolve(loaded.document, options);
  print(resolved.diagnostics);
  if (!resolved.ok()) return kExitBadInput;

  std::string out = format == "json"  ? graph::render_json(resolved.graph)
                    : format == "dot" ? graph::render_dot(resolved.graph)
                                      : graph::render_text(resolved.graph);
  std::fwrite(out.data(), 1, out.size(), stdout);

  if (write_lock) {
    graph::Lock fresh = graph::lock_from_graph(resolved.graph);
    std::string path = graph::lock_path_for(file);
    std::string text = graph::lock_to_json(fresh);
    std::ofstream stream(path, std::ios::binary | std::ios::trunc);
    stream << text;
    stream.close();
    if (!stream) {
      std::fprintf(stderr, "vmlaunch: cannot write %s\n", path.c_str());
      return kExitRuntimeFailure;
    }
    std::fprintf(stderr, "wrote %s (%zu inferred address%s)\n", path.c_str(), fresh.entries.size(),
                 fresh.entries.size() == 1 ? "" : "es");
  }
  return kExitOk;
}

}  // namespace

void register_plan(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand("plan",
                                     "Resolve a machine file into its device graph and print it: buses, "
                                     "devices and addresses (* = chosen by "
                                     "vmlaunch, L = from the lock file), backends, memory map, IRQs and the "
                                     "chosen accelerator. Exit 0 ok, 2 "
                                     "invalid, 1 unreadable.");
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
