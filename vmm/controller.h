// The one object that owns a running machine: its accelerator, its backends, the machine rebuilt on
// every guest reset, and the state everyone else asks about. The foreground `vmlaunch up`, the
// detached VMM (`up -d`) and the control socket are thin clients: they call run() or stop() and read
// state(), stats() and events. All methods but run() are thread-safe and never block on the guest.
//
//   created --run()--> running --guest poweroff / stop() / error--> stopped
//                      running <--pause()/resume()--> paused (vCPUs parked, guest clock stopped)
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "accel/accelerator.h"
#include "base/result.h"
#include "graph/graph.h"
#include "hw/machine.h"

namespace vmm {

class ConsoleLog;

enum class State { Created, Running, Paused, Stopping, Stopped };
const char* state_name(State state);

// How run() ended: what `up` exits with and says.
struct Outcome {
  int status = 0;       // 0 ok / the guest's own status, 1 runtime failure
  std::string reason;   // "poweroff", "stop", "signal", "error"
  std::string message;  // for "error" and "signal": what to tell the user
};

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

  State state() const { return m_state.load(); }
  const graph::Graph& graph() const { return m_options.graph; }
  const std::string& accelerator_name() const { return m_options.accelerator_name; }
  const accel::Accelerator* accelerator() const { return m_options.accelerator.get(); }
  double started_at() const { return m_started_at.load(); }
  // What is counted today: uptime, guest resets, console bytes (logged, dropped by the cap).
  nlohmann::json stats() const;
  // Events are delivered on the thread that causes them, one at a time; a sink must not call back
  // into the controller. Returns an id for remove_event_sink, after which the sink is never called
  // again (a client that goes away before the machine does must not be called into).
  size_t add_event_sink(EventSink sink);
  void remove_event_sink(size_t id);

 private:
  explicit Controller(ControllerOptions options);
  void set_state(State state);
  void emit(const std::string& name, nlohmann::json data);

  ControllerOptions m_options;
  class Backends;
  std::unique_ptr<Backends> m_backends;
  std::shared_ptr<ConsoleLog> m_console_log;

  std::atomic<State> m_state{State::Created};
  std::atomic<double> m_started_at{0};  // read by control clients while run() sets it
  std::atomic<uint64_t> m_resets{0};

  mutable std::mutex m_lock;  // guards m_machine and m_stop_reason
  hw::Machine* m_machine = nullptr;
  std::string m_stop_reason;  // non-empty once stop() was asked
  std::mutex m_sinks_lock;    // held while sinks run, so removal waits for a delivery in progress
  std::vector<std::pair<size_t, EventSink>> m_sinks;
  size_t m_next_sink = 1;
};

}  // namespace vmm
