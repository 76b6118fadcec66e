#include "config/schema.h"

// valijson aborts on a bad schema unless told to throw; a module catches at its edge instead.
#define VALIJSON_USE_EXCEPTIONS 1

#include <algorithm>
#include <cstdio>
#include <memory>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "config/did_you_mean.h"
#include "config/machine.h"  // sort_diagnostics

namespace config {

// Defined in the schema_text.cpp genrule output (config/BUILD).
extern const char kSchemaText[];

namespace {

using nlohmann::json;

const json* root_of(const json* fragment);

}  // namespace

std::string_view schema_text() {
  return kSchemaText;
}

const json& schema_json() {
  static const json parsed = json::parse(kSchemaText);
  return parsed;
}

json to_json(const Node& node) {
  switch (node.kind()) {
    case Node::Kind::Null:
      return nullptr;
    case Node::Kind::Bool:
      return node.as_bool();
    case Node::Kind::Int:
      return node.as_int();
    case Node::Kind::Float:
      return node.as_float();
    case Node::Kind::String:
      return node.as_string();
    case Node::Kind::List: {
      json list = json::array();
      for (const Node& item : node.items()) list.push_back(to_json(item));
      return list;
    }
    case Node::Kind::Map: {
      json map = json::object();
      for (const Node::Entry& entry : node.entries()) map[entry.key] = to_json(entry.value);
      return map;
    }
  }
  return nullptr;
}

// $ref resolution needs the document the fragment belongs to. All fragments handed around here
// come from one schema per walk, so the walk records its root; the common case is schema_json().
namespace {
thread_local const json* g_schema_root = nullptr;

const json* root_of(const json*) {
  return g_schema_root ? g_schema_root : &schema_json();
}

struct RootScope {
  const json* saved;
  explicit RootScope(const json& root) : saved(g_schema_root) { g_schema_root = &root; }
  ~RootScope() { g_schema_root = saved; }
};

const json* resolve_pointer(const json& root, const std::string& ref) {
  if (ref.empty() || ref[0] != '#') return nullptr;
  try {
    json::json_pointer pointer(ref.substr(1));
    if (!root.contains(pointer)) return nullptr;
    return &root.at(pointer);
  } catch (const json::exception&) {
    return nullptr;
  }
}
}  // namespace

const json* schema_resolve(const json& fragment) {
  const json* current = &fragment;
  // A ref cycle in the schema would otherwise loop forever; real chains are one or two long.
  for (int hops = 0; hops < 16; ++hops) {
    if (!current->is_object()) return current;
    auto ref = current->find("$ref");
    if (ref == current->end() || !ref->is_string()) return current;
    current = resolve_pointer(*root_of(current), ref->get<std::string>());
    if (current == nullptr) return nullptr;
  }
  return nullptr;
}

const json* schema_keyword(const json& fragment, std::string_view keyword) {
  const json* current = &fragment;
  for (int hops = 0; hops < 16 && current && current->is_object(); ++hops) {
    auto found = current->find(std::string(keyword));
    if (found != current->end()) return &*found;
    auto ref = current->find("$ref");
    if (ref == current->end() || !ref->is_string()) return nullptr;
    current = resolve_pointer(*root_of(current), ref->get<std::string>());
  }
  return nullptr;
}

const json* schema_property(const json& fragment, std::string_view key) {
  const json* resolved = schema_resolve(fragment);
  if (!resolved || !resolved->is_object()) return nullptr;
  auto properties = resolved->find("properties");
  if (properties != resolved->end() && properties->is_object()) {
    auto found = properties->find(std::string(key));
    if (found != properties->end()) return &*found;
  }
  auto additional = resolved->find("additionalProperties");
  if (additional != resolved->end() && additional->is_object()) return &*additional;
  return nullptr;
}

const json* schema_items(const json& fragment) {
  const json* resolved = schema_resolve(fragment);
  if (!resolved || !resolved->is_object()) return nullptr;
  auto items = resolved->find("items");
  if (items != resolved->end() && items->is_object()) return &*items;
  return nullptr;
}

std::vector<std::string> schema_property_names(const json& fragment) {
  std::vector<std::string> names;
  const json* resolved = schema_resolve(fragment);
  if (!resolved || !resolved->is_object()) return names;
  auto properties = resolved->find("properties");
  if (properties == resolved->end() || !properties->is_object()) return names;
  for (auto it = properties->begin(); it != properties->end(); ++it) names.push_back(it.key());
  return names;
}

std::string join_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return parent + "." + std::string(key);
}

std::string join_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

