// Whether this host can back a guest's RAM. Guest RAM is reserved up front but backed lazily, so
// `memory: 1T` on a 23 GB host starts, and the VMM then grows until the host swaps or the OOM
// killer picks something. `up` asks this before creating the machine; the caller decides what the
// explicit override is (a flag or a config key), this module only measures and words the refusal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace base {

struct HostMemory {
  uint64_t available = 0;  // MemAvailable: what can be allocated without swapping
  uint64_t swap_free = 0;  // SwapFree
};

// Parses /proc/meminfo text ("MemAvailable:  123 kB" lines). An error when MemAvailable is missing.
ErrorOr<HostMemory> parse_meminfo(std::string_view text);

// Reads /proc/meminfo.
ErrorOr<HostMemory> host_memory();

// Ok when `guest_bytes` fits in what the host can back (available memory plus free swap); else an
// error with both numbers, e.g. "memory: 1 TiB is more than this host can back (21.4 GiB available,
// 2.0 GiB free swap); lower it, or <override_hint>".
ErrorOr<void> check_guest_memory(uint64_t guest_bytes, const HostMemory& host,
                                 const std::string& override_hint);

// A byte count for messages: "512 MiB", "21.4 GiB", "1 TiB".
std::string human_bytes(uint64_t bytes);

}  // namespace base
