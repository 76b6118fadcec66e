// The one place the launcher asks the host which accelerator it can run: `up` to create it, `plan`
// for a note on stderr (its stdout stays the same on every host), `accel` for the table.
#pragma once

#include <string>

#include "accel/registry.h"
#include "graph/graph.h"

namespace launcher {

// The first of the graph's candidates that this host can run (and has an implementation linked in).
accel::Selection select_on_host(const graph::Graph& graph);

// One line for `plan`: whether this host can run the file's preferred accelerator, and what `up`
// would do here.
std::string host_note(const graph::Graph& graph);

}  // namespace launcher
