// `vmlaunch down NAME [--timeout S] [--force]` and `down --all`: stop a machine and remove its state
// directory. The guest is asked to power off first (its power button: riscv64 virt's gpio-keys key);
// when it has not within --timeout, or it has no power button, the machine is stopped (what --force
// does at once). A VMM that does not stop then, or whose control socket does not answer, is killed.
// Exit 0 when every machine is gone, 1 otherwise, 2 for bad arguments.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "launcher/command.h"
#include "launcher/machine_state.h"
#include "vmm/control_server.h"

namespace launcher {
namespace {

bool wait_gone(const std::filesystem::path& root, const std::string& name, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    if (!vmm::read_record(root, name).vmm_alive) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

bool down_one(const std::filesystem::path& root, const std::string& name, double timeout, bool force,
              bool quiet) {
  auto lock = vmm::NameLock::acquire(root, name);
  if (!lock.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", lock.error().message.c_str());
    return false;
  }
  vmm::MachineRecord record = vmm::read_record(root, name);
  if (record.vmm_alive) {
    auto client = vmm::ControlClient::connect(record.dir / "control.sock");
    bool asked = false;
    if (record.state != "running") {
      std::fprintf(stderr, "vmlaunch: %s is stale: %s\n", name.c_str(), record.stale_reason.c_str());
    } else if (client.ok()) {
      bool gone = false;
      if (!force) {
        auto graceful = client.value().execute("powerdown");
        if (!graceful.ok())
          std::fprintf(stderr, "vmlaunch: %s: %s; stopping it\n", name.c_str(),
                       graceful.error().message.c_str());
        else if (!(gone = wait_gone(root, name, timeout)))
          std::fprintf(stderr, "vmlaunch: %s did not power off within %gs; stopping it\n", name.c_str(),
                       timeout);
      }
      asked = gone || client.value().execute("stop").ok();
    } else {
      std::fprintf(stderr, "vmlaunch: %s: control socket: %s\n", name.c_str(),
                   client.error().message.c_str());
    }
    if (!asked || !wait_gone(root, name, asked ? 10 : 0)) {
      // run.lock is held and the pid lives on this boot (read_record checked): the signal hits our VMM.
      std::fprintf(stderr, "vmlaunch: %s did not stop; killing pid %ld\n", name.c_str(), record.pid);
      ::kill(static_cast<pid_t>(record.pid), SIGKILL);
      if (!wait_gone(root, name, 5)) {
        std::fprintf(stderr, "vmlaunch: %s (pid %ld) survived SIGKILL\n", name.c_str(), record.pid);
        return false;
      }
    }
  }
  if (auto removed = vmm::remove_machine_dir(record.dir); !removed.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", removed.error().message.c_str());
    return false;
  }
  if (!quiet) std::printf("%s\n", name.c_str());
  return true;
}

namespace {

int run_down(const std::vector<std::string>& names, bool all, double timeout, bool force) {
  if (all == !names.empty()) {
    std::fprintf(stderr, "vmlaunch: down takes machine names or --all\n");
    return kExitBadInput;
  }
  for (const std::string& name : names) {
    if (auto valid = vmm::check_name(name); !valid.ok()) {
      std::fprintf(stderr, "vmlaunch: %s\n", valid.error().message.c_str());
      return kExitBadInput;
    }
  }
  auto root = open_state_root();
  if (!root) return kExitRuntimeFailure;
  std::vector<std::string> targets = names;
  if (all)
    for (const vmm::MachineRecord& record : vmm::list_records(*root)) targets.push_back(record.name);
  int status = kExitOk;
  for (const std::string& name : targets) {
    std::error_code ec;
    if (!std::filesystem::is_directory(*root / name, ec)) {
      std::fprintf(stderr, "vmlaunch: no machine named %s\n", name.c_str());
      status = kExitRuntimeFailure;
      continue;
    }
    if (!down_one(*root, name, timeout, force)) status = kExitRuntimeFailure;
  }
  return status;
}

}  // namespace

void register_down(CLI::App& app, Action& action) {
  CLI::App* cmd =
      app.add_subcommand("down",
                         "Stop machines and remove their state: press the guest's power button, wait "
                         "--timeout for it to power off, then stop it (at once without a power button, "
                         "or with --force). Exit 0 when all are gone, 1 otherwise, 2 for bad arguments");
  auto names = std::make_shared<std::vector<std::string>>();
  auto all = std::make_shared<bool>(false);
  auto force = std::make_shared<bool>(false);
  auto timeout = std::make_shared<double>(30);
  cmd->add_option("NAME", *names, "Machine names (see ps)");
  cmd->add_flag("--all", *all, "Every machine in the state directory");
  cmd->add_flag("-f,--force", *force, "Stop at once, without asking the guest");
  cmd->add_option("-t,--timeout", *timeout,
                  "Seconds to wait for the guest to power off before stopping it (default 30)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([&action, names, all, force, timeout] {
    action = [names, all, force, timeout] { return run_down(*names, *all, *timeout, *force); };
  });
}

}  // namespace launcher
