// The host checks of a machine's `passthrough:` entries (passthrough/preflight.h), as diagnostics at
// each entry's `host:` so `up` and `validate --host` print them like every other problem.
#pragma once

#include "config/diagnostic.h"
#include "graph/graph.h"
#include "passthrough/preflight.h"

namespace launcher {

// One error per problem; empty when every entry can be handed over on this host.
config::Diagnostics preflight_passthrough(const graph::Graph& graph, const passthrough::HostFacts& host);

}  // namespace launcher