namespace {

template <typename N, typename Visitor>
void walk(N& node, const json& fragment, const std::string& path, const Visitor& visit, int depth) {
  if (depth > 128) return;
  visit(node, fragment, path);
  if (node.is_map()) {
    for (auto& entry : node.entries()) {
      if (const json* child = schema_property(fragment, entry.key))
        walk(entry.value, *child, join_path(path, entry.key), visit, depth + 1);
    }
  } else if (node.is_list()) {
    if (const json* items = schema_items(fragment)) {
      for (size_t i = 0; i < node.items().size(); ++i)
        walk(node.items()[i], *items, join_path(path, i), visit, depth + 1);
    }
  }
}

}  // namespace

void walk_schema(Node& document, const json& schema, const SchemaVisitor& visit) {
  RootScope scope(schema);
  walk(document, schema, std::string(), visit, 0);
}

void walk_schema(const Node& document, const json& schema, const ConstSchemaVisitor& visit) {
  RootScope scope(schema);
  walk(document, schema, std::string(), visit, 0);
}

namespace {

std::string describe_value(const Node& node) {
  switch (node.kind()) {
    case Node::Kind::String:
      // Quote long values in part: the location already says where the whole value is.
      if (node.as_string().size() > 60) {
        size_t cut = 57;
        while (cut > 0 && (static_cast<unsigned char>(node.as_string()[cut]) & 0xC0) == 0x80) --cut;
        return "\"" + node.as_string().substr(0, cut) + "...\"";
      }
      return "\"" + node.as_string() + "\"";
    case Node::Kind::Int:
      return std::to_string(node.as_int());
    case Node::Kind::Bool:
      return node.as_bool() ? "true" : "false";
    case Node::Kind::Null:
      return "null";
    case Node::Kind::Float: {
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%g", node.as_float());
      return buffer;
    }
    default:
      return std::string(Node::kind_name(node.kind()));
  }
}

std::string json_scalar_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

std::string format_number(const json& value) {
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  return value.dump();
}

// The last key of a path names what a value is ("devices[2].driver" -> "driver", "accel[1]" -> "accel").
std::string noun_for(const std::string& path) {
  std::string last = path;
  size_t dot = last.rfind('.');
  if (dot != std::string::npos) last = last.substr(dot + 1);
  size_t bracket = last.find('[');
  if (bracket != std::string::npos) last = last.substr(0, bracket);
  return last.empty() ? "value" : last;
}

struct Located {
  const Node* node = nullptr;
  const json* fragment = nullptr;
  std::string path;
};

// Follows valijson's context ("<root>", "[devices]", "[2]", "[bus]") through the document and the
// schema side by side.
Located locate(const Node& document, const json& schema, const std::vector<std::string>& context) {
  Located at{&document, &schema, {}};
  for (size_t i = 1; i < context.size(); ++i) {
    const std::string& part = context[i];
    if (part.size() < 2 || part.front() != '[' || part.back() != ']') break;
    std::string key = part.substr(1, part.size() - 2);
    if (at.node->is_list()) {
      size_t index = 0;
      try {
        index = std::stoul(key);
      } catch (...) {
        break;
      }
      if (index >= at.node->items().size()) break;
      at.node = &at.node->items()[index];
      at.fragment = at.fragment ? schema_items(*at.fragment) : nullptr;
      at.path = join_path(at.path, index);
    } else if (at.node->is_map()) {
      const Node* child = at.node->find(key);
      if (!child) break;
      at.node = child;
      at.fragment = at.fragment ? schema_property(*at.fragment, key) : nullptr;
      at.path = join_path(at.path, key);
    } else {
      break;
    }
  }
  return at;
}

std::string expected_types(const json& fragment) {
  const json* type = schema_keyword(fragment, "type");
  if (!type) return {};
  if (type->is_string()) return type->get<std::string>();
  std::string text;
  if (type->is_array()) {
    for (size_t i = 0; i < type->size(); ++i) {
      if (i) text += i + 1 == type->size() ? " or " : ", ";
      text += json_scalar_text((*type)[i]);
    }
  }
  return text;
}

// Turns one valijson error into a diagnostic, or nothing for the summary errors valijson adds on
// every enclosing level ("Failed to validate item #2 ...") and for unknown keys (reported by
// check_unknown_keys with a suggestion).
std::optional<Diagnostic> translate(const Node& document, const json& schema,
                                    const valijson::ValidationResults::Error& error) {
  const std::string& text = error.description;
  if (text.rfind("Failed to validate", 0) == 0 ||
      text.rfind("Object contains a property that could not", 0) == 0)
    return std::nullopt;
  Located at = locate(document, schema, error.context);
  const Node& node = *at.node;
  const json empty = json::object();
  const json& fragment = at.fragment ? *at.fragment : empty;

  if (text.rfind("Value type not permitted", 0) == 0) {
    // YAML reads a bare `null` or `~` as no value at all: someone who wrote `driver: null` meant text.
    if (node.is_null())
      return Diagnostic::error(node.location(), at.path,
                               "expected " + expected_types(fragment) + ", got null",
                               "a bare null, ~ or nothing is YAML's empty value; write \"null\" in quotes "
                               "if you mean the word");
    return Diagnostic::error(node.location(), at.path,
                             "expected " + expected_types(fragment) + ", got " +
                                 std::string(Node::kind_name(node.kind())) +
                                 (node.is_map() || node.is_list() ? "" : " " + describe_value(node)));
  }
  if (text.rfind("Failed to match against any enum values", 0) == 0) {
    if (node.is_null()) return std::nullopt;  // the type error above says it, with the fix
    std::vector<std::string> allowed;
    if (const json* values = schema_keyword(fragment, "enum"))
      for (const json& value : *values) allowed.push_back(json_scalar_text(value));
    std::string word = node.is_string() ? node.as_string() : describe_value(node);
    // Names people type from QEMU habit (`isa-serial`, `virtio-blk`) point to ours, not a list.
    if (const json* qemu = schema_keyword(fragment, "x-vmlaunch-qemu-names"); qemu && qemu->is_object())
      if (auto ours = qemu->find(word); ours != qemu->end() && ours->is_string())
        return Diagnostic::error(
            node.location(), at.path, "unknown " + noun_for(at.path) + " " + describe_value(node),
            describe_value(node) + " is QEMU's name; vmlaunch's is \"" + ours->get<std::string>() + "\"");
    return Diagnostic::error(node.location(), at.path,
                             "unknown " + noun_for(at.path) + " " + describe_value(node),
                             suggestion_hint(word, allowed));
  }
  if (text.rfind("Missing required property '", 0) == 0) {
    std::string name = text.substr(27);
    name = name.substr(0, name.find('\''));
    std::string hint;
    const json* property = schema_property(fragment, name);
    if (const json* ref = property ? schema_keyword(*property, "x-vmlaunch-ref") : nullptr;
        ref && ref->is_string())
      hint = "name an entry of " + (ref->get<std::string>() == "passthrough"
                                        ? std::string("passthrough")
                                        : "backends." + ref->get<std::string>());
    if (const Node* driver = node.is_map() ? node.find("driver") : nullptr; driver && driver->is_string())
      return Diagnostic::error(node.location(), at.path,
                               "driver " + driver->as_string() + " needs \"" + name + "\"", hint);
    return Diagnostic::error(node.location(), at.path, "missing required key \"" + name + "\"", hint);
  }
  if (text.rfind("Failed to match regex", 0) == 0) {
    // A name or an object (accel entries): the names get the same message as an enum.
    if (const json* names = schema_keyword(fragment, "x-vmlaunch-enum"); names && names->is_array()) {
      std::vector<std::string> allowed;
      for (const json& value : *names) allowed.push_back(json_scalar_text(value));
      return Diagnostic::error(
          node.location(), at.path, "unknown " + noun_for(at.path) + " " + describe_value(node),
          suggestion_hint(node.is_string() ? node.as_string() : describe_value(node), allowed));
    }
    std::string hint;
    if (const json* words = schema_keyword(fragment, "x-vmlaunch-hint"); words && words->is_string())
      hint = "expected " + words->get<std::string>();
    else if (const json* pattern = schema_keyword(fragment, "pattern"))
      hint = "must match " + json_scalar_text(*pattern);
    return Diagnostic::error(node.location(), at.path,
                             describe_value(node) + " is not a valid " + noun_for(at.path), hint);
  }
  if (text.rfind("Expected number greater than", 0) == 0) {
    const json* minimum = schema_keyword(fragment, "minimum");
    return Diagnostic::error(node.location(), at.path,
                             describe_value(node) + " is too small" +
                                 (minimum ? " (minimum " + format_number(*minimum) + ")" : std::string()));
  }
  if (text.rfind("Expected number less than", 0) == 0) {
    const json* maximum = schema_keyword(fragment, "maximum");
    return Diagnostic::error(node.location(), at.path,
                             describe_value(node) + " is too large" +
                                 (maximum ? " (maximum " + format_number(*maximum) + ")" : std::string()));
  }
  if (text.rfind("Elements at indexes #", 0) == 0) {
    unsigned first = 0, second = 0;
    if (std::sscanf(text.c_str(), "Elements at indexes #%u and #%u", &first, &second) == 2 &&
        node.is_list() && second < node.items().size()) {
      const Node& duplicate = node.items()[second];
      return Diagnostic::error(duplicate.location(), join_path(at.path, second),
                               describe_value(duplicate) + " is listed twice",
                               "also at " + join_path(at.path, first));
    }
  }
  if (text.rfind("Array should contain no fewer than", 0) == 0)
    return Diagnostic::error(node.location(), at.path, "must not be empty");
  if (text.rfind("String should be no fewer than", 0) == 0)
    return Diagnostic::error(node.location(), at.path, "must not be empty");
  if (text.rfind("String should be no more than", 0) == 0) {
    const json* limit = schema_keyword(fragment, "maxLength");
    return Diagnostic::error(
        node.location(), at.path,
        "too long" + (limit ? " (at most " + format_number(*limit) + " characters)" : std::string()));
  }
  return Diagnostic::error(node.location(), at.path, text);
}

// Keys the schema does not know, each at the key itself, with the closest known key.
void check_unknown_keys(const Node& document, const json& schema, Diagnostics& out) {
  walk_schema(document, schema, [&](const Node& node, const json& fragment, const std::string& path) {
    if (!node.is_map()) return;
    const json* resolved = schema_resolve(fragment);
    if (!resolved || !resolved->is_object()) return;
    auto additional = resolved->find("additionalProperties");
    if (additional == resolved->end() || !additional->is_boolean() || additional->get<bool>()) return;
    std::vector<std::string> known = schema_property_names(fragment);
    for (const Node::Entry& entry : node.entries()) {
      if (std::find(known.begin(), known.end(), entry.key) != known.end()) continue;
      std::string where = path.empty() ? "at the top level" : "in " + noun_for(path);
      out.push_back(Diagnostic::error(entry.key_location, join_path(path, entry.key),
                                      "unknown key " + describe_value(Node::string(entry.key)) + " " + where,
                                      suggestion_hint(entry.key, known)));
    }
  });
}

}  // namespace

