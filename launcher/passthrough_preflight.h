// The host checks of a machine's `passthrough:` entries (passthrough/preflight.h), as diagnostics at
// each entry's `host:` so `up` and `validate --host` print them like every other problem.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/diagnostic.h"
#include "graph/graph.h"
#include "passthrough/preflight.h"

namespace launcher {

// One error per problem; empty when every entry can be handed over on this host: the host's state
// (sysfs, /dev/vfio, limits) and the devices that running machines (`held`) have.
config::Diagnostics preflight_passthrough(const graph::Graph& graph, const passthrough::HostFacts& host,
                                          const std::vector<passthrough::HeldDevice>& held);

// The devices held by every machine of the state root whose VMM lives (running, starting, or stale
// with its VMM still there: it holds its devices until it ends), except the machine named `except`.
// Each VMM lists its devices in its machine.json (passthrough_record). Empty without a state root.
std::vector<passthrough::HeldDevice> devices_held_by_machines(const std::string& except = "");

// machine.json's "passthrough": [{"entry", "driver", "host"}] for the graph's vfio-pci entries.
nlohmann::json passthrough_record(const graph::Graph& graph);

}  // namespace launcher
