// Semantic checks: what JSON Schema cannot say. Each takes the merged, interpolated document, is
// safe on documents that failed the schema (wrong kinds are skipped, the schema reports them), and
// returns every problem it finds.
#pragma once

#include "config/diagnostic.h"
#include "config/node.h"
#include "config/size.h"  // check_sizes

namespace config {

// machine.type fits machine.arch; cpu.topology multiplies out to cpu.count.
Diagnostics check_machine_kind(const Node& document);

// Device ids are unique.
Diagnostics check_device_ids(const Node& document);

// Device properties that name a backend (chardev, drive, netdev, rng, passthrough/host; marked
// x-vmlaunch-ref in the schema) name one that exists and is of the right kind; exclusive backends
// serve one device; backends no device uses are warnings.
Diagnostics check_references(const Node& document);

// Backend options whose values the file alone decides: hostfwd rules parse (ports 0-65535, IPv4
// addresses), a socket has a unix path or a TCP host/port, not both.
Diagnostics check_backend_options(const Node& document);

// accel entries' options that only make sense together: lockstep needs a compiled tier.
Diagnostics check_accel_options(const Node& document);

}  // namespace config
