// `vmlaunch up FILE`: load and check the machine file, resolve its device graph, create the chosen
// accelerator and the named backends, build the machine and run it in the foreground with the
// serial console on this terminal. Exits with the guest's status when it powers off (0 for a normal
// poweroff; an HTIF test's own status), 2 for a bad machine file, 1 for runtime failures.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "accel/registry.h"
#include "backends/factory.h"
#include "graph/buildable.h"
#include "hw/machine.h"
#include "launcher/checked_machine.h"
#include "launcher/command.h"
#include "launcher/host_accelerator.h"

namespace launcher {
namespace {

// The graph's backends, created once per `up` and shared by machine rebuilds (guest reboot).
class CreatedBackends : public hw::BackendSource {
 public:
  std::map<std::string, backends::AnyBackend, std::less<>> by_name;
  std::shared_ptr<backends::CharBackend> chardev(std::string_view name) override {
    return find(name).chardev;
  }
  std::shared_ptr<backends::BlockBackend> block(std::string_view name) override { return find(name).block; }
  std::shared_ptr<backends::NetBackend> net(std::string_view name) override { return find(name).net; }
  std::shared_ptr<backends::RngBackend> rng(std::string_view name) override { return find(name).rng; }

 private:
  const backends::AnyBackend& find(std::string_view name) {
    static const backends::AnyBackend none;
    auto it = by_name.find(name);
    return it == by_name.end() ? none : it->second;
  }
};

// Where asynchronous stop requests (Ctrl-a x, SIGTERM) go: the machine running now, if any. A
// request that arrives between machines is remembered and honoured by the next one.
class StopRelay {
 public:
  void set_machine(hw::Machine* machine) {
    std::lock_guard guard(m_lock);
    m_machine = machine;
    if (m_machine && m_pending) m_machine->power().quit();
  }
  void quit() {
    std::lock_guard guard(m_lock);
    m_pending = true;
    if (m_machine) m_machine->power().quit();
  }
  bool pending() {
    std::lock_guard guard(m_lock);
    return m_pending;
  }

 private:
  std::mutex m_lock;
  hw::Machine* m_machine = nullptr;
  bool m_pending = false;
};

// SIGINT/SIGTERM/SIGHUP become a quit request instead of killing the process, so the terminal is
// restored and the VM torn down. In raw mode Ctrl-C reaches the guest, not us. The signals are
// blocked in every thread (vCPU threads inherit the mask) and collected here with sigwaitinfo;
// SIGUSR1, also blocked, is how the destructor wakes the watcher at once.
class SignalWatcher {
 public:
  explicit SignalWatcher(StopRelay& relay) : m_relay(relay) {
    sigemptyset(&m_set);
    sigaddset(&m_set, SIGINT);
    sigaddset(&m_set, SIGTERM);
    sigaddset(&m_set, SIGHUP);
    sigaddset(&m_set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &m_set, &m_old);
    m_thread = std::thread([this] {
      while (!m_done.load()) {
        int sig = sigwaitinfo(&m_set, nullptr);
        if (sig <= 0 || sig == SIGUSR1) continue;
        m_signal.store(sig);
        m_relay.quit();
      }
    });
  }
  ~SignalWatcher() {
    m_done.store(true);
    pthread_kill(m_thread.native_handle(), SIGUSR1);
    m_thread.join();
    pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
  }
  int signal() const { return m_signal.load(); }

