// The one document model YAML, TOML and JSON files load into. Every node keeps the file:line:col it
// was written at, so every later stage (schema, semantic checks, device graph) can point at the
// user's text. Maps keep their keys in file order (deterministic output, stable merges).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/location.h"

namespace config {

class Node {
 public:
  enum class Kind { Null, Bool, Int, Float, String, Map, List };

  struct Entry;

  Node() = default;
  // Constructors by kind. Defined below Entry: a Node holds a vector of Entry, which must be
  // complete wherever a Node is built or destroyed (clang in C++20 mode insists).
  static Node null(Location at = {});
  static Node boolean(bool v, Location at = {});
  static Node integer(int64_t v, Location at = {});
  static Node floating(double v, Location at = {});
  static Node string(std::string v, Location at = {});
  static Node map(Location at = {});
  static Node list(Location at = {});

  Kind kind() const { return m_kind; }
  const Location& location() const { return m_location; }
  void set_location(Location at) { m_location = std::move(at); }

  bool is_null() const { return m_kind == Kind::Null; }
  bool is_bool() const { return m_kind == Kind::Bool; }
  bool is_int() const { return m_kind == Kind::Int; }
  bool is_float() const { return m_kind == Kind::Float; }
  bool is_number() const { return m_kind == Kind::Int || m_kind == Kind::Float; }
  bool is_string() const { return m_kind == Kind::String; }
  bool is_map() const { return m_kind == Kind::Map; }
  bool is_list() const { return m_kind == Kind::List; }

  // Scalar accessors: only meaningful for the matching kind (callers check kind first).
  bool as_bool() const { return m_bool; }
  int64_t as_int() const { return m_int; }
  double as_float() const { return m_kind == Kind::Int ? static_cast<double>(m_int) : m_float; }
  const std::string& as_string() const { return m_string; }

  // Maps.
  const std::vector<Entry>& entries() const { return m_entries; }
  std::vector<Entry>& entries() { return m_entries; }
  const Node* find(std::string_view key) const;
  Node* find(std::string_view key);
  const Entry* find_entry(std::string_view key) const;
  // Sets key to value: replaces in place (keeping order) or appends.
  void set(std::string key, Node value, Location key_location = {});
  bool erase(std::string_view key);

  // Lists.
  const std::vector<Node>& items() const { return m_items; }
  std::vector<Node>& items() { return m_items; }
  void push_back(Node value);

  size_t size() const;

  // Structural equality: kinds, values, keys and order; locations are ignored (the same machine in
  // YAML and TOML compares equal).
  bool operator==(const Node& other) const;

  static std::string_view kind_name(Kind kind);

 private:
  Node(Kind kind, Location at);

  Kind m_kind = Kind::Null;
  Location m_location;
  bool m_bool = false;
  int64_t m_int = 0;
  double m_float = 0;
  std::string m_string;
  std::vector<Entry> m_entries;
  std::vector<Node> m_items;
};

struct Node::Entry {
  std::string key;
  Location key_location;
  Node value;
};

inline Node::Node(Kind kind, Location at) : m_kind(kind), m_location(std::move(at)) {}

inline Node Node::null(Location at) {
  return Node(Kind::Null, std::move(at));
}
inline Node Node::boolean(bool v, Location at) {
  Node n(Kind::Bool, std::move(at));
  n.m_bool = v;
  return n;
}
inline Node Node::integer(int64_t v, Location at) {
  Node n(Kind::Int, std::move(at));
  n.m_int = v;
  return n;
}
inline Node Node::floating(double v, Location at) {
  Node n(Kind::Float, std::move(at));
  n.m_float = v;
  return n;
}
inline Node Node::string(std::string v, Location at) {
  Node n(Kind::String, std::move(at));
  n.m_string = std::move(v);
  return n;
}
inline Node Node::map(Location at) {
  return Node(Kind::Map, std::move(at));
}
inline Node Node::list(Location at) {
  return Node(Kind::List, std::move(at));
}

inline void Node::push_back(Node value) {
  m_items.push_back(std::move(value));
}
inline size_t Node::size() const {
  return m_kind == Kind::Map ? m_entries.size() : m_items.size();
}

}  // namespace config
