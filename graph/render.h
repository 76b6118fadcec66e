// Printing a resolved graph for people (`plan`), pipelines (`--format json`) and Graphviz
// (`--format dot`, renders with `dot -Tsvg`). All three are deterministic: graph order, no host data
// except what the Graph holds (the accelerator choice).
#pragma once

#include <string>

#include "graph/graph.h"

namespace graph {

// A tree in the spirit of QEMU's `info qtree`: buses, devices with addresses (inferred ones marked),
// backends, then the memory map and IRQ lines.
std::string render_text(const Graph& graph);
std::string render_json(const Graph& graph);
std::string render_dot(const Graph& graph);

std::string format_size(uint64_t bytes);  // "512 MiB", "4 KiB", "100 bytes"

}  // namespace graph
