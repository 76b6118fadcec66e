#include "config/loader.h"

// toml++ 3.3 asserts on some malformed input (a table header such as "[~") that its parser goes on to
// reject with a proper parse error. Release builds compile the assert out (NDEBUG); make debug and
// fuzzing builds behave the same instead of aborting.
#ifndef TOML_ASSERT
#define TOML_ASSERT(expr) static_cast<void>(0)
#endif
#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>
#include <yaml-cpp/anchor.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <system_error>

#include "base/field_use.h"

VML_CONSUMES("extends");  // merged here
VML_CONSUMES("$schema");  // for editors: names the schema, runs nothing

namespace config {
namespace {

// Limits that keep hostile input (deep nesting, alias bombs, self-referencing anchors) from
// exhausting the stack or memory. Real machine files are a few levels deep and a few hundred nodes.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 100000;
// Scalar text in the expanded document: aliases copy their anchor's text, so one long anchored
// string referenced many times (1 MB x 5,000 aliases) is bounded by bytes, not by value count.
constexpr size_t kMaxTextBytes = size_t{32} << 20;

struct TooComplex {
  Location at;
  std::string message;
};

// A NUL byte would silently cut a path or name where it reaches the C library ("Image\0/x" opens
// "Image"), so no string or key may hold one.
Diagnostic nul_error(Location at) {
  return Diagnostic::error(std::move(at), {}, "a NUL byte (\\0) inside a string",
                           "names, paths and values cannot contain NUL; remove it");
}

Location make_location(const std::string& file, int line0, int column0) {
  if (line0 < 0 || column0 < 0) return Location{file, 0, 0};
  return Location{file, static_cast<uint32_t>(line0) + 1, static_cast<uint32_t>(column0) + 1};
}

bool parse_int(std::string_view text, int base, int64_t& out) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (base != 10) text.remove_prefix(2);  // 0x / 0o
  if (text.empty()) return false;
  uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), magnitude, base);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  if (negative) {
    if (magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return false;
    out = static_cast<int64_t>(0 - magnitude);
  } else {
    if (magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    out = static_cast<int64_t>(magnitude);
  }
  return true;
}

// Scanners for the YAML 1.2 core schema's number forms. Hand-written rather than std::regex: libstdc++
// compiles a regex with bracket expressions in ~0.5 M instructions (its bracket matcher builds a
// locale-aware table of all 256 characters), which made these six patterns most of the CPU time
// `vmlaunch up` spent before the guest ran.
bool all_of(std::string_view text, bool (*accept)(char)) {
  if (text.empty()) return false;
  for (char c : text)
    if (!accept(c)) return false;
  return true;
}
bool is_decimal_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_octal_digit(char c) {
  return c >= '0' && c <= '7';
}
bool is_hex_digit(char c) {
  return is_decimal_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
std::string_view without_sign(std::string_view text) {
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) text.remove_prefix(1);
  return text;
}
size_t count_digits(std::string_view text, size_t from) {
  size_t end = from;
  while (end < text.size() && is_decimal_digit(text[end])) ++end;
  return end - from;
}
// [-+]?[0-9]+
bool is_int10(std::string_view text) {
  return all_of(without_sign(text), is_decimal_digit);
}
// 0o[0-7]+ and 0x[0-9a-fA-F]+
bool is_prefixed_int(std::string_view text, std::string_view prefix, bool (*digit)(char)) {
  return text.substr(0, 2) == prefix && all_of(text.substr(2), digit);
}
// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_float(std::string_view text) {
  text = without_sign(text);
  size_t at = count_digits(text, 0);
  if (at == 0) {  // .5
    if (at >= text.size() || text[at] != '.') return false;
    size_t fraction = count_digits(text, at + 1);
    if (fraction == 0) return false;
    at += 1 + fraction;
  } else if (at < text.size() && text[at] == '.') {  // 1. or 1.5
    at += 1 + count_digits(text, at + 1);
  }
  if (at == text.size()) return true;
  if (text[at] != 'e' && text[at] != 'E') return false;
  std::string_view exponent = without_sign(text.substr(at + 1));
  return all_of(exponent, is_decimal_digit);
}
// [-+]?\.(inf|Inf|INF) and \.(nan|NaN|NAN)
bool is_inf(std::string_view text) {
  text = without_sign(text);
  return text == ".inf" || text == ".Inf" || text == ".INF";
}
bool is_nan(std::string_view text) {
  return text == ".nan" || text == ".NaN" || text == ".NAN";
}

