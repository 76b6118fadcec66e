// What `up` cannot build yet, decided from the resolved graph alone (the same on every host): device
// types and properties the catalogue knows but no machine builder honours (errors: validate refuses
// them, so nothing the file accepts is silently ignored), and vfio-pci on machines other than x86_64
// pc (it needs their MSI).
// Kept apart from resolution so placement rules stay testable with every catalogue type.
#pragma once

#include "config/diagnostic.h"
#include "graph/graph.h"

namespace graph {

inline constexpr const char* kVfioPciOnlyOnPc = "vfio-pci runs only on x86_64 pc for now";

config::Diagnostics check_buildable(const Graph& graph);

}  // namespace graph
