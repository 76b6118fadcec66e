#include "vmm/controller.h"

#include <cstdio>
#include <map>

#include "backends/factory.h"
#include "backends/rng/random.h"
#include "security/thread_role.h"
#include "vmm/console_log.h"
#include "vmm/console_server.h"
#include "vmm/debug_link.h"
#include "vmm/state_dir.h"

namespace vmm {

const char* state_name(State state) {
  switch (state) {
    case State::Created:
      return "created";
    case State::Running:
      return "running";
    case State::Paused:
      return "paused";
    case State::Stopping:
      return "stopping";
    case State::Stopped:
      return "stopped";
  }
  return "unknown";
}

// The graph's backends, created once and shared by machine rebuilds (guest reset).
class Controller::Backends : public hw::BackendSource {
 public:
  std::map<std::string, backends::AnyBackend, std::less<>> by_name;
  std::shared_ptr<backends::CharBackend> chardev(std::string_view name) override {
    return find(name).chardev;
  }
  std::shared_ptr<backends::BlockBackend> block(std::string_view name) override { return find(name).block; }
  std::shared_ptr<backends::NetBackend> net(std::string_view name) override { return find(name).net; }
  std::shared_ptr<backends::RngBackend> rng(std::string_view name) override { return find(name).rng; }
  std::shared_ptr<backends::RngBackend> host_entropy() override { return m_host_entropy; }
  std::shared_ptr<backends::FsBackend> fs(std::string_view name) override { return find(name).fs; }
  std::shared_ptr<passthrough::VfioDevice> vfio(std::string_view name) override { return find(name).vfio; }
  std::shared_ptr<hw::usb::UsbDevice> usb_host(std::string_view name) override { return find(name).usb; }

