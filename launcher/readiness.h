// What `up -d` waits for before it returns, from the file's `readiness:` section: a console line
// matching a regular expression, a host TCP port accepting connections (a forwarded guest service),
// or both; within `timeout` seconds. And how a second `up -d` tells a changed config from the same.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "base/result.h"

namespace launcher {

struct Readiness {
  std::string console;  // ECMAScript regex, searched in each console line (and the unfinished last one)
  std::optional<std::regex> console_regex;
  int tcp = 0;  // host port on 127.0.0.1; 0 = none
  double timeout = 300;
  bool any() const { return !console.empty() || tcp != 0; }
  std::string describe() const;  // "console /login:/ and tcp 127.0.0.1:2222"
};

// From the effective config; an invalid regular expression is an error (bad input).
base::ErrorOr<Readiness> readiness_of(const nlohmann::json& config);

// Waits for every condition of `readiness`, reading `console_log` from its start. `running` says
// whether the machine still runs (a machine that stops is never ready). The error says which
// condition was not met, or that the machine stopped.
base::ErrorOr<void> wait_ready(const Readiness& readiness, const std::filesystem::path& console_log,
                               const std::function<bool()>& running);

// The keys where two effective configs differ ("machine.memory", "devices[1].netdev", "lifecycle"),
// at most `limit` of them.
std::vector<std::string> config_drift(const nlohmann::json& was, const nlohmann::json& now,
                                      size_t limit = 20);

}  // namespace launcher
