// What the jail (security/jail.h) must hold for one machine: its boot files, every backend's host
// files (an image with its backing chain), device nodes, the gdb stub's socket directory and the
// machine's state directory, each at its own path; the network namespace only when a backend uses
// the host's network.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "base/result.h"
#include "debug/gdbstub/server.h"
#include "graph/graph.h"
#include "security/jail.h"

namespace launcher {

struct JailInputs {
  const graph::Graph* graph = nullptr;
  std::string accelerator;          // "kvm", "jit"
  std::filesystem::path base_dir;   // the config file's directory (relative paths)
  std::filesystem::path state_dir;  // the machine's state directory ("" for none)
  std::string name;                 // the machine's name (hostname, cgroup)
  std::optional<gdbstub::ListenAddress> gdb;
  bool jit_code = false;  // the LLVM tier will be loaded: load it before entering
  std::string restore_dir;  // up --restore DIR: read while the machine is built, inside
};

// Errors carry the config place of the backend whose files cannot be listed (a missing image).
base::ErrorOr<security::JailSpec> jail_spec(const JailInputs& inputs);

}  // namespace launcher
