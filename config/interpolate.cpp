#include "config/interpolate.h"

#include <cctype>

#include "config/schema.h"

namespace config {
namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

void interpolate_node(Node& node, const std::string& path, const Environment& env, Diagnostics& out) {
  if (node.is_string()) {
    if (node.as_string().find('$') == std::string::npos) return;
    std::string error, hint;
    if (auto expanded = expand_variables(node.as_string(), env, error, hint))
      node = Node::string(std::move(*expanded), node.location());
    else
      out.push_back(Diagnostic::error(node.location(), path, error, hint));
  } else if (node.is_map()) {
    for (Node::Entry& entry : node.entries())
      interpolate_node(entry.value, join_path(path, entry.key), env, out);
  } else if (node.is_list()) {
    for (size_t i = 0; i < node.items().size(); ++i)
      interpolate_node(node.items()[i], join_path(path, i), env, out);
  }
}

}  // namespace

std::optional<std::string> expand_variables(std::string_view text, const Environment& env, std::string& error,
                                            std::string& hint) {
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
    size_t close = text.find('}', i + 2);
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
      out += *fallback;
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

Diagnostics interpolate(Node& document, const Environment& env) {
  Diagnostics out;
  interpolate_node(document, std::string(), env, out);
  return out;
}

}  // namespace config
