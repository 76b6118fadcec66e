// `vmlaunch up FILE`: load and check the machine file, resolve its device graph, create the chosen
// accelerator and hand both to a vmm::Controller, which owns the running machine. In the foreground
// the serial console is this terminal and `up` exits with the guest's status when it powers off (0
// for a normal poweroff; an HTIF test's own status), 2 for a bad machine file, 1 for runtime failures.
// `up -d` starts the same controller in a detached VMM process with a state directory and a control
// socket, and returns once the machine runs.
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "accel/registry.h"
#include "base/host_memory.h"
#include "config/schema.h"
#include "graph/buildable.h"
#include "graph/render.h"
#include "launcher/checked_machine.h"
#include "launcher/command.h"
#include "launcher/host_accelerator.h"
#include "launcher/version.h"
#include "vmm/control_server.h"
#include "vmm/controller.h"
#include "vmm/state_dir.h"

namespace launcher {
namespace {

namespace fs = std::filesystem;

// SIGINT/SIGTERM/SIGHUP become a stop request instead of killing the process, so the terminal is
// restored and the VM torn down. In raw mode Ctrl-C reaches the guest, not us. The signals are
// blocked in every thread (threads created later inherit the mask, so this must exist before any)
// and collected here with sigwaitinfo; SIGUSR1, also blocked, is how the destructor wakes the watcher.
// A signal that arrives before the controller exists is remembered and honoured by set_target.
class SignalWatcher {
 public:
  SignalWatcher() {
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
        std::lock_guard guard(m_lock);
        if (m_target) m_target->stop("signal");
      }
    });
  }
  ~SignalWatcher() {
    m_done.store(true);
    pthread_kill(m_thread.native_handle(), SIGUSR1);
    m_thread.join();
    pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
  }
  void set_target(vmm::Controller* target) {
    std::lock_guard guard(m_lock);
    m_target = target;
    if (m_target && m_signal.load() != 0) m_target->stop("signal");
  }
  int signal() const { return m_signal.load(); }

 private:
  sigset_t m_set{}, m_old{};
  std::atomic<bool> m_done{false};
  std::atomic<int> m_signal{0};
  std::mutex m_lock;
  vmm::Controller* m_target = nullptr;
  std::thread m_thread;
};

struct Prepared {
  CheckedMachine checked;
  accel::Selection selection;
};

// Everything `up` decides before anything runs; a non-zero status is the exit code.
int prepare(const std::string& file, Prepared& prepared, bool overcommit) {
  prepared.checked = check_machine(file);
  print_diagnostics(prepared.checked.diagnostics);
  if (!prepared.checked.ok()) return prepared.checked.status;
  const graph::Graph& graph = prepared.checked.resolved.graph;
  for (const graph::Backend& backend : graph.backends)
    if (backend.kind == graph::BackendKind::Passthrough) {
      std::fprintf(stderr, "%s: passthrough.%s: %s\n", backend.location.to_string().c_str(),
                   backend.name.c_str(), graph::kNoPassthrough);
      return kExitRuntimeFailure;
    }
  // Guest RAM is backed lazily: without this, `memory: 1T` starts and the VMM grows until the host
  // suffers. A host fact, so exit 1.
  if (!overcommit) {
    auto host = base::host_memory();
    if (host.ok()) {
      auto fits =
          base::check_guest_memory(graph.machine.ram_size, host.value(), "pass --overcommit to start anyway");
      if (!fits.ok()) {
        std::fprintf(stderr, "vmlaunch: %s\n", fits.error().message.c_str());
        return kExitRuntimeFailure;
      }
    }
  }
  // The file says which accelerators it prefers; this host decides which of them it can run.
  prepared.selection = select_on_host(graph);
  if (!prepared.selection.ok) {
    std::fprintf(stderr, "vmlaunch: this host cannot run %s: %s\n",
                 graph.machine.name.empty() ? "the machine" : graph.machine.name.c_str(),
                 prepared.selection.error.c_str());
    return kExitRuntimeFailure;
  }
  return kExitOk;
}

base::ErrorOr<std::unique_ptr<vmm::Controller>> make_controller(const std::string& file, Prepared& prepared,
                                                                fs::path console_log) {
  vmm::ControllerOptions options;
  options.graph = prepared.checked.resolved.graph;
  options.accelerator = accel::Registry::builtin().create(prepared.selection.name);
  if (!options.accelerator)
    return base::fail(
        base::Error("accelerator " + prepared.selection.name + " is not built into this vmlaunch"));
  options.accelerator_name = prepared.selection.name;
  options.base_dir = fs::absolute(file).parent_path();
  options.console_log = std::move(console_log);
  return vmm::Controller::create(std::move(options));
}

