// A machine built from a graph on a RecordingAccel, for machine-builder tests: the accelerator
// claims the graph's architecture, `Backends` is the test's hw::BackendSource. When building fails,
// `machine` is null and `error` says why.
#pragma once

#include <memory>
#include <string>

#include "graph/graph.h"
#include "hw/machine.h"
#include "hw/testing/recording_accel.h"

namespace hw::testing {

template <typename Backends>
struct BuiltMachine {
  RecordingAccel accel;
  Backends backends;
  std::unique_ptr<hw::Machine> machine;
  std::string error;

  explicit BuiltMachine(const graph::Graph& graph) : accel(graph.machine.arch) {
    hw::MachineContext context;
    context.accelerator = &accel;
    context.backends = &backends;
    auto made = hw::build_machine(graph, context);
    if (made.ok())
      machine = std::move(made.value());
    else
      error = made.error().message;
  }
};

}  // namespace hw::testing
