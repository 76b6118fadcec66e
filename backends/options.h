// Typed, checked access to a backend's options map (config::Node), shared by the factories.
// Every getter records the key as used; finish() then reports keys nobody asked for, so a typo in
// the config is an error naming the place instead of a silently ignored option.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "base/result.h"
#include "config/node.h"

namespace backends {

class Options {
 public:
  // `what` prefixes every error: "backend 'disk0' (block qcow2)".
  Options(const config::Node& node, std::string what) : m_node(node), m_what(std::move(what)) {}

  base::ErrorOr<std::optional<std::string>> string(std::string_view key);
  base::ErrorOr<std::optional<bool>> boolean(std::string_view key);
  base::ErrorOr<std::optional<int64_t>> integer(std::string_view key, int64_t min, int64_t max);
  // For list-valued options (hostfwd rules): each item must be a string.
  base::ErrorOr<std::vector<std::string>> string_list(std::string_view key);
  base::ErrorOr<std::string> required_string(std::string_view key);

  // Fails on the first key that no getter asked for.
  base::ErrorOr<void> finish() const;

  // "machine.yaml:12:5: backend 'disk0' (block qcow2): option 'path': message".
  base::Error error(std::string_view key, const std::string& message) const;
  const std::string& what() const { return m_what; }

 private:
  const config::Node* lookup(std::string_view key);

  const config::Node& m_node;
  std::string m_what;
  std::set<std::string, std::less<>> m_used;
};

}  // namespace backends