// YAML 1.2 core schema resolution of a plain (unquoted, untagged) scalar.
Node resolve_plain(const std::string& text, Location at) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    return Node::null(at);
  if (text == "true" || text == "True" || text == "TRUE") return Node::boolean(true, at);
  if (text == "false" || text == "False" || text == "FALSE") return Node::boolean(false, at);
  // Only scalars that could be numbers go through the scanners.
  const char first = text[0];
  if (text.size() > 64 ||
      !(std::isdigit(static_cast<unsigned char>(first)) || first == '+' || first == '-' || first == '.'))
    return Node::string(text, at);
  int64_t value = 0;
  if (is_int10(text) && parse_int(text, 10, value)) return Node::integer(value, at);
  if (is_prefixed_int(text, "0o", is_octal_digit) && parse_int(text, 8, value))
    return Node::integer(value, at);
  if (is_prefixed_int(text, "0x", is_hex_digit) && parse_int(text, 16, value))
    return Node::integer(value, at);
  if (is_float(text)) return Node::floating(std::strtod(text.c_str(), nullptr), at);
  if (is_inf(text)) return Node::floating(text[0] == '-' ? -HUGE_VAL : HUGE_VAL, at);
  if (is_nan(text)) return Node::floating(std::nan(""), at);
  return Node::string(text, at);
}

// Builds Nodes straight from yaml-cpp's parser events rather than through YAML::Load: yaml-cpp 0.7
// loops forever on some inputs (a document that is just ",") while emitting events, and leaks
// self-referencing alias graphs. Here every event counts against a budget, aliases are copied with
// their size counted (alias bombs stop at kMaxNodes), and an alias to an unfinished anchor is an error.
class YamlBuilder : public YAML::EventHandler {
 public:
  YamlBuilder(const std::string& file, Diagnostics& diagnostics) : m_file(file), m_diagnostics(diagnostics) {}

  std::optional<Node> document() { return std::move(m_document); }
  Location start() const { return m_start; }

