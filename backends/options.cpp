#include "backends/options.h"

#include "config/diagnostic.h"

namespace backends {

base::Error Options::error(std::string_view key, const std::string& message) const {
  const config::Node* value = m_node.is_map() ? m_node.find(key) : nullptr;
  std::string where = (value ? value->location() : m_node.location()).to_string();
  std::string text = where.empty() ? "" : where + ": ";
  text += m_what;
  if (!key.empty()) text += ": option '" + std::string(key) + "'";
  // Messages quote paths and host names from the config: ESC or NUL in them must print as text.
  return base::Error(config::escape_control(text + ": " + message));
}

const config::Node* Options::lookup(std::string_view key) {
  m_used.insert(std::string(key));
  if (!m_node.is_map()) return nullptr;
  const config::Node* value = m_node.find(key);
  return value && !value->is_null() ? value : nullptr;
}

base::ErrorOr<std::optional<std::string>> Options::string(std::string_view key) {
  const config::Node* value = lookup(key);
  if (!value) return std::optional<std::string>();
  if (!value->is_string())
    return base::fail(
        error(key, "expected a string, got " + std::string(config::Node::kind_name(value->kind()))));
  return std::optional<std::string>(value->as_string());
}

base::ErrorOr<std::optional<bool>> Options::boolean(std::string_view key) {
  const config::Node* value = lookup(key);
  if (!value) return std::optional<bool>();
  if (!value->is_bool())
    return base::fail(
        error(key, "expected true or false, got " + std::string(config::Node::kind_name(value->kind()))));
  return std::optional<bool>(value->as_bool());
}

base::ErrorOr<std::optional<int64_t>> Options::integer(std::string_view key, int64_t min, int64_t max) {
  const config::Node* value = lookup(key);
  if (!value) return std::optional<int64_t>();
  if (!value->is_int())
    return base::fail(
        error(key, "expected an integer, got " + std::string(config::Node::kind_name(value->kind()))));
  if (value->as_int() < min || value->as_int() > max)
    return base::fail(error(key, std::to_string(value->as_int()) + " is out of range [" +
                                     std::to_string(min) + ", " + std::to_string(max) + "]"));
  return std::optional<int64_t>(value->as_int());
}

base::ErrorOr<std::vector<std::string>> Options::string_list(std::string_view key) {
  const config::Node* value = lookup(key);
  std::vector<std::string> out;
  if (!value) return out;
  if (value->is_string()) {
    out.push_back(value->as_string());
    return out;
  }
  if (!value->is_list()) return base::fail(error(key, "expected a list of strings"));
  for (const config::Node& item : value->items()) {
    if (!item.is_string()) return base::fail(error(key, "expected a list of strings"));
    out.push_back(item.as_string());
  }
  return out;
}

base::ErrorOr<std::string> Options::required_string(std::string_view key) {
  auto value = TRY(string(key));
  if (!value) return base::fail(error(key, "missing (this driver needs it)"));
  return *value;
}

base::ErrorOr<void> Options::finish() const {
  if (!m_node.is_map()) {
    if (m_node.is_null()) return {};
    return base::fail(error("", "options must be a map"));
  }
  for (const config::Node::Entry& entry : m_node.entries()) {
    if (m_used.count(entry.key)) continue;
    std::string known;
    for (const std::string& key : m_used) known += (known.empty() ? "" : ", ") + key;
    std::string where = entry.key_location.to_string();
    return base::fail(base::Error((where.empty() ? "" : where + ": ") + m_what + ": unknown option '" +
                                  entry.key + "' (known: " + (known.empty() ? "none" : known) + ")"));
  }
  return {};
}

}  // namespace backends
