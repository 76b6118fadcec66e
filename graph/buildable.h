// What `up` cannot build yet, decided from the resolved graph alone (the same on every host): device
// types and properties the catalogue knows but no machine builder honours (errors: validate refuses
// them, so nothing the file accepts is silently ignored), and passthrough entries (a warning: this
// build cannot attach host devices, and `up` refuses such a machine).
// Kept apart from resolution so placement rules stay testable with every catalogue type.
#pragma once

#include "config/diagnostic.h"
#include "graph/graph.h"

namespace graph {

inline constexpr const char* kNoPassthrough = "this build of vmlaunch cannot attach host devices yet";

config::Diagnostics check_buildable(const Graph& graph);

}  // namespace graph
