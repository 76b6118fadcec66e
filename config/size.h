// Sizes in machine files: a number of bytes, or a number with a binary unit. "512MiB", "512M",
// "512MB" and "512 MiB" are all 512 * 2^20 (like QEMU, decimal-looking units are binary too).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "config/diagnostic.h"
#include "config/node.h"

namespace config {

// nullopt for anything that is not a size or does not fit in 64 bits.
std::optional<uint64_t> parse_size(std::string_view text);

// The value of a size node (integer or string); nullopt when it is neither a valid size nor positive.
std::optional<uint64_t> size_value(const Node& node);

// Every field the schema marks x-vmlaunch-size: the text must parse, and be above zero.
Diagnostics check_sizes(const Node& document);

}  // namespace config
