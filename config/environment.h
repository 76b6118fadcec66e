// Where ${VAR} interpolation looks values up. By default the process environment (getenv); tests and
// tools pass a fixed map so results do not depend on the caller's shell.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

namespace config {

class Environment {
 public:
  // The process environment.
  Environment() = default;
  // Exactly these variables, nothing from the process.
  explicit Environment(std::map<std::string, std::string> variables)
      : m_variables(std::move(variables)), m_fixed(true) {}

  std::optional<std::string> get(const std::string& name) const;

 private:
  std::map<std::string, std::string> m_variables;
  bool m_fixed = false;
};

}  // namespace config
