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
  // Environment::fixed({{"HOME", "/home/u"}}); fixed({}) is an empty environment.
  // Exactly these variables, nothing from the process.
  static Environment fixed(std::map<std::string, std::string> variables) {
    Environment env;
    env.m_variables = std::move(variables);
    env.m_fixed = true;
    return env;
  }

  std::optional<std::string> get(const std::string& name) const;

 private:
  std::map<std::string, std::string> m_variables;
  bool m_fixed = false;
};

}  // namespace config
