// `vmlaunch up FILE`: load and check the machine file, resolve its device graph, create the chosen
// accelerator and hand both to a vmm::Controller, which owns the running machine. In the foreground
// the serial console is this terminal and `up` exits with the guest's status when it powers off (0
// for a normal poweroff; an HTIF test's own status), 2 for a bad machine file, 1 for runtime failures,
// and vmm's codes for a guest reset or panic the file said to stop on and for a forced stop. `up -d`
// starts the same controller in a detached VMM process and returns once the machine runs; both keep
// a state directory with control and console sockets.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "accel/registry.h"
#include "base/fd_io.h"
#include "base/field_use.h"
#include "base/host_memory.h"
#include "config/schema.h"
#include "debug/gdbstub/server.h"
#include "graph/buildable.h"
#include "graph/render.h"
#include "launcher/checked_machine.h"
#include "launcher/command.h"
#include "launcher/host_accelerator.h"
#include "launcher/jail_plan.h"
#include "launcher/machine_state.h"
#include "launcher/passthrough_preflight.h"
#include "launcher/readiness.h"
#include "launcher/version.h"
#include "security/jail.h"
#include "security/policy.h"
#include "security/privileges.h"
#include "security/thread_role.h"
#include "snapshot/snapshot.h"
#include "vmm/console_server.h"
#include "vmm/control_server.h"
#include "vmm/controller.h"
#include "vmm/state_dir.h"

VML_CONSUMES("lifecycle.on-reset");  // the controller reboots or stops on a guest reset
VML_CONSUMES("lifecycle.on-panic");  // and powers off, pauses or reboots on a guest panic (pvpanic)
VML_CONSUMES("debug.gdb.host");      // the gdb stub listens on this TCP host and port
VML_CONSUMES("debug.gdb.port");
VML_CONSUMES("debug.gdb.path");    // or on this unix socket
VML_CONSUMES("debug.wait");        // and holds the machine at reset until gdb continues it
VML_CONSUMES("security.seccomp");  // each thread's allow-list is armed after the first build
VML_CONSUMES("security.user");     // root becomes this user then
VML_CONSUMES("security.group");

