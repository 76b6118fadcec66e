#include "config/size.h"

#include <cctype>
#include <string>

#include "config/schema.h"

namespace config {

std::optional<uint64_t> parse_size(std::string_view text) {
  size_t i = 0;
  uint64_t value = 0;
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return std::nullopt;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
    ++i;
  }
  if (i < text.size() && text[i] == ' ') ++i;
  std::string unit;
  for (; i < text.size(); ++i) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  const char* prefixes = "KMGT";
  for (int p = 0; p < 4 && shift < 0; ++p) {
    std::string letter(1, prefixes[p]);
    if (unit == letter || unit == letter + "B" || unit == letter + "IB") shift = 10 * (p + 1);
  }
  if (shift < 0) return std::nullopt;
  if (shift > 0 && value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

std::optional<uint64_t> size_value(const Node& node) {
  if (node.is_int())
    return node.as_int() > 0 ? std::optional<uint64_t>(static_cast<uint64_t>(node.as_int())) : std::nullopt;
  if (!node.is_string()) return std::nullopt;
  auto value = parse_size(node.as_string());
  if (!value || *value == 0) return std::nullopt;
  return value;
}

Diagnostics check_sizes(const Node& document) {
  Diagnostics out;
  walk_schema(
      document, schema_json(),
      [&](const Node& node, const nlohmann::json& fragment, const std::string& path) {
        const nlohmann::json* marked = schema_keyword(fragment, "x-vmlaunch-size");
        if (!marked || !node.is_string()) return;  // integers: the schema checks type and minimum
        auto value = parse_size(node.as_string());
        if (!value)
          out.push_back(Diagnostic::error(node.location(), path, "invalid size \"" + node.as_string() + "\"",
                                          "write bytes, or a number with K, M, G or T: 512MiB, 2G"));
        else if (*value == 0)
          out.push_back(Diagnostic::error(node.location(), path, "size must be greater than zero"));
      });
  return out;
}

}  // namespace config
