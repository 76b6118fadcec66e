#include "config/paths.h"

#include <filesystem>

#include "config/schema.h"

namespace config {

std::string resolve_path(const std::string& value, const std::string& file, const Environment& env) {
  namespace fs = std::filesystem;
  if (value.empty()) return value;
  if (value == "~" || value.rfind("~/", 0) == 0) {
    if (auto home = env.get("HOME"))
      return (fs::path(*home) / value.substr(value.size() > 1 ? 2 : 1)).lexically_normal().string();
    return value;
  }
  fs::path path(value);
  if (path.is_absolute() || file.empty()) return value;
  // Absolute, once and for all: later consumers (backends, the machine builder, a detached machine
  // whose working directory is elsewhere) open exactly this path and never join a directory again.
  std::error_code ignored;
  fs::path dir = fs::absolute(fs::path(file), ignored).parent_path();
  return (dir / path).lexically_normal().string();
}

std::string path_next_to(const std::string& value, const std::string& file, const Environment& env) {
  namespace fs = std::filesystem;
  if (fs::path(file).is_absolute() || value.empty() || value[0] == '~' || fs::path(value).is_absolute() ||
      file.empty())
    return resolve_path(value, file, env);
  fs::path dir = fs::path(file).parent_path();
  return (dir / value).lexically_normal().string();
}

void resolve_paths(Node& document, const Environment& env) {
  walk_schema(document, schema_json(), [&](Node& node, const nlohmann::json& fragment, const std::string&) {
    if (!node.is_string()) return;
    const nlohmann::json* marked = schema_keyword(fragment, "x-vmlaunch-path");
    if (!marked || !marked->is_boolean() || !marked->get<bool>()) return;
    if (const nlohmann::json* names = schema_keyword(fragment, "x-vmlaunch-names");
        names && names->is_array()) {
      for (const nlohmann::json& name : *names)
        if (name.is_string() && name.get<std::string>() == node.as_string()) return;
    }
    node = Node::string(resolve_path(node.as_string(), node.location().file, env), node.location());
  });
}

}  // namespace config