namespace launcher {
namespace {

namespace fs = std::filesystem;

// Signals become requests to the controller instead of killing the process, so the terminal is
// restored and the VM torn down. The first SIGTERM (or SIGHUP) is a graceful stop: the guest's power
// button, then a forced stop after the grace period (--stop-timeout); SIGINT or a second signal stops
// at once. A SIGTERM or SIGHUP within a second of the first is the same request, not a second one:
// coreutils `timeout` and shells relay one stop both to the child and to its process group, and a
// supervisor's single stop must not become a forced one. In raw mode Ctrl-C reaches the guest, not us. The
// signals are blocked in every thread (threads created later inherit the mask, so this must exist before any)
// and collected here with sigwaitinfo; SIGUSR1, also blocked, is how the destructor wakes the watcher. A
// signal that arrives before the controller exists is remembered and honoured by set_target.
class SignalWatcher {
 public:
  explicit SignalWatcher(double grace_seconds) : m_grace(grace_seconds) {
    sigemptyset(&m_set);
    sigaddset(&m_set, SIGINT);
    sigaddset(&m_set, SIGTERM);
    sigaddset(&m_set, SIGHUP);
    sigaddset(&m_set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &m_set, &m_old);
    m_thread = std::thread([this] {
      security::ThreadRole role(security::Role::Signals);
      while (!m_done.load()) {
        int sig = sigwaitinfo(&m_set, nullptr);
        if (sig <= 0 || sig == SIGUSR1) continue;
        std::lock_guard guard(m_lock);
        const auto now = std::chrono::steady_clock::now();
        if (m_count > 0 && sig != SIGINT && now - m_first < std::chrono::seconds(1))
          continue;  // relayed twice
        if (m_count == 0) m_first = now;
        m_signal.store(sig);
        m_forced = m_forced || sig == SIGINT || m_count > 0;
        ++m_count;
        deliver();
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
    if (m_count > 0) deliver();
  }
  int signal() const { return m_signal.load(); }

 private:
  void deliver() {
    if (!m_target) return;
    if (m_forced)
      m_target->stop("signal");
    else
      m_target->shutdown(m_grace, "signal");
  }

  double m_grace;
  sigset_t m_set{}, m_old{};
  std::atomic<bool> m_done{false};
  std::atomic<int> m_signal{0};
  std::mutex m_lock;
  int m_count = 0;
  std::chrono::steady_clock::time_point m_first;  // when the first stop signal came
  bool m_forced = false;
  vmm::Controller* m_target = nullptr;
  std::thread m_thread;
};

struct Prepared {
  CheckedMachine checked;
  accel::Selection selection;
  std::optional<gdbstub::ListenAddress> gdb;  // debug.gdb, or --gdb
  bool gdb_wait = false;
  bool jail = false;  // security.jail, or --jail
  // Inside the jail: the VMM's pid as the host sees it, and what the host could not give.
  pid_t host_pid = 0;
  std::vector<std::string> jail_not_applied;
  std::shared_ptr<const snapshot::Opened> restore;  // --restore DIR, checked
  std::string restore_dir;
  bool start_paused = false;  // --paused
};

// `up --restore DIR [--paused]`: FILE is then the snapshot's own DIR/config.json.
struct RestoreFlags {
  std::string dir;
  bool paused = false;
};

// What --gdb and --gdb-wait add to the file's `debug:` section.
struct GdbFlags {
  std::string address;  // tcp:HOST:PORT or unix:PATH; empty: the file's
  bool wait = false;
};

// The gdb stub's address and wait from the file's debug section (validated by the schema), then the
// command line. Bad input is exit 2.
int read_debug_section(Prepared& prepared, const GdbFlags& flags) {
  nlohmann::json doc = config::to_json(prepared.checked.loaded.document);
  auto debug = doc.find("debug");
  if (debug != doc.end() && debug->is_object()) {
    if (auto wait = debug->find("wait"); wait != debug->end() && wait->is_boolean())
      prepared.gdb_wait = wait->get<bool>();
    if (auto gdb = debug->find("gdb"); gdb != debug->end() && gdb->is_object()) {
      gdbstub::ListenAddress address;
      if (auto path = gdb->find("path"); path != gdb->end() && path->is_string()) {
        if (gdb->contains("port") || gdb->contains("host")) {
          std::fprintf(stderr, "vmlaunch: debug.gdb: give a path or a host and port, not both\n");
          return kExitBadInput;
        }
        auto parsed = gdbstub::parse_listen_address("unix:" + path->get<std::string>());
        if (!parsed.ok()) {
          std::fprintf(stderr, "vmlaunch: debug.gdb.path: %s\n", parsed.error().message.c_str());
          return kExitBadInput;
        }
        address = parsed.value();
      } else {
        address.host = gdb->value("host", std::string("127.0.0.1"));
        address.port = static_cast<uint16_t>(gdb->value("port", 0));
      }
      prepared.gdb = address;
    }
  }
  if (!flags.address.empty()) {
    auto parsed = gdbstub::parse_listen_address(flags.address);
    if (!parsed.ok()) {
      std::fprintf(stderr, "vmlaunch: --gdb: %s\n", parsed.error().message.c_str());
      return kExitBadInput;
    }
    prepared.gdb = parsed.value();
  }
  if (flags.wait) prepared.gdb_wait = true;
  if (prepared.gdb_wait && !prepared.gdb) {
    std::fprintf(stderr, "vmlaunch: --gdb-wait needs a gdb address (--gdb or debug.gdb)\n");
    return kExitBadInput;
  }
  return kExitOk;
}

std::string machine_name(const std::string& file, const std::string& given, const graph::Graph& graph);

// Everything `up` decides before anything runs; a non-zero status is the exit code. `detached`:
// `up -d` with this --name (maybe empty), whose machine, when it runs already, is no competitor for
// its own devices (a second `up -d` of it is answered by second_up).
int prepare(const std::string& file, Prepared& prepared, bool overcommit, const GdbFlags& gdb,
            const RestoreFlags& restore = {}, const std::optional<std::string>& detached = std::nullopt) {
  // A snapshot is checked before its config: a truncated or altered directory is refused as such.
  if (!restore.dir.empty()) {
    auto opened = snapshot::open(restore.dir);
    if (!opened.ok()) {
      std::fprintf(stderr, "vmlaunch: cannot restore %s: %s\n", restore.dir.c_str(),
                   opened.error().message.c_str());
      return kExitBadInput;
    }
    prepared.restore = std::make_shared<const snapshot::Opened>(std::move(opened.value()));
    prepared.restore_dir = restore.dir;
  }
  prepared.start_paused = restore.paused;
  prepared.checked = check_machine(file);
  print_diagnostics(prepared.checked.diagnostics);
  if (!prepared.checked.ok()) return prepared.checked.status;
  if (int status = read_debug_section(prepared, gdb); status != kExitOk) return status;
  {
    nlohmann::json doc = config::to_json(prepared.checked.loaded.document);
    auto section = doc.find("security");
    if (section != doc.end() && section->is_object())
      if (auto jail = section->find("jail"); jail != section->end() && jail->is_boolean())
        prepared.jail = jail->get<bool>();
  }
  const graph::Graph& graph = prepared.checked.resolved.graph;
  // Every passthrough problem of this host in one run, at each entry, before anything starts.
  // Only a machine with passthrough entries reads the other machines' records: every other `up` skips it.
  std::vector<passthrough::HeldDevice> held;
  if (std::any_of(graph.backends.begin(), graph.backends.end(),
                  [](const graph::Backend& b) { return b.kind == graph::BackendKind::Passthrough; }))
    held = devices_held_by_machines(detached ? machine_name(file, *detached, graph) : std::string());
  config::Diagnostics host_problems =
      preflight_passthrough(graph, passthrough::HostFacts::of_this_process(), held);
  if (!host_problems.empty()) {
    print_diagnostics(host_problems);
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
  if (prepared.restore) {
    auto compatible =
        snapshot::check_compatible(prepared.restore->state.header, graph, prepared.selection.name);
    if (!compatible.ok()) {
      std::fprintf(stderr, "vmlaunch: cannot restore %s: %s\n", prepared.restore_dir.c_str(),
                   compatible.error().message.c_str());
      return kExitBadInput;
    }
  }
  return kExitOk;
}

// Whether the machine will load the jit's LLVM tier (any tier but the interpreter).
bool uses_llvm_tier(const Prepared& prepared) {
  if (prepared.selection.name != "jit") return false;
  const graph::Graph& graph = prepared.checked.resolved.graph;
  auto found = graph.accel.settings.find("jit");
  if (found != graph.accel.settings.end())
    for (const auto& [key, value] : found->second)
      if (key == "tier" && value != "interp") return true;
  return false;
}

// The file's `security:` section as the VMM applies it.
struct SecuritySettings {
  security::SeccompMode mode = security::SeccompMode::Strict;
  std::optional<security::DropTarget> drop;
  security::PolicyContext context;
  bool jailed = false;
  std::vector<std::string> jail_not_applied;
};

base::ErrorOr<SecuritySettings> security_settings(const nlohmann::json& doc, const Prepared& prepared) {
  SecuritySettings settings;
  std::string user, group;
  if (auto section = doc.find("security"); section != doc.end() && section->is_object()) {
    auto text = [&](const char* key) {
      auto value = section->find(key);
      return value != section->end() && value->is_string() ? value->get<std::string>() : std::string();
    };
    if (std::string mode = text("seccomp"); !mode.empty()) settings.mode = TRY(security::parse_mode(mode));
    user = text("user");
    group = text("group");
  }
  settings.drop = TRY(security::resolve_drop(user, group));
  const graph::Graph& graph = prepared.checked.resolved.graph;
  // What widens the lists: the LLVM tier maps code pages; 9p works on host files from vCPU threads.
  settings.context.jit_code = uses_llvm_tier(prepared);
  for (const graph::Device& device : graph.devices)
    if (device.driver.rfind("virtio-9p", 0) == 0) settings.context.p9_shares = true;
  for (const graph::Backend& backend : graph.backends)
    if (backend.kind == graph::BackendKind::Net && backend.driver == "user") settings.context.user_net = true;
  settings.context.pid = static_cast<int>(::getpid());
  settings.jailed = prepared.host_pid != 0;
  settings.jail_not_applied = prepared.jail_not_applied;
  return settings;
}

// Confines the VMM once its first machine is built: resource limits, the user change, then the
// seccomp filters; records what it applied in DIR/security.json (`vmlaunch inspect` prints it).
base::ErrorOr<void> confine(const SecuritySettings& settings, const fs::path& dir) {
  // Written first: once it is another user, the VMM may not be able to reach its state directory
  // by path any more (a root-only parent directory).
  if (!dir.empty()) {
    nlohmann::json roles = nlohmann::json::object();
    for (const security::RoleSize& size : security::role_sizes(settings.context))
      roles[security::role_name(size.role)] = size.syscalls;
    nlohmann::json record = {{"seccomp", security::mode_name(settings.mode)},
                             {"user", settings.drop ? settings.drop->user : std::string()},
                             {"uid", settings.drop ? settings.drop->uid : ::geteuid()},
                             {"gid", settings.drop ? settings.drop->gid : ::getegid()},
                             {"allow_list_sizes", roles},
                             {"jail", settings.jailed},
                             {"jail_not_applied", settings.jail_not_applied}};
    (void)vmm::write_file_atomic(dir / "security.json", record.dump(2) + "\n");
  }
  TRY(security::set_limits());
  if (settings.drop) {
    // The state directory stays the machine's: the VMM renames exit.json in it.
    if (!dir.empty() && ::chown(dir.c_str(), settings.drop->uid, settings.drop->gid) != 0)
      return base::fail(base::Error("chown " + dir.string() + ": " + std::strerror(errno)));
    TRY(security::drop_privileges(*settings.drop));
  }
  return security::arm(settings.mode, settings.context);
}

// The config a snapshot keeps (DIR/config.json): the effective document, with the paths that
// resolve against the file's directory made absolute, so it runs from the snapshot's directory.
nlohmann::json effective_config(nlohmann::json doc, const graph::Graph& graph, const fs::path& base_dir) {
  auto absolute = [&](const std::string& path) {
    fs::path p = path;
    return (p.is_relative() ? fs::absolute(base_dir / p) : p).lexically_normal().string();
  };
  if (auto boot = doc.find("boot"); boot != doc.end() && boot->is_object()) {
    const std::pair<const char*, const std::string*> resolved[] = {
        {"kernel", &graph.boot.kernel}, {"initrd", &graph.boot.initrd}, {"dtb", &graph.boot.dtb}};
    for (const auto& [key, value] : resolved)
      if (boot->contains(key) && !value->empty())
        (*boot)[key] = fs::absolute(*value).lexically_normal().string();
  }
  if (auto backends = doc.find("backends"); backends != doc.end() && backends->is_object())
    for (auto& [kind, named] : backends->items()) {
      if (!named.is_object()) continue;
      for (auto& [name, options] : named.items())
        for (const char* key : {"file", "path"})
          if (options.is_object() && options.contains(key) && options[key].is_string())
            options[key] = absolute(options[key].get<std::string>());
    }
  return doc;
}

base::ErrorOr<std::unique_ptr<vmm::Controller>> make_controller(const std::string& file, Prepared& prepared,
                                                                fs::path console_log, fs::path dir = {}) {
  vmm::ControllerOptions options;
  options.graph = prepared.checked.resolved.graph;
  options.accelerator = accel::Registry::builtin().create(prepared.selection.name);
  if (!options.accelerator)
    return base::fail(
        base::Error("accelerator " + prepared.selection.name + " is not built into this vmlaunch"));
  options.accelerator_name = prepared.selection.name;
  options.base_dir = fs::absolute(file).parent_path();
  if (prepared.restore && !prepared.restore->base_dir.empty()) options.base_dir = prepared.restore->base_dir;
  options.restore = prepared.restore;
  options.restore_dir = prepared.restore_dir;
  options.start_paused = prepared.start_paused;
  options.vmlaunch_version = kVersion;
  options.console_log = std::move(console_log);
  // lifecycle: what a guest reset or panic leads to (validated by the schema: these values only).
  nlohmann::json doc = config::to_json(prepared.checked.loaded.document);
  auto policy = [&doc](const char* key) -> std::string {
    auto section = doc.find("lifecycle");
    if (section == doc.end() || !section->is_object()) return {};
    auto value = section->find(key);
    return value != section->end() && value->is_string() ? value->get<std::string>() : std::string();
  };
  if (policy("on-reset") == "poweroff") options.on_reset = vmm::OnReset::Poweroff;
  std::string on_panic = policy("on-panic");
  if (on_panic == "pause") options.on_panic = vmm::OnPanic::Pause;
  if (on_panic == "reboot") options.on_panic = vmm::OnPanic::Reboot;
  options.gdb = prepared.gdb;
  options.gdb_wait = prepared.gdb_wait;
  options.effective_config = effective_config(doc, prepared.checked.resolved.graph, options.base_dir);
  SecuritySettings security = TRY(security_settings(doc, prepared));
  options.after_first_build = [security, dir] { return confine(security, dir); };
  return vmm::Controller::create(std::move(options));
}

// The machine's name: --name, else the file's `name`, else the file's basename.
std::string machine_name(const std::string& file, const std::string& given, const graph::Graph& graph) {
  if (!given.empty()) return given;
  if (!graph.machine.name.empty()) return graph.machine.name;
  return fs::path(file).stem().string();
}

// Makes ROOT/NAME for a new machine (call with the name lock held): a stopped or stale one of that
// name is replaced; a running one is refused. Returns false after saying why.
bool claim_machine_dir(const fs::path& root, const std::string& name, Prepared& prepared,
                       bool quiet_if_taken) {
  fs::path dir = root / name;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    vmm::MachineRecord record = vmm::read_record(root, name);
    if (record.state == "running" || record.state == "starting") {
      if (!quiet_if_taken)
        std::fprintf(stderr,
                     "vmlaunch: machine %s is already running (pid %ld); `vmlaunch down %s` stops it\n",
                     name.c_str(), record.pid, name.c_str());
      return false;
    }
    if (record.vmm_alive) {  // stale, yet its VMM lives: replacing the directory would orphan it
      if (!quiet_if_taken)
        std::fprintf(
            stderr,
            "vmlaunch: machine %s is stale (%s) but its VMM (pid %ld) lives; `vmlaunch down %s` ends it\n",
            name.c_str(), record.stale_reason.c_str(), record.pid, name.c_str());
      return false;
    }
    // Stopped or stale: nobody holds it (we hold the name lock), so it is ours to replace.
    if (auto removed = vmm::remove_machine_dir(dir); !removed.ok()) {
      std::fprintf(stderr, "vmlaunch: %s\n", removed.error().message.c_str());
      return false;
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0) {
    std::fprintf(stderr, "vmlaunch: mkdir %s: %s\n", dir.c_str(), std::strerror(errno));
    return false;
  }
  const graph::Graph& graph = prepared.checked.resolved.graph;
  (void)vmm::write_file_atomic(dir / "config.json",
                               config::to_json(prepared.checked.loaded.document).dump(2) + "\n");
  (void)vmm::write_file_atomic(dir / "graph.json", graph::render_json(graph));
  (void)vmm::write_file_atomic(dir / "graph.txt", graph::render_text(graph));
  return true;
}

// Runs the machine with its state directory: record, event log, control and console sockets, and
// exit.json at the end. `ready` is called once: with "" when the machine runs, else with why it
// never did. Used by the detached VMM and by the foreground `up` alike.
// `up --stats`: the accelerator's counters once the machine has stopped, as text on stderr
// (`--stats`) or as JSON in a file (`--stats=json:FILE`: {"accelerator": NAME, NAME: {...}}).
struct StatsOutput {
  bool text = false;
  std::string json_path;
  bool any() const { return text || !json_path.empty(); }
};

// The JSON file is made before the machine runs: once confined (security/), main creates no files.
std::optional<vmm::PendingFile> pending_stats_file(const StatsOutput& output) {
  if (output.json_path.empty()) return std::nullopt;
  auto file = vmm::PendingFile::create(output.json_path);
  if (!file.ok()) {
    std::fprintf(stderr, "vmlaunch: --stats: %s\n", file.error().message.c_str());
    return std::nullopt;
  }
  return std::move(file.value());
}

void print_stats(vmm::Controller& controller, const StatsOutput& output,
                 std::optional<vmm::PendingFile>& file) {
  const accel::Accelerator* accelerator = controller.accelerator();
  if (output.text && accelerator) std::fputs(accelerator->stats_text().c_str(), stderr);
  if (output.json_path.empty()) return;
  nlohmann::json stats = nlohmann::json::object();
  if (accelerator) {
    const std::string name(accelerator->name());
    stats["accelerator"] = name;
    const std::string text = accelerator->stats_json();
    if (!text.empty()) {
      nlohmann::json numbers = nlohmann::json::parse(text, nullptr, false);
      stats[name] = numbers.is_discarded() ? nlohmann::json(text) : numbers;
    }
  }
  if (!file) return;  // could not be made: said so at start
  if (auto written = file->commit(stats.dump(2) + "\n"); !written.ok())
    std::fprintf(stderr, "vmlaunch: --stats: %s\n", written.error().message.c_str());
}

int run_with_state(const std::string& file, const std::string& name, Prepared& prepared, const fs::path& dir,
                   SignalWatcher& signals, const std::function<void(const std::string&)>& ready,
                   const StatsOutput& stats = {}) {
  std::atomic<bool> answered{false};
  auto answer = [&](const std::string& message) {
    if (!answered.exchange(true)) ready(message);
  };
  auto fail = [&](const std::string& message) {
    std::fprintf(stderr, "vmlaunch: %s\n", message.c_str());
    answer(message);
    return kExitRuntimeFailure;
  };
  if (auto held = vmm::hold_run_lock(dir); !held.ok()) return fail(held.error().message);
  const graph::Graph& graph = prepared.checked.resolved.graph;
  const long pid = prepared.host_pid ? prepared.host_pid : ::getpid();  // as ps and down see it
  nlohmann::json info = {{"name", name},
                         {"pid", pid},
                         {"boot_id", vmm::host_boot_id()},
                         {"started_at", vmm::now_seconds()},
                         {"config", fs::absolute(file).string()},
                         {"accelerator", prepared.selection.name},
                         {"vcpus", graph.machine.cpu.count},
                         {"memory", graph.machine.ram_size},
                         {"vmlaunch", kVersion}};
  // The host devices it holds, so another `up` of them is refused naming this machine.
  if (nlohmann::json devices = passthrough_record(graph); !devices.empty()) info["passthrough"] = devices;
  if (auto written = vmm::write_file_atomic(dir / "machine.json", info.dump(2) + "\n"); !written.ok())
    return fail(written.error().message);

  auto controller = make_controller(file, prepared, dir / "console.log", dir);
  if (!controller.ok()) return fail(controller.error().message);
  int events_fd = ::open((dir / "events.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  security::set_event_log_fd(events_fd);  // a seccomp violation is an event too
  // Created now: once confined, the VMM can rename a file it holds but not create one.
  auto exit_file = vmm::PendingFile::create(dir / "exit.json");
  if (!exit_file.ok()) return fail(exit_file.error().message);
  controller.value()->add_event_sink([events_fd, &answer](const nlohmann::json& event) {
    if (events_fd >= 0)
      (void)base::write_all(events_fd,
                            event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    if (event["event"] == "STATE" && event["data"]["to"] == "running") answer("");
  });
  auto server = vmm::ControlServer::start(
      *controller.value(), dir / "control.sock",
      {{"name", name}, {"pid", pid}, {"config", fs::absolute(file).string()}}, kVersion);
  if (!server.ok()) return fail(server.error().message);
  std::unique_ptr<vmm::ConsoleServer> console;
  if (controller.value()->console()) {
    vmm::Controller* machine = controller.value().get();
    auto started = vmm::ConsoleServer::start(
        machine->console(), dir / "console.sock",
        [machine](uint64_t dropped, bool first) { machine->console_client_dropped(dropped, first); });
    if (!started.ok()) return fail(started.error().message);
    console = std::move(started.value());
  }
  auto stats_file = pending_stats_file(stats);
  signals.set_target(controller.value().get());
  vmm::Outcome outcome = controller.value()->run();
  signals.set_target(nullptr);
  if (stats.any()) print_stats(*controller.value(), stats, stats_file);
  if (outcome.reason == "signal" && signals.signal() != 0)
    outcome.message = std::string("stopped by signal ") + strsignal(signals.signal());
  // It never ran: the caller reports why.
  answer(outcome.message.empty() ? "the machine stopped before it ran" : outcome.message);
  console.reset();
  server.value().reset();
  controller.value().reset();  // backends go away here: the terminal is back in cooked mode
  if (!outcome.message.empty()) std::fprintf(stderr, "vmlaunch: %s\n", outcome.message.c_str());
  nlohmann::json exit = {{"status", outcome.status},
                         {"reason", outcome.reason},
                         {"message", outcome.message},
                         {"stopped_at", vmm::now_seconds()}};
  (void)exit_file.value().commit(exit.dump(2) + "\n");
  security::set_event_log_fd(-1);
  if (events_fd >= 0) ::close(events_fd);
  return outcome.status;
}

// The foreground machine without a state directory (when none can be made): nothing else sees it.
int run_bare(const std::string& file, Prepared& prepared, SignalWatcher& signals,
             const StatsOutput& stats = {}) {
  vmm::Outcome outcome;
  {
    auto controller = make_controller(file, prepared, {});
    if (!controller.ok()) {
      std::fprintf(stderr, "%s\n", controller.error().message.c_str());
      return kExitRuntimeFailure;
    }
    auto stats_file = pending_stats_file(stats);
    signals.set_target(controller.value().get());
    outcome = controller.value()->run();
    signals.set_target(nullptr);
    if (stats.any()) print_stats(*controller.value(), stats, stats_file);
  }  // backends go away here: the terminal is back in cooked mode before we print
  if (outcome.reason == "signal" && signals.signal() != 0)
    outcome.message = std::string("stopped by signal ") + strsignal(signals.signal());
  if (!outcome.message.empty()) std::fprintf(stderr, "vmlaunch: %s\n", outcome.message.c_str());
  return outcome.status;
}

// The jail (security.jail, --jail), entered before the VMM starts any thread. Returns -1 inside
// (go on: run the machine), else the status to end with: the jailed VMM's, or 1 when no jail could
// be made. `forked` runs in the parent after the fork: it lets go of what only the VMM may hold.
int enter_jail(const std::string& file, Prepared& prepared, const fs::path& dir, const std::string& name,
               const std::function<void()>& forked,
               const std::function<void(const std::string&)>& failed_inside = {}) {
  JailInputs inputs;
  inputs.graph = &prepared.checked.resolved.graph;
  inputs.accelerator = prepared.selection.name;
  inputs.base_dir = fs::absolute(file).parent_path();
  inputs.state_dir = dir;
  inputs.name = name;
  inputs.gdb = prepared.gdb;
  inputs.jit_code = uses_llvm_tier(prepared);
  if (prepared.restore) inputs.restore_dir = fs::absolute(prepared.restore_dir).string();
  auto spec = jail_spec(inputs);
  if (!spec.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", spec.error().message.c_str());
    return kExitRuntimeFailure;
  }
  auto entered = security::enter_jail(spec.value(), forked);
  if (!entered.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", entered.error().message.c_str());
    return kExitRuntimeFailure;
  }
  if (!entered.value().inside) return entered.value().status;
  if (!entered.value().error.empty()) {
    std::fprintf(stderr, "vmlaunch: %s\n", entered.value().error.c_str());
    if (failed_inside) failed_inside(entered.value().error);
    std::fflush(nullptr);
    ::_exit(kExitRuntimeFailure);
  }
  for (const std::string& missing : entered.value().not_applied)
    std::fprintf(stderr, "vmlaunch: jail: not applied: %s\n", missing.c_str());
  prepared.host_pid = entered.value().host_pid;
  prepared.jail_not_applied = entered.value().not_applied;
  return -1;
}

// The foreground `up`: the console is this terminal, and the machine also has a state directory
// (so ps, logs, inspect, console and down see it), removed again when it ends. A name taken by a
// running machine is refused when given (--name); a name derived from the file gets a suffix
// instead, so two foreground runs of one file (parallel tests) do not collide.
int run_up(const std::string& file, const std::string& given_name, bool overcommit, double grace,
           const StatsOutput& stats, const GdbFlags& gdb, const RestoreFlags& restore, bool jail) {
  // What the caller left open must not reach the VMM (the detached VMM does this after its fork).
  security::close_inherited_fds();
  Prepared prepared;
  if (int status = prepare(file, prepared, overcommit, gdb, restore); status != kExitOk) return status;
  prepared.jail = prepared.jail || jail;
  // The signal watcher is a thread: made after the jail's fork (fork keeps only the calling thread).
  auto bare = [&]() -> int {
    if (prepared.jail) {
      std::fprintf(stderr, "vmlaunch: security.jail needs the machine's state directory; not starting\n");
      return kExitRuntimeFailure;
    }
    SignalWatcher signals(grace);
    return run_bare(file, prepared, signals, stats);
  };
  std::string name = machine_name(file, given_name, prepared.checked.resolved.graph);
  if (auto valid = vmm::check_name(name); !valid.ok()) {
    if (!given_name.empty()) {
      std::fprintf(stderr, "vmlaunch: %s\n", valid.error().message.c_str());
      return kExitBadInput;
    }
    name = "machine";  // a file name no directory can be named after still runs in the foreground
  }
  auto root = vmm::state_root();
  if (!root.ok()) {
    std::fprintf(stderr,
                 "vmlaunch: warning: no state directory (%s); ps and down will not see this machine\n",
                 root.error().message.c_str());
    return bare();
  }
  std::string base = name;
  std::optional<vmm::NameLock> lock;
  for (int suffix = 2;; ++suffix) {
    auto acquired = vmm::NameLock::acquire(root.value(), name);
    if (!acquired.ok()) {
      std::fprintf(stderr, "vmlaunch: warning: %s; ps and down will not see this machine\n",
                   acquired.error().message.c_str());
      return bare();
    }
    lock.emplace(std::move(acquired.value()));
    bool explicit_name = !given_name.empty();
    if (claim_machine_dir(root.value(), name, prepared, !explicit_name)) break;
    lock.reset();
    if (explicit_name) return kExitRuntimeFailure;
    std::string next = base.substr(0, vmm::kMaxNameLength - 4) + "-" + std::to_string(suffix);
    if (suffix > 99 || !vmm::check_name(next).ok()) {
      std::fprintf(stderr, "vmlaunch: warning: no free machine name for %s; ps and down will not see it\n",
                   base.c_str());
      return bare();
    }
    name = next;
  }
  fs::path dir = root.value() / name;
  if (name != base)
    std::fprintf(stderr, "vmlaunch: %s is taken; this machine is %s\n", base.c_str(), name.c_str());
  int status = -1;
  if (prepared.jail) {
    status = enter_jail(file, prepared, dir, name, [&lock] { lock->forget_in_child(); });
    if (status == -1) {  // the VMM, inside: the parent outside cleans up after it
      SignalWatcher signals(grace);
      return run_with_state(
          file, name, prepared, dir, signals, [&lock](const std::string&) { lock.reset(); }, stats);
    }
  } else {
    SignalWatcher signals(grace);
    // The name lock is released once the run lock is held and the record written (the first event).
    status = run_with_state(
        file, name, prepared, dir, signals, [&lock](const std::string&) { lock.reset(); }, stats);
  }
  lock.reset();
  // Gone with the process. If `down` holds the name lock, it is waiting for us and removes it itself.
  if (auto again = vmm::NameLock::try_acquire(root.value(), name)) (void)vmm::remove_machine_dir(dir);
  return status;
}

// The detached VMM (the child of `up -d`): stdio on /dev/null and vmm.log, tells the parent through
// `ready_fd` ("ok" or the error) and exits with the machine.
int run_detached(const std::string& file, const std::string& name, Prepared& prepared, const fs::path& dir,
                 int ready_fd, double grace) {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int log_fd = ::open((dir / "vmm.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);  // console output goes to console.log, not twice
  }
  if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
  if (prepared.jail) {
    // Outside, this process waits for the jailed VMM; only the VMM answers `up -d` (its ready_fd).
    int status = enter_jail(
        file, prepared, dir, name, [ready_fd] { ::close(ready_fd); },
        [ready_fd](const std::string& why) { (void)base::write_all(ready_fd, why); });
    if (status != -1) return status;
  }
  SignalWatcher signals(grace);  // before any thread: SIGTERM is a stop, the outcome is recorded
  return run_with_state(file, name, prepared, dir, signals, [ready_fd](const std::string& message) {
    (void)base::write_all(ready_fd, message.empty() ? std::string("ok") : message);
    ::close(ready_fd);
  });
}

// A second `up -d` of a running name: the same effective config is fine (exit 0, says so), a changed
// one is drift (exit 1, naming the keys) unless --recreate replaces the machine. Returns -1 to go on
// (the name is free now), else the exit status.
int second_up(const fs::path& root, const std::string& name, const nlohmann::json& config, bool recreate,
              double grace, std::optional<vmm::NameLock>& lock) {
  vmm::MachineRecord record = vmm::read_record(root, name);
  if (record.state != "running" && record.state != "starting") return -1;  // claim_machine_dir decides
  nlohmann::json was = nlohmann::json::parse(read_text(root / name / "config.json"), nullptr, false);
  std::vector<std::string> drift = config_drift(was, config);
  if (!recreate) {
    if (drift.empty()) {
      std::fprintf(stderr, "vmlaunch: %s is already running with this configuration (pid %ld)\n",
                   name.c_str(), record.pid);
      std::printf("%s\n", name.c_str());
      return kExitOk;
    }
    std::string keys;
    for (const std::string& key : drift) keys += (keys.empty() ? "" : ", ") + key;
    std::fprintf(stderr,
                 "vmlaunch: %s is already running with a different configuration (changed: %s); --recreate "
                 "replaces it\n",
                 name.c_str(), keys.c_str());
    return kExitRuntimeFailure;
  }
  lock.reset();  // down takes the name lock itself
  if (!down_one(root, name, grace, false, true)) return kExitRuntimeFailure;
  auto again = vmm::NameLock::acquire(root, name);
  if (!again.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", again.error().message.c_str());
    return kExitRuntimeFailure;
  }
  lock.emplace(std::move(again.value()));
  return -1;
}

int run_up_detached(const std::string& file, const std::string& given_name, bool overcommit, double grace,
                    bool recreate, const GdbFlags& gdb, const RestoreFlags& restore, bool jail) {
  Prepared prepared;
  if (int status = prepare(file, prepared, overcommit, gdb, restore, given_name); status != kExitOk)
    return status;
  prepared.jail = prepared.jail || jail;
  std::string name = machine_name(file, given_name, prepared.checked.resolved.graph);
  if (auto valid = vmm::check_name(name); !valid.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", valid.error().message.c_str());
    return kExitBadInput;
  }
  // As written to config.json and read back: the form drift is compared in.
  nlohmann::json config =
      nlohmann::json::parse(config::to_json(prepared.checked.loaded.document).dump(), nullptr, false);
  auto readiness = readiness_of(config);
  if (!readiness.ok()) {
    std::fprintf(stderr, "%s: %s\n", file.c_str(), readiness.error().message.c_str());
    return kExitBadInput;
  }
  auto root = vmm::state_root();
  if (!root.ok()) {
    std::fprintf(stderr, "vmlaunch: state directory: %s\n", root.error().message.c_str());
    return kExitRuntimeFailure;
  }
  // Held until the machine runs or failed: of two `up -d` racing for one name, the second waits here
  // and then finds the first one running.
  std::optional<vmm::NameLock> lock;
  {
    auto acquired = vmm::NameLock::acquire(root.value(), name);
    if (!acquired.ok()) {
      std::fprintf(stderr, "vmlaunch: %s\n", acquired.error().message.c_str());
      return kExitRuntimeFailure;
    }
    lock.emplace(std::move(acquired.value()));
  }
  if (int status = second_up(root.value(), name, config, recreate, grace, lock); status >= 0) return status;
  if (!claim_machine_dir(root.value(), name, prepared, false)) return kExitRuntimeFailure;
  fs::path dir = root.value() / name;

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
    lock->forget_in_child();
    ::close(ready[0]);
    // Whatever the caller left open (a test's pipes, a shell's descriptors) must not be held for
    // the machine's whole life: `$(vmlaunch up -d ...)` and pipelines would never see EOF.
    if (ready[1] > 3) ::close_range(3, static_cast<unsigned>(ready[1]) - 1, 0);
    ::close_range(static_cast<unsigned>(ready[1]) + 1, ~0U, 0);
    ::setsid();  // no controlling terminal: closing the shell that started it does not stop it
    int status = run_detached(file, name, prepared, dir, ready[1], grace);
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
    lock.reset();  // it runs: others may look at it (down, a second up) while we wait for readiness
    if (readiness.value().any()) {
      auto ready = wait_ready(readiness.value(), dir / "console.log",
                              [&] { return vmm::read_record(root.value(), name).vmm_alive; });
      if (!ready.ok()) {
        std::fprintf(stderr, "vmlaunch: %s: %s; stopping it\n", name.c_str(), ready.error().message.c_str());
        if (auto client = vmm::ControlClient::connect(dir / "control.sock"); client.ok())
          (void)client.value().execute("stop");
        else
          ::kill(pid, SIGKILL);
        int child_status = 0;
        ::waitpid(pid, &child_status, 0);
        std::fprintf(stderr, "vmlaunch: its log stays in %s (vmlaunch logs %s)\n", dir.c_str(), name.c_str());
        return kExitRuntimeFailure;
      }
    }
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
      "helps), or with -d detached (prints its name once it runs). Either way ps, logs, console and down "
      "see it. SIGTERM presses the guest's power button and stops the machine after --stop-timeout; "
      "SIGINT or a second signal (a second or more after the first) stops it at once. Exit codes: 0 the "
      "guest powered off, 1 runtime "
      "failure, 2 invalid machine file or arguments, 10 the guest reset (lifecycle.on-reset: poweroff), "
      "11 the guest panicked (lifecycle.on-panic: poweroff), 12 stopped by the host (forced); any other "
      "status is the guest's own (a bare-metal test's HTIF status).");
  auto file = std::make_shared<std::string>();
  auto detach = std::make_shared<bool>(false);
  auto name = std::make_shared<std::string>();
  cmd->add_option("FILE", *file,
                  "Machine file (YAML, TOML or JSON); with --restore, the snapshot's own config");
  auto restore = std::make_shared<RestoreFlags>();
  cmd->add_option("--restore", restore->dir,
                  "Continue the machine saved in DIR by `vmlaunch snapshot` (its config.json is the machine "
                  "file), guest clock stepped forward. Refused with exit 2 when the snapshot is truncated or "
                  "corrupted, of another format version, architecture, CPU or device set, or when a disk "
                  "changed or a file is missing since");
  cmd->add_flag("--paused", restore->paused,
                "Start the machine paused (with --restore: right where the snapshot was); `vmlaunch resume "
                "NAME` continues it");
  cmd->add_flag("-d,--detach", *detach,
                "Run detached: return once the machine runs (and the file's readiness: is seen; else stop it "
                "and exit 1), print its name");
  cmd->add_option(
      "--name", *name,
      "Name of the machine in ps, logs, console, down (default: the file's `name`, else the file's "
      "basename; at most 48 characters). In the foreground, a default name already running gets a suffix");
  auto overcommit = std::make_shared<bool>(false);
  cmd->add_flag("--overcommit", *overcommit,
                "Start even when machine.memory is more than this host can back (available memory plus "
                "free swap)");
  auto grace = std::make_shared<double>(30);
  auto recreate = std::make_shared<bool>(false);
  cmd->add_flag("--recreate", *recreate,
                "With -d: a machine of this name already running is powered off (as down) and started "
                "anew from FILE; without it, the same configuration exits 0 and a changed one exits 1 "
                "naming the changed keys");
  cmd->add_option("--stop-timeout", *grace,
                  "Seconds SIGTERM waits for the guest to power off after pressing its power button "
                  "before stopping the machine (default 30; SIGINT or a second SIGTERM stops at once)")
      ->check(CLI::NonNegativeNumber);
  auto stats_spec = std::make_shared<std::string>();
  cmd->add_flag("--stats{text}", *stats_spec,
                "At exit, print the accelerator's counters on stderr (jit: regions compiled, compile time "
                "p50/p99/total, code cache size, share of guest instructions run in compiled code, region "
                "exits by reason); --stats=json:FILE writes the same numbers to FILE as JSON instead")
      ->check(CLI::Validator(
          [](std::string& spec) -> std::string {
            if (spec.empty() || spec == "text" || (spec.rfind("json:", 0) == 0 && spec.size() > 5)) return {};
            return "--stats takes no value, or json:FILE (got \"" + spec + "\")";
          },
          "[json:FILE]"));
  auto gdb = std::make_shared<GdbFlags>();
  cmd->add_option("--gdb", gdb->address,
                  "Run a gdb stub listening on tcp:HOST:PORT or unix:PATH (overrides the file's debug.gdb); "
                  "then `gdb-multiarch vmlinux -ex 'target remote HOST:PORT'` (riscv64 on jit)");
  cmd->add_flag("--gdb-wait", gdb->wait,
                "With a gdb stub: hold the machine at reset, before its first instruction, until gdb "
                "continues it (as the file's debug.wait: true)");
  auto jail = std::make_shared<bool>(false);
  cmd->add_flag("--jail", *jail,
                "Run the VMM jailed (as the file's security.jail: true): new pid, mount, ipc and uts "
                "namespaces, a root holding only the machine's files and device nodes, cgroup v2 limits "
                "where the host has them. Needs root");
  auto stats = std::make_shared<StatsOutput>();
  cmd->callback(
      [&action, file, detach, name, overcommit, grace, recreate, stats, stats_spec, gdb, restore, jail] {
        if (!restore->dir.empty()) {
          if (!file->empty()) {
            action = [] {
              std::fprintf(stderr, "vmlaunch: up: give FILE or --restore DIR, not both\n");
              return kExitBadInput;
            };
            return;
          }
          *file = (fs::path(restore->dir) / snapshot::kConfigFile).string();
        } else if (file->empty()) {
          action = [] {
            std::fprintf(stderr, "vmlaunch: up: FILE is required (or --restore DIR)\n");
            return kExitBadInput;
          };
          return;
        }
        stats->text = *stats_spec == "text";
        if (stats_spec->rfind("json:", 0) == 0) stats->json_path = stats_spec->substr(5);
        if (*detach) {
          action = [file, name, overcommit, grace, recreate, gdb, restore, jail] {
            return run_up_detached(*file, *name, *overcommit, *grace, *recreate, *gdb, *restore, *jail);
          };
        } else {
          action = [file, name, overcommit, grace, stats, gdb, restore, jail] {
            return run_up(*file, *name, *overcommit, *grace, *stats, *gdb, *restore, *jail);
          };
        }
      });
}

}  // namespace launcher