  void OnDocumentStart(const YAML::Mark& mark) override { m_start = at(mark); }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    count(mark);
    add(Node::null(at(mark)), anchor, std::string(), true);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    count(mark);
    auto found = m_anchors.find(anchor);
    if (found == m_anchors.end())
      throw TooComplex{at(mark),
                       "alias refers to an anchor that is not finished (a node cannot contain itself)"};
    m_nodes += found->second.size;
    if (m_nodes > kMaxNodes)
      throw TooComplex{
          at(mark), "document expands to more than " + std::to_string(kMaxNodes) + " values (alias bomb?)"};
    add_bytes(mark, found->second.bytes);
    add(found->second.node, 0, found->second.text, found->second.scalar);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    count(mark);
    add_bytes(mark, value.size());
    if (value.find('\0') != std::string::npos) m_diagnostics.push_back(nul_error(at(mark)));
    add(scalar(tag, value, at(mark)), anchor, value, true, 1, value.size());
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    count(mark);
    push(Node::list(at(mark)), anchor, mark);
  }
  void OnSequenceEnd() override { pop(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    count(mark);
    push(Node::map(at(mark)), anchor, mark);
  }
  void OnMapEnd() override { pop(); }

 private:
  struct Frame {
    Node node;
    YAML::anchor_t anchor = 0;
    size_t first_node = 0;    // m_nodes when the frame started (for the anchor's size)
    size_t first_byte = 0;    // m_bytes when the frame started
    bool have_key = false;    // maps: a key was read, its value comes next
    bool skip_value = false;  // the key was bad or a duplicate: drop the value
    std::string key;
    Location key_at;
  };
  struct Anchored {
    Node node;
    size_t size = 1;
    size_t bytes = 0;  // scalar text under the anchor
    std::string text;  // scalars: the text, so an aliased scalar can serve as a key
    bool scalar = false;
  };

  Location at(const YAML::Mark& mark) const { return make_location(m_file, mark.line, mark.column); }

  void count(const YAML::Mark& mark) {
    if (++m_events > 4 * kMaxNodes)
      throw TooComplex{at(mark), "the YAML parser is not making progress; simplify the file"};
    if (++m_nodes > kMaxNodes)
      throw TooComplex{at(mark), "document has more than " + std::to_string(kMaxNodes) + " values"};
  }

  void add_bytes(const YAML::Mark& mark, size_t bytes) {
    m_bytes += bytes;
    if (m_bytes > kMaxTextBytes)
      throw TooComplex{at(mark), "document expands to more than " + std::to_string(kMaxTextBytes >> 20) +
                                     " MiB of text (a long string referenced by many aliases?)"};
  }

  void push(Node node, YAML::anchor_t anchor, const YAML::Mark& mark) {
    if (m_stack.size() >= static_cast<size_t>(kMaxDepth))
      throw TooComplex{at(mark), "nesting deeper than " + std::to_string(kMaxDepth) + " levels"};
    Frame frame;
    frame.node = std::move(node);
    frame.anchor = anchor;
    frame.first_node = m_nodes - 1;
    frame.first_byte = m_bytes;
    m_stack.push_back(std::move(frame));
  }

  void pop() {
    if (m_stack.empty()) return;
    Frame frame = std::move(m_stack.back());
    m_stack.pop_back();
    add(std::move(frame.node), frame.anchor, std::string(), false, m_nodes - frame.first_node,
        m_bytes - frame.first_byte);
  }

  void add(Node value, YAML::anchor_t anchor, const std::string& text, bool scalar, size_t size = 1,
           size_t bytes = 0) {
    if (anchor) m_anchors[anchor] = Anchored{value, size, bytes, text, scalar};
    if (m_stack.empty()) {
      if (!m_document) m_document = std::move(value);
      return;
    }
    Frame& top = m_stack.back();
    if (top.node.is_list()) {
      top.node.push_back(std::move(value));
      return;
    }
    if (!top.have_key) {
      top.have_key = true;
      top.skip_value = false;
      top.key_at = value.location();
      if (!scalar || (value.is_null() && text.empty())) {
        m_diagnostics.push_back(
            Diagnostic::error(top.key_at, {}, "keys must be plain names, not lists, maps or empty"));
        top.skip_value = true;
        return;
      }
      top.key = text;
      if (const Node::Entry* previous = top.node.find_entry(top.key)) {
        m_diagnostics.push_back(Diagnostic::error(top.key_at, {}, "duplicate key \"" + top.key + "\"",
                                                  "first written at " + previous->key_location.to_string()));
        top.skip_value = true;
      }
      return;
    }
    top.have_key = false;
    if (!top.skip_value)
      top.node.entries().push_back(Node::Entry{std::move(top.key), top.key_at, std::move(value)});
  }

  Node scalar(const std::string& tag, const std::string& text, Location at) {
    // "!" is the non-specific tag of quoted and block scalars: always strings.
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return Node::string(text, at);
    if (tag == "?" || tag.empty()) return resolve_plain(text, at);
    Node resolved = resolve_plain(text, at);
    if ((tag == "tag:yaml.org,2002:int" && resolved.is_int()) ||
        (tag == "tag:yaml.org,2002:bool" && resolved.is_bool()) ||
        (tag == "tag:yaml.org,2002:null" && resolved.is_null()))
      return resolved;
    if (tag == "tag:yaml.org,2002:float" && resolved.is_number())
      return Node::floating(resolved.as_float(), at);
    m_diagnostics.push_back(Diagnostic::error(at, {},
                                              "unsupported YAML tag \"" + tag + "\" on \"" + text + "\"",
                                              "remove the tag; vmlaunch files use plain values"));
    return Node::string(text, at);
  }

  const std::string& m_file;
  Diagnostics& m_diagnostics;
  std::vector<Frame> m_stack;
  std::map<YAML::anchor_t, Anchored> m_anchors;
  std::optional<Node> m_document;
  Location m_start;
  size_t m_nodes = 0;
  size_t m_events = 0;
  size_t m_bytes = 0;
};