namespace {

std::unique_ptr<valijson::Schema> compile(const json& schema) {
  auto compiled = std::make_unique<valijson::Schema>();
  valijson::SchemaParser parser;
  valijson::adapters::NlohmannJsonAdapter schema_adapter(schema);
  parser.populateSchema(schema_adapter, *compiled);
  return compiled;
}

// No value in a machine file needs to be this long; longer strings are reported and cut before
// validation, because libstdc++'s std::regex (valijson "pattern") recurses once per character and
// overflows the stack on strings of a few hundred thousand characters.
constexpr size_t kMaxStringLength = 4096;

// to_json for valijson: overlong strings cut at a UTF-8 boundary, each reported once.
json validation_json(const Node& node, const std::string& path, Diagnostics& out) {
  if (node.is_string() && node.as_string().size() > kMaxStringLength) {
    size_t cut = kMaxStringLength;
    while (cut > 0 && (static_cast<unsigned char>(node.as_string()[cut]) & 0xC0) == 0x80) --cut;
    out.push_back(Diagnostic::error(node.location(), path,
                                    "value is " + std::to_string(node.as_string().size()) +
                                        " characters long (at most " + std::to_string(kMaxStringLength) +
                                        ")"));
    return node.as_string().substr(0, cut);
  }
  if (node.is_list()) {
    json list = json::array();
    for (size_t i = 0; i < node.items().size(); ++i)
      list.push_back(validation_json(node.items()[i], join_path(path, i), out));
    return list;
  }
  if (node.is_map()) {
    json map = json::object();
    for (const Node::Entry& entry : node.entries())
      map[entry.key] = validation_json(entry.value, join_path(path, entry.key), out);
    return map;
  }
  return to_json(node);
}

Diagnostics validate_with(const Node& document, const json& schema, const valijson::Schema& compiled) {
  Diagnostics out;
  json target = validation_json(document, std::string(), out);
  valijson::adapters::NlohmannJsonAdapter target_adapter(target);
  // The validator caches compiled regexes for "pattern"; keeping one per thread saves recompiling
  // them for every file.
  thread_local valijson::Validator validator;
  valijson::ValidationResults results;
  validator.validate(compiled, target_adapter, &results);
  RootScope scope(schema);
  valijson::ValidationResults::Error error;
  while (results.popError(error)) {
    if (auto diagnostic = translate(document, schema, error)) out.push_back(std::move(*diagnostic));
  }
  check_unknown_keys(document, schema, out);
  sort_diagnostics(out);
  return out;
}

}  // namespace

Diagnostics validate_schema(const Node& document, const json& schema) {
  try {
    return validate_with(document, schema, *compile(schema));
  } catch (const std::exception& e) {
    // Only a broken schema gets here (the embedded one is tested); say so instead of crashing.
    return {Diagnostic::error(document.location(), {}, std::string("internal error: schema: ") + e.what())};
  }
}

Diagnostics validate_schema(const Node& document) {
  return validate_schema(document, schema_json());
}

}  // namespace config
