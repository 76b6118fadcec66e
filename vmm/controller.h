// The one object that owns a running machine: its accelerator, its backends, the machine rebuilt on
// every guest reset, and the state everyone else asks about. The foreground `vmlaunch up`, the
// detached VMM (`up -d`) and the control socket are thin clients: they call run() or stop() and read
// state(), stats() and events. All methods but run() are thread-safe and never block on the guest.
//
//   created --run()--> running --guest poweroff / stop() / error--> stopped
//                      running <--pause()/resume()--> paused (vCPUs parked, guest clock stopped)
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "accel/accelerator.h"
#include "base/result.h"
#include "debug/gdbstub/server.h"
#include "graph/graph.h"
#include "hw/machine.h"
#include "snapshot/snapshot.h"

namespace vmm {

class ConsoleLog;
class DebugLink;
class TeeCharBackend;

enum class State { Created, Running, Paused, Stopping, Stopped };
const char* state_name(State state);

// Exit statuses of a machine beyond 0 (guest powered off), 1 (VMM error) and 2 (bad input). A status
// the guest reports itself (HTIF, an exit device) is passed through as it is; `reason` in exit.json
// and `ps --all --json` tells those apart from these.
inline constexpr int kExitGuestReset = 10;  // the guest reset and lifecycle.on-reset is poweroff
inline constexpr int kExitGuestPanic = 11;  // the guest panicked and lifecycle.on-panic is poweroff
inline constexpr int kExitForcedStop =
    12;  // the host stopped the machine (down --force, a grace period ran out)

// How run() ended: what `up` exits with and says.
struct Outcome {
  int status = 0;       // 0 ok / the guest's own status, 1 runtime failure, or one of the above
  std::string reason;   // "poweroff", "quit", "stop", "signal", "reset", "panic", "error"
  std::string message;  // for "error" and "signal": what to tell the user
};

// What the file's `lifecycle:` section says to do when the guest resets or panics.
enum class OnReset { Reboot, Poweroff };
enum class OnPanic { Poweroff, Pause, Reboot };

// A timestamped asynchronous event: {"event": NAME, "data": {...}, "timestamp": seconds}.
using EventSink = std::function<void(const nlohmann::json& event)>;

struct ControllerOptions {
  graph::Graph graph;
  std::unique_ptr<accel::Accelerator> accelerator;
  std::string accelerator_name;
  std::filesystem::path base_dir;  // relative backend paths resolve here (the config's directory)
  // If set, every chardev's output is also appended here, capped at console_log_cap bytes (one
  // rotation to PATH.1), whatever the console backend is.
  std::filesystem::path console_log;
  uint64_t console_log_cap = 4 << 20;
  OnReset on_reset = OnReset::Reboot;
  OnPanic on_panic = OnPanic::Poweroff;
  // The config's `debug:` section: a gdb stub listening here (none when unset), and whether the
  // machine waits at reset, before its first instruction, until gdb continues it.
  std::optional<gdbstub::ListenAddress> gdb;
  bool gdb_wait = false;
  // Called once, on run()'s thread, after the first machine is built and before its vCPUs start:
  // everything that needs opening (images, /dev/kvm, sockets, the LLVM tier) is open, so this is
  // where the launcher drops privileges and arms seccomp. An error stops the machine (exit 1).
  std::function<base::ErrorOr<void>()> after_first_build;
  // Snapshots (snapshot/): the effective config written into a snapshot, this vmlaunch's version.
  nlohmann::json effective_config;
  std::string vmlaunch_version;
  // `up --restore`: the first machine built is filled from this snapshot before any vCPU runs (a
  // later guest reset boots afresh). A restore that fails ends run() with status 2 before the
  // machine ever ran. `start_paused` leaves that machine paused (resume continues it).
  std::shared_ptr<const snapshot::Opened> restore;
  std::string restore_dir;  // for messages
  bool start_paused = false;
};

class Controller {
 public:
  // Creates the graph's backends; nothing runs yet. Errors name the backend.
  static base::ErrorOr<std::unique_ptr<Controller>> create(ControllerOptions options);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Builds and runs the machine in the calling thread (vCPUs on their own threads) until it stops,
  // rebuilding it on every guest reset. Call once.
  Outcome run();
  // Stops the machine as soon as possible (the forced stop); a stop before run() is remembered.
  // `reason` is what the outcome and the stopped event say ("stop", "signal").
  void stop(const std::string& reason = "stop");
  // Freezes a running machine (vCPUs parked with their state, the guest clock stopped) and lets it
  // continue. Errors say why (not running, the machine type or accelerator cannot pause). A stop of
  // a paused machine resumes it first.
  base::ErrorOr<void> pause();
  base::ErrorOr<void> resume();
  // Presses the guest's power button (a paused machine is resumed first, or it could not react).
  // Errors when the machine is not running or has no power button. After a press, a guest reset ends
  // the run as a power-off (status 0): some guests answer the button (x86_64 microvm's Ctrl-Alt-Del)
  // with a reboot.
  base::ErrorOr<void> powerdown();
  // Writes a snapshot of the running (or paused) machine to `dir` (snapshot/snapshot.h) on a thread
  // of role snapshot: vCPUs parked, devices quiesced, files written, then the machine continues as it
  // was, or with `stop` stops (exit status 0, reason "snapshot") without running again. Returns
  // what was written (sizes, seconds). One snapshot at a time.
  base::ErrorOr<nlohmann::json> snapshot(const std::filesystem::path& dir, bool stop);
  // The graceful stop a supervisor's SIGTERM asks for: the power button, then stop(reason) if the
  // machine still runs after `grace_seconds`; at once when there is no power button.
  void shutdown(double grace_seconds, const std::string& reason);