class TomlConverter {
 public:
  TomlConverter(const std::string& file, Diagnostics& diagnostics)
      : m_file(file), m_diagnostics(diagnostics) {}

  Location location(const toml::source_region& source) const {
    if (source.begin.line == 0) return Location{m_file, 0, 0};
    return Location{m_file, static_cast<uint32_t>(source.begin.line),
                    static_cast<uint32_t>(source.begin.column)};
  }

  Node convert(const toml::node& t, int depth) {
    Location at = location(t.source());
    if (depth > kMaxDepth)
      throw TooComplex{at, "nesting deeper than " + std::to_string(kMaxDepth) + " levels"};
    if (++m_nodes > kMaxNodes)
      throw TooComplex{at, "document has more than " + std::to_string(kMaxNodes) + " values"};
    if (const toml::table* table = t.as_table()) {
      Node map = Node::map(at);
      // toml::table is ordered by key name; the document model keeps file order, so sort entries by
      // where their keys were written.
      std::vector<std::pair<const toml::key*, const toml::node*>> entries;
      for (auto&& [key, value] : *table) entries.emplace_back(&key, &value);
      std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        return a.first->source().begin < b.first->source().begin;
      });
      for (auto& [key, value] : entries) {
        if (key->str().find('\0') != std::string_view::npos)
          m_diagnostics.push_back(nul_error(location(key->source())));
        map.entries().push_back(
            Node::Entry{std::string(key->str()), location(key->source()), convert(*value, depth + 1)});
      }
      return map;
    }
    if (const toml::array* array = t.as_array()) {
      Node list = Node::list(at);
      for (const toml::node& item : *array) list.push_back(convert(item, depth + 1));
      return list;
    }
    if (auto v = t.as_string()) {
      if (v->get().find('\0') != std::string::npos) m_diagnostics.push_back(nul_error(at));
      return Node::string(v->get(), at);
    }
    if (auto v = t.as_integer()) return Node::integer(v->get(), at);
    if (auto v = t.as_floating_point()) return Node::floating(v->get(), at);
    if (auto v = t.as_boolean()) return Node::boolean(v->get(), at);
    // Dates and times have no meaning in a machine file; keep their text so the schema can say
    // "expected ..., got string" at the right place.
    std::ostringstream text;
    if (auto v = t.as_date())
      text << v->get();
    else if (auto v = t.as_time())
      text << v->get();
    else if (auto v = t.as_date_time())
      text << v->get();
    return Node::string(text.str(), at);
  }

 private:
  const std::string& m_file;
  Diagnostics& m_diagnostics;
  size_t m_nodes = 0;
};

// Offset of the first byte that is not part of well-formed UTF-8 (no overlongs, no surrogates), or
// npos. Later stages (valijson's length checks, JSON output) assume valid UTF-8.
size_t invalid_utf8_offset(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    uint32_t min = 0, code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2, min = 0x80, code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, min = 0x800, code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, min = 0x10000, code = c & 0x07;
    } else {
      return i;
    }
    if (i + length > text.size()) return i;
    for (size_t k = 1; k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return i;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return i;
    i += length;
  }
  return std::string_view::npos;
}

Location location_of_offset(std::string_view text, size_t offset, const std::string& file) {
  uint32_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return Location{file, line, column};
}

// The line (1-based) of `text`, without its newline.
std::string_view line_of(std::string_view text, uint32_t line) {
  size_t at = 0;
  for (uint32_t i = 1; i < line && at != std::string_view::npos; ++i) {
    at = text.find('\n', at);
    if (at != std::string_view::npos) ++at;
  }
  if (at == std::string_view::npos || at > text.size()) return {};
  return text.substr(at, text.find('\n', at) - at);
}

