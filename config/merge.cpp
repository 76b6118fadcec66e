#include "config/merge.h"

#include <algorithm>

namespace config {
namespace {

bool all_maps(const Node& list) {
  return std::all_of(list.items().begin(), list.items().end(),
                     [](const Node& item) { return item.is_map(); });
}

const Node* string_id(const Node& item) {
  const Node* id = item.find("id");
  return id && id->is_string() ? id : nullptr;
}

Node merge_lists_by_id(const Node& base, const Node& child) {
  Node merged = base;
  merged.set_location(child.location());
  for (const Node& item : child.items()) {
    const Node* id = string_id(item);
    auto same = id ? std::find_if(merged.items().begin(), merged.items().end(),
                                  [&](const Node& existing) {
                                    const Node* other = string_id(existing);
                                    return other && other->as_string() == id->as_string();
                                  })
                   : merged.items().end();
    if (same != merged.items().end())
      *same = merge_nodes(*same, item);
    else
      merged.push_back(item);
  }
  return merged;
}

}  // namespace

Node merge_nodes(const Node& base, const Node& child) {
  if (base.is_map() && child.is_map()) {
    Node merged = base;
    merged.set_location(child.location());
    for (const Node::Entry& entry : child.entries()) {
      if (Node* existing = merged.find(entry.key)) {
        *existing = merge_nodes(*existing, entry.value);
      } else {
        merged.entries().push_back(entry);
      }
    }
    // The key that ends up in the document was written by the child; point diagnostics there.
    for (Node::Entry& entry : merged.entries())
      if (const Node::Entry* written = child.find_entry(entry.key))
        entry.key_location = written->key_location;
    return merged;
  }
  if (base.is_list() && child.is_list() && all_maps(base) && all_maps(child) && !child.items().empty())
    return merge_lists_by_id(base, child);
  return child;
}

}  // namespace config
