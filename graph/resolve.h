// Resolution: a checked config document -> the device graph (graph.h).
//
//   ResolveResult r = graph::resolve(document, {.lock = &lock});
//   if (!r.ok()) print r.diagnostics;   // every problem, each at file:line:col
//
// Rules (issue 3): explicit bus/addr are checked (bus exists, kind fits, address in range and free,
// functions > 0 need a multifunction function 0); a device without `bus` goes to the first bus of a
// kind it plugs into that has a free slot; without `addr` it gets the lowest free slot that is not
// reserved. Devices may name buses of devices declared later; cycles and unknown buses are errors.
// Addresses from a lock file are honoured before anything is inferred, so adding or removing a device
// never moves the others; lock entries that no longer fit are reported as warnings.
// Deterministic: same document and lock, same graph, on every host: nothing here probes the host
// (the accelerator is the file's preference; whether this host can run it is `up`'s question).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "config/node.h"
#include "graph/graph.h"
#include "graph/lock.h"

namespace graph {

struct ResolveOptions {
  const Lock* lock = nullptr;  // honour these addresses
};

struct ResolveResult {
  Graph graph;                      // complete when ok(); partial otherwise (for best-effort output)
  config::Diagnostics diagnostics;  // errors and warnings, in document order per phase
  bool ok() const { return !config::has_errors(diagnostics); }
};

ResolveResult resolve(const config::Node& document, const ResolveOptions& options = {});

}  // namespace graph