 private:
  const backends::AnyBackend& find(std::string_view name) {
    static const backends::AnyBackend none;
    auto it = by_name.find(name);
    return it == by_name.end() ? none : it->second;
  }
  std::shared_ptr<backends::RngBackend> m_host_entropy = std::make_shared<backends::rng::GetrandomRng>();
};

Controller::Controller(ControllerOptions options)
    : m_options(std::move(options)), m_backends(std::make_unique<Backends>()) {
  if (m_options.gdb) m_debug = std::make_unique<DebugLink>(*this, m_options.gdb_wait);
}

Controller::~Controller() {
  {
    std::lock_guard guard(m_helpers_lock);
    m_ending = true;
  }
  m_helpers_wake.notify_all();
  for (std::thread& helper : m_helpers)
    if (helper.joinable()) helper.join();
}

base::ErrorOr<std::unique_ptr<Controller>> Controller::create(ControllerOptions options) {
  std::unique_ptr<Controller> controller(new Controller(std::move(options)));
  Controller* self = controller.get();
  if (!self->m_options.console_log.empty()) {
    self->m_console_log = TRY(ConsoleLog::open(self->m_options.console_log, self->m_options.console_log_cap));
  }
  backends::FactoryContext context;
  // stdio's Ctrl-a x: the user at the console asks to quit, an ordinary end (exit 0).
  context.quit = [self] { self->stop("quit"); };
  context.base_dir = self->m_options.base_dir;
  context.machine_name = self->m_options.graph.machine.name;
  // The console `vmlaunch console` attaches to: the first device's chardev (the first serial port).
  std::string console_name;
  for (const graph::Device& device : self->m_options.graph.devices)
    if (const graph::BackendRef* ref = device.backend("chardev")) {
      console_name = ref->name;
      break;
    }
  for (const graph::Backend& backend : self->m_options.graph.backends) {
    auto made = backends::create_backend(graph::backend_kind_name(backend.kind), backend.name, backend.driver,
                                         backend.options, context);
    if (!made.ok()) {
      // Option errors already start with the option's own file:line:col; say where only once.
      const std::string& message = made.error().message;
      if (message.rfind(backend.location.file + ":", 0) == 0) return base::fail(base::Error(message));
      return base::fail(
          base::Error(backend.location.to_string() + ": backend " + backend.name + ": " + message));
    }
    if (made.value().chardev && (self->m_console_log || backend.name == console_name)) {
      auto tee = std::make_shared<TeeCharBackend>(made.value().chardev, self->m_console_log);
      if (backend.name == console_name) self->m_console = tee;
      made.value().chardev = std::move(tee);
    }
    self->m_backends->by_name.emplace(backend.name, std::move(made.value()));
  }
  return controller;
}

size_t Controller::add_event_sink(EventSink sink) {
  std::lock_guard guard(m_sinks_lock);
  m_sinks.emplace_back(m_next_sink, std::move(sink));
  return m_next_sink++;
}

void Controller::remove_event_sink(size_t id) {
  std::lock_guard guard(m_sinks_lock);
  std::erase_if(m_sinks, [id](const auto& entry) { return entry.first == id; });
}

void Controller::emit(const std::string& name, nlohmann::json data) {
  nlohmann::json event = {{"event", name}, {"data", std::move(data)}, {"timestamp", now_seconds()}};
  std::lock_guard guard(m_sinks_lock);
  for (auto& [id, sink] : m_sinks) sink(event);
}

void Controller::set_state(State state) {
  State old = m_state.exchange(state);
  if (old != state) emit("STATE", {{"from", state_name(old)}, {"to", state_name(state)}});
}

void Controller::stop(const std::string& reason) {
  bool first = false;
  {
    std::lock_guard guard(m_lock);
    if (m_stop_reason.empty()) {
      m_stop_reason = reason;
      first = true;
    }
    if (m_machine) {
      // Parked vCPUs would not see the quit: let them run into it.
      if (m_state.load() == State::Paused) (void)m_machine->resume();
      m_machine->power().quit();
    }
  }
  State now = m_state.load();
  if (first && (now == State::Running || now == State::Paused)) set_state(State::Stopping);
}

base::ErrorOr<void> Controller::pause() {
  {
    std::lock_guard guard(m_lock);
    if (m_state.load() == State::Paused) return {};
    if (!m_machine || m_state.load() != State::Running || !m_stop_reason.empty())
      return base::fail(
          base::Error(std::string("the machine is ") + state_name(m_state.load()) + ", not running"));
    TRY(m_machine->pause());
  }
  set_state(State::Paused);
  return {};
}

base::ErrorOr<void> Controller::resume() {
  {
    std::lock_guard guard(m_lock);
    if (m_state.load() != State::Paused) {
      if (m_state.load() == State::Running) return {};
      return base::fail(
          base::Error(std::string("the machine is ") + state_name(m_state.load()) + ", not paused"));
    }
    TRY(m_machine->resume());
  }
  set_state(State::Running);
  return {};
}

base::ErrorOr<void> Controller::powerdown() {
  bool resumed = false;
  base::ErrorOr<void> pressed;
  {
    std::lock_guard guard(m_lock);
    State state = m_state.load();
    if (!m_machine || (state != State::Running && state != State::Paused) || !m_stop_reason.empty())
      return base::fail(base::Error(std::string("the machine is ") + state_name(state) + ", not running"));
    if (state == State::Paused) {
      TRY(m_machine->resume());
      resumed = true;
    }
    pressed = m_machine->press_power_button();
  }
  if (resumed) set_state(State::Running);
  if (!pressed.ok()) return pressed;
  m_powerdown_asked.store(true);
  emit("POWERDOWN", nlohmann::json::object());
  return {};
}

void Controller::shutdown(double grace_seconds, const std::string& reason) {
  if (!powerdown().ok()) {
    stop(reason);
    return;
  }
  std::lock_guard guard(m_helpers_lock);
  if (m_ending) return;
  m_helpers.emplace_back([this, grace_seconds, reason] {
    security::ThreadRole role(security::Role::Lifecycle);
    std::unique_lock lock(m_helpers_lock);
    bool ended = m_helpers_wake.wait_for(lock, std::chrono::duration<double>(grace_seconds),
                                         [this] { return m_ending; });
    lock.unlock();
    if (!ended) stop(reason);
  });
}

base::ErrorOr<nlohmann::json> Controller::snapshot(const std::filesystem::path& dir, bool stop_after) {
  std::unique_lock one(m_snapshot_lock, std::try_to_lock);
  if (!one.owns_lock()) return base::fail(base::Error("a snapshot of this machine is being written already"));
  SnapshotRequest request;
  request.dir = dir;
  request.stop = stop_after;
  // The debugger's int3s are not the guest's: they stay out of the saved RAM (one-byte stores, safe
  // while the guest runs; a breakpoint hit in between is missed, as if gdb had removed it).
  if (m_debug) m_debug->lift_sw_breakpoints();
  {
    std::unique_lock guard(m_writer_lock);
    if (!m_writer.joinable() || m_writer_end) {
      if (m_debug) m_debug->replant_sw_breakpoints();
      return base::fail(
          base::Error(std::string("the machine is ") + state_name(m_state.load()) + ", not running"));
    }
    m_writer_request = &request;
    m_writer_wake.notify_all();
    m_writer_wake.wait(guard, [&] { return request.done; });
  }
  if (m_debug && !(stop_after && request.result.ok())) m_debug->replant_sw_breakpoints();
  if (!request.result.ok()) return request.result;
  emit("SNAPSHOT", request.result.value());
  if (stop_after) {
    {
      // stop() resumes only a machine it sees paused; this one was parked by the writer without telling.
      std::lock_guard guard(m_lock);
      if (m_stop_reason.empty()) m_stop_reason = "snapshot";
      if (m_machine) {
        m_machine->power().quit();
        if (m_state.load() != State::Paused) (void)m_machine->resume();
      }
    }
    stop("snapshot");
  }
  return request.result;
}

void Controller::snapshot_loop() {
  std::unique_lock guard(m_writer_lock);
  for (;;) {
    m_writer_wake.wait(guard, [this] { return m_writer_end || m_writer_request; });
    if (m_writer_request) {
      SnapshotRequest* request = m_writer_request;
      m_writer_request = nullptr;
      guard.unlock();
      request->result = write_snapshot(request->dir, request->stop);
      guard.lock();
      request->done = true;
      m_writer_wake.notify_all();
      continue;
    }
    if (m_writer_end) return;
  }
}

base::ErrorOr<nlohmann::json> Controller::write_snapshot(const std::filesystem::path& dir, bool stop_after) {
  std::lock_guard guard(m_lock);
  const State state = m_state.load();
  if (!m_machine || (state != State::Running && state != State::Paused) || !m_stop_reason.empty())
    return base::fail(base::Error(std::string("the machine is ") + state_name(state) + ", not running"));
  const bool was_paused = state == State::Paused;
  if (!was_paused) TRY(m_machine->pause());
  snapshot::SaveRequest request;
  request.dir = dir;
  request.config = m_options.effective_config;
  request.base_dir = m_options.base_dir;
  request.vmlaunch_version = m_options.vmlaunch_version;
  request.accelerator = m_options.accelerator_name;
  request.graph = &m_options.graph;
  request.stop_after = stop_after;
  auto saved = snapshot::save(*m_machine, request);
  // With stop, the vCPUs stay parked and the devices quiesced: the guest never runs past the
  // snapshot (snapshot() then lets the parked vCPUs run into the quit).
  if (!was_paused && !(stop_after && saved.ok())) (void)m_machine->resume();
  if (!saved.ok()) return base::fail(saved.error());
  return nlohmann::json{{"dir", dir.string()},
                        {"ram_bytes", saved->ram.ram_bytes},
                        {"nonzero_pages", saved->ram.nonzero_pages},
                        {"ram_file_bytes", saved->ram.stored_bytes},
                        {"state_file_bytes", saved->state_bytes},
                        {"seconds", saved->seconds},
                        {"stopped", stop_after}};
}

bool Controller::on_guest_panic() {
  const char* action = m_options.on_panic == OnPanic::Pause    ? "pause"
                       : m_options.on_panic == OnPanic::Reboot ? "reboot"
                                                               : "poweroff";
  emit("GUEST_PANICKED", {{"action", action}});
  if (m_options.on_panic != OnPanic::Pause) return false;  // the machine stops; run() decides
  // Parking the vCPUs waits for this very vCPU: another thread does it.
  std::lock_guard guard(m_helpers_lock);
  if (m_ending) return false;
  m_helpers.emplace_back([this] {
    security::ThreadRole role(security::Role::Lifecycle);
    auto paused = pause();
    if (!paused.ok())
      emit("ERROR", {{"message", "pausing after the guest panic: " + paused.error().message}});
  });
  return true;
}

nlohmann::json Controller::stats() const {
  nlohmann::json stats = {
      {"state", state_name(state())},
      {"uptime_s", started_at() > 0 ? now_seconds() - started_at() : 0.0},
      {"guest_resets", m_resets.load()},
      {"guest_panics", m_panics.load()},
  };
  if (m_console_log)
    stats["console"] = {{"bytes_logged", m_console_log->written()},
                        {"log_rotations", m_console_log->rotations()}};
  std::shared_ptr<hw::StatsRegistry> registry;
  {
    std::lock_guard guard(m_lock);
    registry = m_stats;
  }
  if (registry) {
    hw::StatsRegistry::Snapshot snapshot = registry->snapshot();
    auto object = [](const hw::StatsRegistry::Counters& counters) {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [name, value] : counters) out[name] = value;
      return out;
    };
    stats["vcpus"] = nlohmann::json::array();
    for (const auto& counters : snapshot.vcpus) stats["vcpus"].push_back(object(counters));
    stats["devices"] = nlohmann::json::object();
    for (const auto& [id, counters] : snapshot.devices) stats["devices"][id] = object(counters);
  }
  {
    // Instructions per vCPU, where the accelerator counts them (jit); the machine stays while the
    // lock is held.
    std::lock_guard guard(m_lock);
    std::optional<hw::Machine::DebugAccess> access = m_machine ? m_machine->debug_access() : std::nullopt;
    if (access && stats.contains("vcpus"))
      for (size_t i = 0; i < access->vcpus.size() && i < stats["vcpus"].size(); ++i)
        if (auto retired = access->vcpus[i]->instructions_retired())
          stats["vcpus"][i]["instructions"] = *retired;
  }
  if (m_console) {
    stats["console"]["client_bytes_dropped"] = m_console_client_dropped.load();
    stats["console"]["client_overflows"] = m_console_overflows.load();
  }
  return stats;
}

