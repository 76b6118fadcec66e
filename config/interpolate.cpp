#include "config/interpolate.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "config/loader.h"  // resolve_yaml_scalar
#include "config/schema.h"

namespace config {
namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// "${NAME}" or "${NAME:-default}" and nothing else.
bool whole_reference(const std::string& text) {
  return text.size() > 3 && text.compare(0, 2, "${") == 0 && text.back() == '}' &&
         text.find('}') == text.size() - 1 && text.find('$', 1) == std::string::npos;
}

void interpolate_node(Node& node, const std::string& path, const Environment& env, Diagnostics& out,
                      std::set<std::string>& whole) {
  if (node.is_string()) {
    if (node.as_string().find('$') == std::string::npos) return;
    std::string error, hint;
    if (whole_reference(node.as_string())) whole.insert(path);
    if (auto expanded = expand_variables(node.as_string(), env, error, hint))
      node = Node::string(std::move(*expanded), node.location());
    else
      out.push_back(Diagnostic::error(node.location(), path, error, hint));
  } else if (node.is_map()) {
    for (Node::Entry& entry : node.entries())
      interpolate_node(entry.value, join_path(path, entry.key), env, out, whole);
  } else if (node.is_list()) {
    for (size_t i = 0; i < node.items().size(); ++i)
      interpolate_node(node.items()[i], join_path(path, i), env, out, whole);
  }
}

// The "}" that closes the "${" whose name starts at `from`, skipping nested "${...}" in a default
// (`${A:-${B}}`, as shells allow); npos when it is never closed.
size_t matching_brace(std::string_view text, size_t from) {
  int depth = 0;
  for (size_t j = from; j < text.size(); ++j) {
    if (text[j] == '$' && j + 1 < text.size() && text[j + 1] == '{') {
      ++depth;
      ++j;
    } else if (text[j] == '}') {
      if (depth == 0) return j;
      --depth;
    }
  }
  return std::string_view::npos;
}

// Defaults may nest, but not without end: a file is not a program.
constexpr int kMaxNesting = 8;

std::optional<std::string> expand(std::string_view text, const Environment& env, std::string& error,
                                  std::string& hint, int depth);

}  // namespace

std::optional<std::string> expand_variables(std::string_view text, const Environment& env, std::string& error,
                                            std::string& hint) {
  return expand(text, env, error, hint, 0);
}

namespace {

std::optional<std::string> expand(std::string_view text, const Environment& env, std::string& error,
                                  std::string& hint, int depth) {
  if (depth > kMaxNesting) {
    error = "defaults nested more than " + std::to_string(kMaxNesting) + " deep";
    hint = "flatten the ${NAME:-default} chain";
    return std::nullopt;
  }
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c != '$' || i + 1 >= text.size()) {
      out += c;
      ++i;
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (text[i + 1] != '{') {
      out += c;
      ++i;
      continue;
    }
    size_t close = matching_brace(text, i + 2);
    if (close == std::string_view::npos) {
      error = "unterminated \"${\"";
      hint = "close it with \"}\", or write \"$$\" for a literal \"$\"";
      return std::nullopt;
    }
    std::string_view inside = text.substr(i + 2, close - i - 2);
    std::string_view name = inside;
    std::optional<std::string_view> fallback;
    if (size_t sep = inside.find(":-"); sep != std::string_view::npos) {
      name = inside.substr(0, sep);
      fallback = inside.substr(sep + 2);
    }
    if (!valid_name(name)) {
      error = "invalid variable name \"" + std::string(name) + "\" in \"${" + std::string(inside) + "}\"";
      hint = "names are letters, digits and _; defaults are written ${NAME:-default}";
      return std::nullopt;
    }
    std::optional<std::string> value = env.get(std::string(name));
    if (value && !value->empty()) {
      out += *value;
    } else if (fallback) {
      auto expanded = expand(*fallback, env, error, hint, depth + 1);
      if (!expanded) return std::nullopt;
      out += *expanded;
    } else if (value) {
      out += *value;  // set but empty, no default: the shell gives "" too
    } else {
      error = "environment variable " + std::string(name) + " is not set";
      hint = "set it, or give a default: ${" + std::string(name) + ":-value}";
      return std::nullopt;
    }
    i = close + 1;
  }
  return out;
}

}  // namespace

Diagnostics interpolate(Node& document, const Environment& env) {
  Diagnostics out;
  std::set<std::string> whole;
  interpolate_node(document, std::string(), env, out, whole);
  if (whole.empty()) return out;
  walk_schema(document, schema_json(),
              [&](Node& node, const nlohmann::json& fragment, const std::string& path) {
                if (!node.is_string() || !whole.count(path)) return;
                const nlohmann::json* type = schema_keyword(fragment, "type");
                if (!type) return;
                auto allows = [&](const char* name) {
                  if (type->is_string()) return type->get<std::string>() == name;
                  return type->is_array() && std::find(type->begin(), type->end(), name) != type->end();
                };
                if (allows("string")) return;
                Node typed = resolve_yaml_scalar(node.as_string(), node.location());
                if ((typed.is_int() && (allows("integer") || allows("number"))) ||
                    (typed.is_float() && allows("number")) || (typed.is_bool() && allows("boolean")))
                  node = std::move(typed);
              });
  return out;
}

}  // namespace config
