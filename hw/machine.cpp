#include "hw/machine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>
#include <variant>

#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/device_model.h"
#include "security/thread_role.h"

VML_CONSUMES("devices[].driver");  // the machine builders build each device by its driver

namespace hw {

void PowerController::request(RunOutcome outcome) {
  std::function<void()> on_stop;
  {
    std::lock_guard guard(m_lock);
    if (m_stopping.load(std::memory_order_relaxed)) return;  // the first request wins
    m_outcome = std::move(outcome);
    m_stopping.store(true, std::memory_order_release);
    on_stop = m_on_stop;
  }
  m_changed.notify_all();
  if (on_stop) on_stop();
}

RunOutcome PowerController::wait() {
  std::unique_lock guard(m_lock);
  m_changed.wait(guard, [this] { return m_stopping.load(std::memory_order_relaxed); });
  return m_outcome;
}

void PowerController::set_on_stop(std::function<void()> on_stop) {
  bool already = false;
  {
    std::lock_guard guard(m_lock);
    m_on_stop = on_stop;
    already = m_stopping.load(std::memory_order_relaxed);
  }
  if (already && on_stop) on_stop();
}

RunOutcome run_vcpus(std::vector<std::unique_ptr<accel::Vcpu>>& vcpus, PowerController& power,
                     const DebugExitHook& on_debug, StatsRegistry* stats) {
  if (vcpus.empty()) return {RunOutcome::Kind::Error, 1, "the machine has no vCPUs"};
  const size_t count = vcpus.size();
  std::vector<std::atomic<bool>> done(count);
  std::atomic<size_t> halted{0};
  std::mutex exit_lock;  // guards nothing but the wake-up below
  std::condition_variable exited;
  auto kick_running = [&] {
    for (size_t i = 0; i < count; ++i)
      if (!done[i].load()) vcpus[i]->kick();
  };
  power.set_on_stop(kick_running);

  std::vector<std::thread> threads;
  threads.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      security::ThreadRole role(security::Role::Vcpu);
      accel::Vcpu& vcpu = *vcpus[i];
      VcpuCounters* counters = stats ? &stats->vcpu(static_cast<unsigned>(i)) : nullptr;
      t_vcpu_counters = counters;
      while (!power.stopping()) {
        auto result = vcpu.run();
        if (counters) {
          counters->runs.fetch_add(1, std::memory_order_relaxed);
          if (result.ok() && std::holds_alternative<accel::ExitInterrupted>(result.value()))
            counters->interrupted.fetch_add(1, std::memory_order_relaxed);
        }
        if (!result.ok()) {
          power.fail("vCPU " + std::to_string(i) + ": " + result.error().message);
          break;
        }
        bool stop = std::visit(
            [&](const auto& exit) {
              using T = std::decay_t<decltype(exit)>;
              if constexpr (std::is_same_v<T, accel::ExitShutdown>) {
                power.power_off(exit.exit_code);
                return true;
              } else if constexpr (std::is_same_v<T, accel::ExitReset>) {
                power.reset();
                return true;
              } else if constexpr (std::is_same_v<T, accel::ExitHalt>) {
                // Nothing can wake this vCPU; the machine is dead only when all are.
                if (halted.fetch_add(1) + 1 == count)
                  power.fail("every vCPU halted with interrupts disabled");
                return true;
              } else if constexpr (std::is_same_v<T, accel::ExitDebug>) {
                if (on_debug) on_debug(static_cast<unsigned>(i), exit);
                return false;  // runs again (parked, if the debugger paused the machine)
              } else {
                return false;  // interrupted: run again unless stopping
              }
            },
            result.value());
        if (stop) break;
      }
      {
        std::lock_guard guard(exit_lock);
        done[i].store(true);
      }
      exited.notify_all();
    });
  }

  RunOutcome outcome = power.wait();
  // A kick can race with a vCPU entering run(); keep kicking until every thread has left. Waiting
  // on the threads' own exit notification (not a fixed sleep) keeps poweroff-to-exit immediate.
  auto all_done = [&] {
    for (size_t i = 0; i < count; ++i)
      if (!done[i].load()) return false;
    return true;
  };
  std::unique_lock guard(exit_lock);
  while (!all_done()) {
    guard.unlock();
    kick_running();
    guard.lock();
    exited.wait_for(guard, std::chrono::milliseconds(2), all_done);
  }
  guard.unlock();
  for (auto& thread : threads) thread.join();
  power.set_on_stop(nullptr);
  return outcome;
}

base::Error device_error(const graph::Device& device, const std::string& message) {
  return base::Error("device " + device.id + " (" + device.driver + "): " + message);
}

namespace {

std::map<std::string, MachineFactory, std::less<>>& registry() {
  static std::map<std::string, MachineFactory, std::less<>> machines;
  return machines;
}

}  // namespace

bool register_machine(std::string type, MachineFactory factory) {
  auto [it, inserted] = registry().emplace(std::move(type), std::move(factory));
  if (!inserted) {
    std::fprintf(stderr, "vmlaunch: internal error: machine type %s registered twice\n", it->first.c_str());
    std::abort();
  }
  return true;
}

std::vector<std::string> machine_types() {
  std::vector<std::string> types;
  for (const auto& [type, factory] : registry()) types.push_back(type);
  return types;
}

base::ErrorOr<std::unique_ptr<Machine>> build_machine_of_type(std::string_view type,
                                                              const graph::Graph& graph,
                                                              MachineContext& context) {
  auto it = registry().find(type);
  if (it == registry().end()) {
    std::string known;
    for (const auto& name : machine_types()) known += (known.empty() ? "" : ", ") + name;
    return base::fail(
        base::Error("machine type \"" + std::string(type) +
                    "\" is not built into this vmlaunch (known: " + (known.empty() ? "none" : known) + ")"));
  }
  return it->second(graph, context);
}

base::ErrorOr<std::unique_ptr<Machine>> build_machine(const graph::Graph& graph, MachineContext& context) {
  return build_machine_of_type(graph.machine.arch + "/" + graph.machine.type, graph, context);
}

namespace {

std::map<std::string, DeviceModelFactory, std::less<>>& device_models() {
  static std::map<std::string, DeviceModelFactory, std::less<>> models;
  return models;
}

}  // namespace

bool register_device_model(std::string driver, DeviceModelFactory factory) {
  auto [it, inserted] = device_models().emplace(std::move(driver), std::move(factory));
  if (!inserted) {
    std::fprintf(stderr, "vmlaunch: internal error: device model %s registered twice\n", it->first.c_str());
    std::abort();
  }
  return true;
}

const DeviceModelFactory* find_device_model(std::string_view driver) {
  auto it = device_models().find(driver);
  return it == device_models().end() ? nullptr : &it->second;
}

}  // namespace hw
