// Deep merge for `extends`: the base document first, the file that extends it on top.
#pragma once

#include "config/node.h"

namespace config {

// Maps merge key by key (base order kept, new keys appended); lists whose items are all maps merge
// by their "id" (a child item with a known id merges into that item, others are appended); any other
// value in `child` replaces the one in `base`. Locations come from whichever side wrote the value.
Node merge_nodes(const Node& base, const Node& child);

}  // namespace config
