#include "config/checks.h"

namespace config {

Diagnostics check_accel_options(const Node& document) {
  Diagnostics out;
  const Node* accel = document.is_map() ? document.find("accel") : nullptr;
  if (!accel || !accel->is_list()) return out;
  for (size_t i = 0; i < accel->items().size(); ++i) {
    const Node& entry = accel->items()[i];
    if (!entry.is_map()) continue;
    const Node* type = entry.find("type");
    if (!type || !type->is_string() || type->as_string() != "jit") continue;
    const Node* lockstep = entry.find("lockstep");
    if (!lockstep || !lockstep->is_bool() || !lockstep->as_bool()) continue;
    // Lockstep compares compiled regions with the interpreter: with the interpreter alone (the
    // default tier) there is nothing to compare, and the machine would be refused only at start.
    const Node* tier = entry.find("tier");
    if (tier && !tier->is_string()) continue;  // the schema reports the kind
    std::string name = tier ? tier->as_string() : "interp";
    if (name != "interp") continue;
    out.push_back(Diagnostic::error(
        tier ? tier->location() : lockstep->location(),
        "accel[" + std::to_string(i) + "]." + (tier ? "tier" : "lockstep"),
        "lockstep needs a compiled tier, and the tier is interp" + std::string(tier ? "" : " (the default)"),
        "add `tier: llvm` (every block compiled) or `tier: auto`, or leave out lockstep"));
  }
  return out;
}

}  // namespace config