void Controller::console_client_dropped(uint64_t bytes, bool first) {
  m_console_client_dropped += bytes;
  if (!first) return;
  m_console_overflows++;
  emit("CONSOLE_OVERFLOW",
       {{"client", "console"}, {"dropped_bytes", bytes}, {"backlog_bytes", kMaxConsoleBacklog}});
}

Outcome Controller::run() {
  hw::MachineContext context;
  context.accelerator = m_options.accelerator.get();
  context.backends = m_backends.get();
  context.on_guest_panic = [this] { return on_guest_panic(); };
  if (m_debug)
    context.on_debug_exit = [this](unsigned vcpu, const accel::ExitDebug& exit) {
      m_debug->on_debug_exit(vcpu, exit);
    };
  m_started_at = now_seconds();
  // Before the first build, so before confinement: the writer gets its role's filter from arming.
  {
    std::lock_guard guard(m_writer_lock);
    m_writer = std::thread([this] {
      security::ThreadRole role(security::Role::Snapshot);
      snapshot_loop();
    });
  }
  Outcome result;
  // A guest reset builds the machine afresh from the same graph and backends.
  for (;;) {
    // Fresh counters for each build (a reset starts them over, as the machine does).
    auto stats = std::make_shared<hw::StatsRegistry>();
    context.stats = stats.get();
    {
      std::lock_guard guard(m_lock);
      m_stats = stats;
    }
    auto machine = hw::build_machine(m_options.graph, context);
    if (!machine.ok()) {
      result = {1, "error", machine.error().message};
      break;
    }
    {
      std::lock_guard guard(m_lock);
      m_machine = machine.value().get();
      if (!m_stop_reason.empty()) m_machine->power().quit();
    }
    // `up --restore`: the snapshot goes into the first machine before anything of it runs. A refusal
    // here is bad input (exit 2) and nothing has started.
    if (m_options.restore) {
      auto restored = snapshot::restore(*machine.value(), *m_options.restore);
      m_options.restore.reset();
      if (!restored.ok()) {
        {
          std::lock_guard guard(m_lock);
          m_machine = nullptr;
        }
        result = {2, "error", "restoring " + m_options.restore_dir + ": " + restored.error().message};
        break;
      }
      emit("RESTORED", {{"dir", m_options.restore_dir}});
    }
    // Running means built: `up -d` returns on this, so a machine that cannot be built is an error
    // its caller sees, not a machine that dies right after "started".
    if (m_state.load() == State::Created) set_state(State::Running);
    if (m_options.start_paused) {
      m_options.start_paused = false;
      if (auto paused = pause(); !paused.ok()) {
        {
          std::lock_guard guard(m_lock);
          m_machine = nullptr;
        }
        result = {1, "error", "--paused: " + paused.error().message};
        break;
      }
    }
    if (m_debug) {
      // The stub listens from the first machine on (gdb's first question needs one to answer);
      // with wait, that machine is paused before its first instruction.
      auto attached = m_debug->machine_built(*machine.value());
      if (attached.ok() && !m_gdb_server) {
        auto server = gdbstub::Server::start(*m_options.gdb, *m_debug);
        if (server.ok()) {
          m_gdb_server = std::move(server.value());
          std::fprintf(stderr, "vmlaunch: gdb stub listening on %s%s\n",
                       m_gdb_server->address().to_string().c_str(),
                       m_options.gdb_wait ? " (the machine waits for gdb to continue it)" : "");
        } else {
          attached = base::fail(server.error());
        }
      }
      if (!attached.ok()) {
        {
          std::lock_guard guard(m_lock);
          m_machine = nullptr;
        }
        m_debug->machine_gone();
        result = {1, "error", attached.error().message};
        break;
      }
    }
    // Confinement goes on last, once everything that opens files or sockets has (the gdb stub's
    // listening socket included), and before a guest instruction runs.
    if (m_options.after_first_build) {
      auto confined = m_options.after_first_build();
      m_options.after_first_build = nullptr;
      if (!confined.ok()) {
        {
          std::lock_guard guard(m_lock);
          m_machine = nullptr;
        }
        if (m_debug) m_debug->machine_gone();
        result = {1, "error", confined.error().message};
        break;
      }
    }
    hw::RunOutcome outcome = machine.value()->run();
    if (m_debug) m_debug->machine_gone();
    std::string stop_reason;
    {
      std::lock_guard guard(m_lock);
      m_machine = nullptr;
      stop_reason = m_stop_reason;
    }
    machine.value().reset();
    if (outcome.kind == hw::RunOutcome::Kind::Reset && stop_reason.empty() && m_powerdown_asked.load()) {
      // The host asked the guest to power off and it reset instead: what a guest does with
      // Ctrl-Alt-Del (x86_64 microvm's power button) unless told otherwise. Firecracker ends the VM
      // on a guest reset for the same reason; here it is the guest's answer to the request.
      m_resets.fetch_add(1);
      emit("RESET", {{"action", "poweroff"}, {"after_powerdown", true}});
      result = {0, "poweroff", {}};
      break;
    }
    if (outcome.kind == hw::RunOutcome::Kind::Reset && stop_reason.empty()) {
      m_resets.fetch_add(1);
      bool reboot = m_options.on_reset == OnReset::Reboot;
      emit("RESET", {{"action", reboot ? "reboot" : "poweroff"}});
      if (reboot) continue;
      result = {kExitGuestReset, "reset", "the guest reset (lifecycle.on-reset: poweroff)"};
      break;
    }
    if (outcome.kind == hw::RunOutcome::Kind::Panic && stop_reason.empty()) {
      m_panics.fetch_add(1);
      if (m_options.on_panic == OnPanic::Reboot) continue;
      result = {kExitGuestPanic, "panic", "the guest panicked (lifecycle.on-panic: poweroff)"};
      break;
    }
    switch (outcome.kind) {
      case hw::RunOutcome::Kind::PowerOff:
        result = {outcome.exit_code < 0 || outcome.exit_code > 255 ? 1 : outcome.exit_code, "poweroff", {}};
        break;
      case hw::RunOutcome::Kind::Reset:
      case hw::RunOutcome::Kind::Panic:
      case hw::RunOutcome::Kind::Quit: {
        // Ctrl-a x at the console is the user's own ordinary end; a stop from the host is forced.
        std::string reason = stop_reason.empty() ? "quit" : stop_reason;
        // A snapshot with --stop ends the machine on purpose: also an ordinary end.
        result = {reason == "quit" || reason == "snapshot" ? 0 : kExitForcedStop, reason, {}};
        break;
      }
      case hw::RunOutcome::Kind::Error:
        result = {1, "error", outcome.message};
        break;
    }
    break;
  }
  {
    std::lock_guard guard(m_writer_lock);
    m_writer_end = true;
  }
  m_writer_wake.notify_all();
  m_writer.join();  // a snapshot in progress finishes first (the machine is gone: it fails fast)
  if (m_gdb_server) m_gdb_server->set_exit_status(result.status);  // gdb hears "exited with code N"
  m_gdb_server.reset();  // its thread may be calling into m_debug: stop it first
  {
    std::lock_guard guard(m_helpers_lock);
    m_ending = true;
  }
  m_helpers_wake.notify_all();
  for (std::thread& helper : m_helpers)
    if (helper.joinable()) helper.join();
  set_state(State::Stopped);
  emit("STOPPED", {{"reason", result.reason}, {"status", result.status}, {"message", result.message}});
  return result;
}

}  // namespace vmm