 private:
  StopRelay& m_relay;
  sigset_t m_set{}, m_old{};
  std::atomic<bool> m_done{false};
  std::atomic<int> m_signal{0};
  std::thread m_thread;
};

int run_up(const std::string& file) {
  CheckedMachine checked = check_machine(file);
  print_diagnostics(checked.diagnostics);
  if (!checked.ok()) return checked.status;
  const graph::Graph& graph = checked.resolved.graph;

  for (const graph::Backend& backend : graph.backends)
    if (backend.kind == graph::BackendKind::Passthrough) {
      std::fprintf(stderr, "%s: passthrough.%s: %s\n", backend.location.to_string().c_str(),
                   backend.name.c_str(), graph::kNoPassthrough);
      return kExitRuntimeFailure;
    }

  // The file says which accelerators it prefers; this host decides which of them it can run.
  accel::Selection selection = select_on_host(graph);
  if (!selection.ok) {
    std::fprintf(stderr, "vmlaunch: this host cannot run %s: %s\n",
                 graph.machine.name.empty() ? "the machine" : graph.machine.name.c_str(),
                 selection.error.c_str());
    return kExitRuntimeFailure;
  }
  std::unique_ptr<accel::Accelerator> accelerator = accel::Registry::builtin().create(selection.name);
  if (!accelerator) {
    std::fprintf(stderr, "vmlaunch: accelerator %s is not built into this vmlaunch\n",
                 selection.name.c_str());
    return kExitRuntimeFailure;
  }

  StopRelay relay;
  SignalWatcher signals(relay);
  int status = kExitOk;
  std::string failure;
  {
    CreatedBackends created;
    backends::FactoryContext factory_context;
    factory_context.quit = [&relay] { relay.quit(); };
    factory_context.base_dir = std::filesystem::absolute(file).parent_path();
    factory_context.machine_name = graph.machine.name;
    for (const graph::Backend& backend : graph.backends) {
      auto made = backends::create_backend(graph::backend_kind_name(backend.kind), backend.name,
                                           backend.driver, backend.options, factory_context);
      if (!made.ok()) {
        // Option errors already start with the option's own file:line:col; say where only once.
        const std::string& message = made.error().message;
        if (message.rfind(backend.location.file + ":", 0) == 0)
          std::fprintf(stderr, "%s\n", message.c_str());
        else
          std::fprintf(stderr, "%s: backend %s: %s\n", backend.location.to_string().c_str(),
                       backend.name.c_str(), message.c_str());
        return kExitRuntimeFailure;
      }
      created.by_name.emplace(backend.name, std::move(made.value()));
    }

    hw::MachineContext context;
    context.accelerator = accelerator.get();
    context.backends = &created;
    // A guest reboot builds the machine afresh from the same graph and backends.
    for (;;) {
      auto machine = hw::build_machine(graph, context);
      if (!machine.ok()) {
        failure = machine.error().message;
        status = kExitRuntimeFailure;
        break;
      }
      relay.set_machine(machine.value().get());
      hw::RunOutcome outcome = machine.value()->run();
      relay.set_machine(nullptr);
      machine.value().reset();
      if (outcome.kind == hw::RunOutcome::Kind::Reset && !relay.pending()) continue;
      switch (outcome.kind) {
        case hw::RunOutcome::Kind::PowerOff:
          status = outcome.exit_code < 0 || outcome.exit_code > 255 ? kExitRuntimeFailure : outcome.exit_code;
          break;
        case hw::RunOutcome::Kind::Reset:
        case hw::RunOutcome::Kind::Quit:
          status = kExitOk;
          failure.clear();
          if (signals.signal() != 0) {
            failure = std::string("stopped by signal ") + strsignal(signals.signal());
            status = kExitRuntimeFailure;
          }
          break;
        case hw::RunOutcome::Kind::Error:
          failure = outcome.message;
          status = kExitRuntimeFailure;
          break;
      }
      break;
    }
  }  // backends go away here: the terminal is back in cooked mode before we print
  if (!failure.empty()) std::fprintf(stderr, "vmlaunch: %s\n", failure.c_str());
  return status;
}

}  // namespace

void register_up(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "up",
      "Run a machine in the foreground, its serial console on this terminal (Ctrl-a x quits, Ctrl-a h "
      "helps). "
      "Exits with the guest's status when it powers off: 0 normally, a bare-metal test's HTIF status; "
      "2 for an invalid machine file, 1 for runtime failures.");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "Machine file (YAML, TOML or JSON)")->required();
  cmd->callback([&action, file] { action = [file] { return run_up(*file); }; });
}

}  // namespace launcher
