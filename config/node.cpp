#include "config/node.h"

namespace config {

const Node::Entry* Node::find_entry(std::string_view key) const {
  for (const Entry& entry : m_entries)
    if (entry.key == key) return &entry;
  return nullptr;
}

const Node* Node::find(std::string_view key) const {
  const Entry* entry = find_entry(key);
  return entry ? &entry->value : nullptr;
}

Node* Node::find(std::string_view key) {
  for (Entry& entry : m_entries)
    if (entry.key == key) return &entry.value;
  return nullptr;
}

void Node::set(std::string key, Node value, Location key_location) {
  for (Entry& entry : m_entries) {
    if (entry.key == key) {
      entry.value = std::move(value);
      return;
    }
  }
  m_entries.push_back(Entry{std::move(key), std::move(key_location), std::move(value)});
}

bool Node::erase(std::string_view key) {
  for (auto it = m_entries.begin(); it != m_entries.end(); ++it) {
    if (it->key == key) {
      m_entries.erase(it);
      return true;
    }
  }
  return false;
}

bool Node::operator==(const Node& other) const {
  if (m_kind != other.m_kind) return false;
  switch (m_kind) {
    case Kind::Null:
      return true;
    case Kind::Bool:
      return m_bool == other.m_bool;
    case Kind::Int:
      return m_int == other.m_int;
    case Kind::Float:
      return m_float == other.m_float;
    case Kind::String:
      return m_string == other.m_string;
    case Kind::List:
      return m_items == other.m_items;
    case Kind::Map:
      if (m_entries.size() != other.m_entries.size()) return false;
      for (size_t i = 0; i < m_entries.size(); ++i) {
        if (m_entries[i].key != other.m_entries[i].key || !(m_entries[i].value == other.m_entries[i].value))
          return false;
      }
      return true;
  }
  return false;
}

std::string_view Node::kind_name(Kind kind) {
  switch (kind) {
    case Kind::Null:
      return "null";
    case Kind::Bool:
      return "boolean";
    case Kind::Int:
      return "integer";
    case Kind::Float:
      return "number";
    case Kind::String:
      return "string";
    case Kind::Map:
      return "object";
    case Kind::List:
      return "array";
  }
  return "?";
}

}  // namespace config