  State state() const { return m_state.load(); }
  const graph::Graph& graph() const { return m_options.graph; }
  const std::string& accelerator_name() const { return m_options.accelerator_name; }
  const accel::Accelerator* accelerator() const { return m_options.accelerator.get(); }
  double started_at() const { return m_started_at.load(); }
  // The console's chardev (the first device's), through which a host client reads and types; null
  // when no device has a chardev.
  std::shared_ptr<TeeCharBackend> console() const { return m_console; }
  // What is counted: uptime, guest resets, console bytes (logged, dropped by the cap), and of the
  // current build per vCPU (device accesses, run returns) and per device (what its model counts).
  nlohmann::json stats() const;
  // The console socket's client could not keep up and `bytes` of guest output were dropped for it
  // (the console log still has them); `first` opens an episode, which the CONSOLE_OVERFLOW event
  // announces once. Any thread.
  void console_client_dropped(uint64_t bytes, bool first);
  // Events are delivered on the thread that causes them, one at a time; a sink must not call back
  // into the controller. Returns an id for remove_event_sink, after which the sink is never called
  // again (a client that goes away before the machine does must not be called into).
  size_t add_event_sink(EventSink sink);
  void remove_event_sink(size_t id);

 private:
  explicit Controller(ControllerOptions options);
  void set_state(State state);
  void emit(const std::string& name, nlohmann::json data);
  bool on_guest_panic();  // vCPU thread

  ControllerOptions m_options;
  class Backends;
  std::unique_ptr<Backends> m_backends;
  std::shared_ptr<ConsoleLog> m_console_log;
  std::shared_ptr<TeeCharBackend> m_console;

  std::unique_ptr<DebugLink> m_debug;             // with options.gdb
  std::unique_ptr<gdbstub::Server> m_gdb_server;  // from the first machine on, until run() ends

  std::atomic<State> m_state{State::Created};
  std::atomic<double> m_started_at{0};  // read by control clients while run() sets it
  std::atomic<uint64_t> m_resets{0};
  std::atomic<uint64_t> m_panics{0};
  std::atomic<bool> m_powerdown_asked{false};  // powerdown() pressed the button: a reset ends the run
  std::atomic<uint64_t> m_console_client_dropped{0};
  std::atomic<uint64_t> m_console_overflows{0};

  mutable std::mutex m_lock;  // guards m_machine, m_stats and m_stop_reason
  hw::Machine* m_machine = nullptr;
  std::shared_ptr<hw::StatsRegistry> m_stats;  // the current (or last) build's counters
  std::string m_stop_reason;                   // non-empty once stop() was asked
  // Helpers that must not run on the thread that asks for them (pause after a panic, the grace
  // period of shutdown()); joined when run() ends.
  std::mutex m_helpers_lock;
  std::condition_variable m_helpers_wake;
  bool m_ending = false;
  std::vector<std::thread> m_helpers;
  // The snapshot writer: a thread of role snapshot started with run() (before the seccomp filters
  // go on, so no other role needs to be able to start it), serving one request at a time.
  struct SnapshotRequest {
    std::filesystem::path dir;
    bool stop = false;
    base::ErrorOr<nlohmann::json> result = base::fail(base::Error("not done"));
    bool done = false;
  };
  void snapshot_loop();
  base::ErrorOr<nlohmann::json> write_snapshot(const std::filesystem::path& dir, bool stop);
  std::mutex m_snapshot_lock;  // one snapshot at a time
  std::mutex m_writer_lock;    // guards the fields below
  std::condition_variable m_writer_wake;
  SnapshotRequest* m_writer_request = nullptr;
  bool m_writer_end = false;
  std::thread m_writer;
  std::mutex m_sinks_lock;  // held while sinks run, so removal waits for a delivery in progress
  std::vector<std::pair<size_t, EventSink>> m_sinks;
  size_t m_next_sink = 1;
};

}  // namespace vmm
