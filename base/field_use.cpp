#include "base/field_use.h"

namespace base {

namespace {
std::vector<FieldUse>& uses() {
  static std::vector<FieldUse> all;  // function-local: safe from other files' static initialisers
  return all;
}
}  // namespace

int register_field_use(FieldUse use) {
  uses().push_back(use);
  return 0;
}

const std::vector<FieldUse>& field_uses() {
  return uses();
}

}  // namespace base
