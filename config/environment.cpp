#include "config/environment.h"

#include <cstdlib>

namespace config {

std::optional<std::string> Environment::get(const std::string& name) const {
  if (m_fixed) {
    auto it = m_variables.find(name);
    if (it == m_variables.end()) return std::nullopt;
    return it->second;
  }
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace config
