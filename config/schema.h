// The machine file schema (schema/vmlaunch.schema.json, embedded at build time) and everything that
// reads it: validation with valijson, and a walker that pairs document nodes with the schema
// fragment describing them (used for unknown-key suggestions, path resolution and size checks).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "config/node.h"

namespace config {

// The schema exactly as checked in (what `vmlaunch schema` prints).
std::string_view schema_text();
// The parsed schema; parsed once, lives for the program.
const nlohmann::json& schema_json();

// The document as JSON, for valijson and for printing the resolved document.
nlohmann::json to_json(const Node& node);

// Follows "$ref": "#/definitions/..." chains (local refs only). Returns the fragment itself when it
// has no $ref; nullptr when a ref does not resolve.
const nlohmann::json* schema_resolve(const nlohmann::json& fragment);
// A keyword on the fragment or anywhere along its $ref chain (annotations such as x-vmlaunch-path
// may sit beside a $ref); nullptr when absent.
const nlohmann::json* schema_keyword(const nlohmann::json& fragment, std::string_view keyword);
// The fragment for map key `key` inside an object fragment, from "properties" or an object-valued
// "additionalProperties"; nullptr when the key is not described.
const nlohmann::json* schema_property(const nlohmann::json& fragment, std::string_view key);
// The fragment for list items; nullptr when not described.
const nlohmann::json* schema_items(const nlohmann::json& fragment);
// The property names an object fragment declares (for did-you-mean).
std::vector<std::string> schema_property_names(const nlohmann::json& fragment);

// Appends ".key" or "[index]" to a diagnostic path ("devices[2].bus").
std::string join_path(const std::string& parent, std::string_view key);
std::string join_path(const std::string& parent, size_t index);

// Calls `visit` for every node the schema describes, root first, with the (unresolved) fragment
// and the node's path. Nodes under undescribed keys are not visited.
using SchemaVisitor =
    std::function<void(Node& node, const nlohmann::json& fragment, const std::string& path)>;
void walk_schema(Node& document, const nlohmann::json& schema, const SchemaVisitor& visit);
using ConstSchemaVisitor =
    std::function<void(const Node& node, const nlohmann::json& fragment, const std::string& path)>;
void walk_schema(const Node& document, const nlohmann::json& schema, const ConstSchemaVisitor& visit);

// Every schema violation in the document, each at the node it concerns, in terms a user can act on
// (unknown keys come with a did-you-mean, unknown enum values with the closest allowed value).
Diagnostics validate_schema(const Node& document);
// Same against another schema (tests).
Diagnostics validate_schema(const Node& document, const nlohmann::json& schema);

}  // namespace config