int run_up(const std::string& file, bool overcommit, bool stats) {
  Prepared prepared;
  if (int status = prepare(file, prepared, overcommit); status != kExitOk) return status;
  SignalWatcher signals;
  vmm::Outcome outcome;
  {
    auto controller = make_controller(file, prepared, {});
    if (!controller.ok()) {
      std::fprintf(stderr, "%s\n", controller.error().message.c_str());
      return kExitRuntimeFailure;
    }
    signals.set_target(controller.value().get());
    outcome = controller.value()->run();
    signals.set_target(nullptr);
    if (stats && controller.value()->accelerator())
      std::fputs(controller.value()->accelerator()->stats_text().c_str(), stderr);
  }  // backends go away here: the terminal is back in cooked mode before we print
  if (outcome.reason == "signal" && signals.signal() != 0) {
    outcome.status = kExitRuntimeFailure;
    outcome.message = std::string("stopped by signal ") + strsignal(signals.signal());
  }
  if (!outcome.message.empty()) std::fprintf(stderr, "vmlaunch: %s\n", outcome.message.c_str());
  return outcome.status;
}

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// The detached VMM (the child of `up -d`): runs the controller with a control socket, logs and
// records, tells the parent through `ready_fd` ("ok" or the error) and exits with the machine.
int run_detached(const std::string& file, const std::string& name, Prepared& prepared, const fs::path& dir,
                 int ready_fd) {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int log_fd = ::open((dir / "vmm.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);  // console output goes to console.log, not twice
  }
  if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
  auto fail = [&](const std::string& message) {
    std::fprintf(stderr, "vmlaunch: %s\n", message.c_str());
    write_all(ready_fd, message);
    ::close(ready_fd);
    return kExitRuntimeFailure;
  };
  SignalWatcher signals;  // before any thread: SIGTERM is a stop, the outcome is recorded
  if (auto held = vmm::hold_run_lock(dir); !held.ok()) return fail(held.error().message);
  const graph::Graph& graph = prepared.checked.resolved.graph;
  nlohmann::json info = {{"name", name},
                         {"pid", ::getpid()},
                         {"boot_id", vmm::host_boot_id()},
                         {"started_at", vmm::now_seconds()},
                         {"config", fs::absolute(file).string()},
                         {"accelerator", prepared.selection.name},
                         {"vcpus", graph.machine.cpu.count},
                         {"memory", graph.machine.ram_size},
                         {"vmlaunch", kVersion}};
  if (auto written = vmm::write_file_atomic(dir / "machine.json", info.dump(2) + "\n"); !written.ok())
    return fail(written.error().message);

  auto controller = make_controller(file, prepared, dir / "console.log");
  if (!controller.ok()) return fail(controller.error().message);
  int events_fd = ::open((dir / "events.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  std::atomic<int> ready{ready_fd};
  controller.value()->add_event_sink([events_fd, &ready](const nlohmann::json& event) {
    if (events_fd >= 0)
      write_all(events_fd, event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    if (event["event"] == "STATE" && event["data"]["to"] == "running") {
      int fd = ready.exchange(-1);
      if (fd >= 0) {
        write_all(fd, "ok");
        ::close(fd);
      }
    }
  });
  auto server = vmm::ControlServer::start(
      *controller.value(), dir / "control.sock",
      {{"name", name}, {"pid", ::getpid()}, {"config", fs::absolute(file).string()}}, kVersion);
  if (!server.ok()) return fail(server.error().message);
  signals.set_target(controller.value().get());
  vmm::Outcome outcome = controller.value()->run();
  signals.set_target(nullptr);
  if (outcome.reason == "signal" && signals.signal() != 0) {
    outcome.status = kExitRuntimeFailure;
    outcome.message = std::string("stopped by signal ") + strsignal(signals.signal());
  }
  if (int fd = ready.exchange(-1); fd >= 0) {  // it never ran: the parent reports why
    write_all(fd, outcome.message.empty() ? "the machine stopped before it ran" : outcome.message);
    ::close(fd);
  }
  if (!outcome.message.empty()) std::fprintf(stderr, "vmlaunch: %s\n", outcome.message.c_str());
  nlohmann::json exit = {{"status", outcome.status},
                         {"reason", outcome.reason},
                         {"message", outcome.message},
                         {"stopped_at", vmm::now_seconds()}};
  (void)vmm::write_file_atomic(dir / "exit.json", exit.dump(2) + "\n");
  server.value().reset();
  controller.value().reset();
  if (events_fd >= 0) ::close(events_fd);
  return outcome.status;
}

int run_up_detached(const std::string& file, std::string name, bool overcommit) {
  Prepared prepared;
  if (int status = prepare(file, prepared, overcommit); status != kExitOk) return status;
  const graph::Graph& graph = prepared.checked.resolved.graph;
  if (name.empty()) name = graph.machine.name;
  if (name.empty()) name = fs::path(file).stem().string();
  if (auto valid = vmm::check_name(name); !valid.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", valid.error().message.c_str());
    return kExitBadInput;
  }
  auto root = vmm::state_root();
  if (!root.ok()) {
    std::fprintf(stderr, "vmlaunch: state directory: %s\n", root.error().message.c_str());
    return kExitRuntimeFailure;
  }
  // Held until the machine runs or failed: of two `up -d` racing for one name, the second waits here
  // and then finds the first one running.
  auto lock = vmm::NameLock::acquire(root.value(), name);
  if (!lock.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", lock.error().message.c_str());
    return kExitRuntimeFailure;
  }
  fs::path dir = root.value() / name;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    vmm::MachineRecord record = vmm::read_record(root.value(), name);
    if (record.state == "running") {
      std::fprintf(stderr, "vmlaunch: machine %s is already running (pid %ld); `vmlaunch down %s` stops it\n",
                   name.c_str(), record.pid, name.c_str());
      return kExitRuntimeFailure;
    }
    if (record.vmm_alive) {  // stale, yet its VMM lives: replacing the directory would orphan it
      std::fprintf(
          stderr,
          "vmlaunch: machine %s is stale (%s) but its VMM (pid %ld) lives; `vmlaunch down %s` ends it\n",
          name.c_str(), record.stale_reason.c_str(), record.pid, name.c_str());
      return kExitRuntimeFailure;
    }
    // Stopped or stale: nobody holds it (we hold the name lock), so it is ours to replace.
    if (auto removed = vmm::remove_machine_dir(dir); !removed.ok()) {
      std::fprintf(stderr, "vmlaunch: %s\n", removed.error().message.c_str());
      return kExitRuntimeFailure;
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0) {
    std::fprintf(stderr, "vmlaunch: mkdir %s: %s\n", dir.c_str(), std::strerror(errno));
    return kExitRuntimeFailure;
  }
  (void)vmm::write_file_atomic(dir / "config.json",
                               config::to_json(prepared.checked.loaded.document).dump(2) + "\n");
  (void)vmm::write_file_atomic(dir / "graph.json", graph::render_json(graph));
  (void)vmm::write_file_atomic(dir / "graph.txt", graph::render_text(graph));

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "vmlaunch: pipe: %s\n", std::strerror(errno));
    return kExitRuntimeFailure;
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "vmlaunch: fork: %s\n", std::strerror(errno));
    return kExitRuntimeFailure;
  }
  if (pid == 0) {
    lock.value().forget_in_child();
    ::close(ready[0]);
    // Whatever the caller left open (a test's pipes, a shell's descriptors) must not be held for
    // the machine's whole life: `$(vmlaunch up -d ...)` and pipelines would never see EOF.
    if (ready[1] > 3) ::close_range(3, static_cast<unsigned>(ready[1]) - 1, 0);
    ::close_range(static_cast<unsigned>(ready[1]) + 1, ~0U, 0);
    ::setsid();  // no controlling terminal: closing the shell that started it does not stop it
    int status = run_detached(file, name, prepared, dir, ready[1]);
    std::fflush(nullptr);
    ::_exit(status);
  }
  ::close(ready[1]);
  std::string answer;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(ready[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (answer.size() < 64 * 1024) answer.append(buffer, static_cast<size_t>(n));
  }
  ::close(ready[0]);
  if (answer == "ok") {
    std::printf("%s\n", name.c_str());
    return kExitOk;
  }
  int child_status = 0;
  ::waitpid(pid, &child_status, 0);
  std::fprintf(stderr, "vmlaunch: %s did not start: %s\n", name.c_str(),
               answer.empty() ? "the VMM exited without saying why" : answer.c_str());
  std::fprintf(stderr, "vmlaunch: its log stays in %s\n", dir.c_str());
  return kExitRuntimeFailure;
}

}  // namespace

void register_up(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "up",
      "Run a machine in the foreground, its serial console on this terminal (Ctrl-a x quits, Ctrl-a h "
      "helps). "
      "Exits with the guest's status when it powers off: 0 normally, a bare-metal test's HTIF status; "
      "2 for an invalid machine file, 1 for runtime failures. With -d, start it detached and print its "
      "name once it runs (see ps, logs, inspect, down).");
  auto file = std::make_shared<std::string>();
  auto detach = std::make_shared<bool>(false);
  auto name = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "Machine file (YAML, TOML or JSON)")->required();
  cmd->add_flag("-d,--detach", *detach, "Run detached: return once the machine runs, print its name");
  cmd->add_option(
      "--name", *name,
      "Name of the detached machine (default: the file's `name`, else the file's basename; at most 48 "
      "characters)");
  auto overcommit = std::make_shared<bool>(false);
  cmd->add_flag("--overcommit", *overcommit,
                "Start even when machine.memory is more than this host can back (available memory plus "
                "free swap)");
  auto stats = std::make_shared<bool>(false);
  cmd->add_flag("--stats", *stats,
                "At exit, print the accelerator's counters on stderr (jit: regions compiled, compile time "
                "p50/p99/total, share of guest instructions run in compiled code)");
  cmd->callback([&action, file, detach, name, overcommit, stats] {
    if (*detach) {
      action = [file, name, overcommit] { return run_up_detached(*file, *name, *overcommit); };
    } else {
      action = [file, overcommit, stats] { return run_up(*file, *overcommit, *stats); };
    }
  });
}

}  // namespace launcher