// A TOML table header ("[machine]") followed by key = value lines: read as YAML it is a flow list
// and then a second document.
bool looks_like_toml(std::string_view text) {
  bool header = false, assignment = false;
  for (uint32_t line = 1; line <= 200; ++line) {
    std::string_view l = line_of(text, line);
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    if (l.empty() || l.front() == '#') continue;
    if (l.front() == '[' && l.back() == ']') header = true;
    size_t eq = l.find(" = ");
    if (eq != std::string_view::npos && l.find(':') > eq) assignment = true;
  }
  return header && assignment;
}

// "more than one document", said in terms of what the file holds: the hint "remove the ---" only
// when there is a "---" to remove.
Diagnostic second_document_error(std::string_view text, const Location& at) {
  std::string_view line = line_of(text, at.line);
  if (line.substr(0, 3) == "---")
    return Diagnostic::error(at, {}, "more than one YAML document in the file",
                             "a machine file holds one document; remove the \"---\"");
  if (looks_like_toml(text))
    return Diagnostic::error(at, {}, "this file is TOML, but its name makes it YAML",
                             "name it .toml, or write it as YAML");
  return Diagnostic::error(at, {}, "more than one value in the file: the first one ended before this line",
                           "a machine file holds one map; put everything in it");
}

}  // namespace

Node resolve_yaml_scalar(const std::string& text, Location at) {
  return resolve_plain(text, std::move(at));
}

ParseResult parse_yaml_string(std::string_view text, const std::string& file_name) {
  ParseResult result;
  if (size_t bad = invalid_utf8_offset(text); bad != std::string_view::npos) {
    result.diagnostics.push_back(Diagnostic::error(location_of_offset(text, bad, file_name), {},
                                                   "the file is not valid UTF-8", "save it as UTF-8"));
    return result;
  }
  try {
    std::istringstream stream{std::string(text)};
    YAML::Parser parser(stream);
    YamlBuilder builder(file_name, result.diagnostics);
    if (parser.HandleNextDocument(builder)) {
      result.node = builder.document().value_or(Node::null(builder.start()));
      YamlBuilder second(file_name, result.diagnostics);
      if (parser.HandleNextDocument(second))
        result.diagnostics.push_back(second_document_error(text, second.start()));
    } else {
      result.node = Node::null(Location{file_name, 1, 1});
    }
  } catch (const YAML::Exception& e) {
    result.node = Node();
    result.diagnostics.push_back(Diagnostic::error(make_location(file_name, e.mark.line, e.mark.column), {},
                                                   "YAML syntax error: " + e.msg));
  } catch (const TooComplex& e) {
    result.node = Node();
    result.diagnostics.push_back(Diagnostic::error(e.at, {}, e.message));
  } catch (const std::exception& e) {
    result.node = Node();
    result.diagnostics.push_back(
        Diagnostic::error(Location{file_name, 0, 0}, {}, std::string("cannot parse: ") + e.what()));
  }
  if (result.node.location().line == 0 && result.ok()) result.node.set_location(Location{file_name, 1, 1});
  return result;
}

ParseResult parse_toml_string(std::string_view text, const std::string& file_name) {
  ParseResult result;
  try {
    toml::table table = toml::parse(text, file_name);
    TomlConverter converter(file_name, result.diagnostics);
    result.node = converter.convert(table, 0);
    result.node.set_location(Location{file_name, 1, 1});
  } catch (const toml::parse_error& e) {
    result.node = Node();
    const toml::source_position& begin = e.source().begin;
    Location at{file_name, static_cast<uint32_t>(begin.line), static_cast<uint32_t>(begin.column)};
    result.diagnostics.push_back(
        Diagnostic::error(at, {}, "TOML syntax error: " + std::string(e.description())));
  } catch (const TooComplex& e) {
    result.node = Node();
    result.diagnostics.push_back(Diagnostic::error(e.at, {}, e.message));
  } catch (const std::exception& e) {
    result.node = Node();
    result.diagnostics.push_back(
        Diagnostic::error(Location{file_name, 0, 0}, {}, std::string("cannot parse: ") + e.what()));
  }
  return result;
}

ParseResult parse_string(std::string_view text, const std::string& file_name, Format format) {
  // The file name picks the language. When the body is plainly the other one (TOML in a .yaml file
  // reads as one long YAML string; YAML in a .toml file is a TOML syntax error), say that instead of
  // what the wrong parser makes of it.
  if (format == Format::Toml) {
    ParseResult toml = parse_toml_string(text, file_name);
    if (toml.ok()) return toml;
    ParseResult yaml = parse_yaml_string(text, file_name);
    if (yaml.ok() && yaml.node.is_map() && !yaml.node.entries().empty()) {
      toml.diagnostics.insert(
          toml.diagnostics.begin(),
          Diagnostic::error(Location{file_name, 1, 1}, {}, "this file is named .toml but its body is YAML",
                            "rename it to .yaml, or write it in TOML"));
      toml.diagnostics.erase(toml.diagnostics.begin() + 1, toml.diagnostics.end());
    }
    return toml;
  }
  ParseResult yaml = parse_yaml_string(text, file_name);
  if (yaml.ok() && yaml.node.is_string()) {
    ParseResult toml = parse_toml_string(text, file_name);
    if (toml.ok() && toml.node.is_map() && !toml.node.entries().empty()) {
      yaml.node = Node();
      yaml.diagnostics.push_back(Diagnostic::error(Location{file_name, 1, 1}, {},
                                                   "this file is named .yaml but its body is TOML",
                                                   "rename it to .toml, or write it in YAML"));
    }
  }
  return yaml;
}

Format format_for_path(std::string_view path) {
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".toml" ? Format::Toml : Format::Yaml;
}

namespace {

// Reads what is left of `fd` up to `limit` bytes; more than that is an error, so a file that grows
// while it is read (or a device that never ends) stops at the limit.
std::optional<std::string> read_capped(int fd, size_t limit, std::string* error) {
  std::string contents;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (error) *error = std::strerror(errno);
      return std::nullopt;
    }
    if (n == 0) return contents;
    if (contents.size() + static_cast<size_t>(n) > limit) {
      if (error) *error = "larger than " + std::to_string(limit >> 20) + " MiB, the limit for a config file";
      return std::nullopt;
    }
    contents.append(buffer, static_cast<size_t>(n));
  }
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "is a directory";
  if (S_ISFIFO(mode)) return "is a FIFO, not a regular file";
  if (S_ISCHR(mode)) return "is a character device, not a regular file";
  if (S_ISBLK(mode)) return "is a block device, not a regular file";
  if (S_ISSOCK(mode)) return "is a socket, not a regular file";
  return "is not a regular file";
}

}  // namespace

std::optional<std::string> read_file(const std::string& path, std::string* error) {
  if (path.find('\0') != std::string::npos) {
    if (error) *error = "the file name contains a NUL byte";
    return std::nullopt;
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type check below refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (error) *error = errno == EISDIR ? "is a directory" : std::strerror(errno);
    return std::nullopt;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    if (error) *error = std::strerror(errno);
    ::close(fd);
    return std::nullopt;
  }
  // Only regular files, and only small ones: /dev/zero, a FIFO or a huge sparse file would
  // otherwise grow memory without bound or block forever.
  if (!S_ISREG(st.st_mode)) {
    if (error) *error = file_kind(st.st_mode);
    ::close(fd);
    return std::nullopt;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes) {
    if (error)
      *error = "is " + std::to_string(st.st_size) + " bytes, over the " +
               std::to_string(kMaxFileBytes >> 20) + " MiB limit for a config file";
    ::close(fd);
    return std::nullopt;
  }
  std::optional<std::string> contents = read_capped(fd, kMaxFileBytes, error);
  ::close(fd);
  return contents;
}

std::optional<std::string> read_stdin(std::string* error) {
  return read_capped(STDIN_FILENO, kMaxFileBytes, error);
}

}  // namespace config
