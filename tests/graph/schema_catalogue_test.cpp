// The schema (config's single source of truth for keys) and the device catalogue (hw's source of
// truth for device types) must agree: same driver names, and every device key the schema accepts
// means something to at least one device type, and vice versa.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "hw/catalogue/catalogue.h"
#include "tests/skip.h"

namespace cat = hw::catalogue;

namespace {

constexpr const char* kSchemaPath = "schema/vmlaunch.schema.json";

bool load_schema(nlohmann::json& schema) {
  std::ifstream in(kSchemaPath);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  schema = nlohmann::json::parse(text.str());
  return true;
}

}  // namespace

TEST_CASE("the schema's device driver enum lists exactly the catalogue's device types") {
  nlohmann::json schema;
  if (!load_schema(schema)) VML_SKIP("schema/vmlaunch.schema.json is not in the runfiles");
  std::set<std::string> in_schema;
  for (const auto& name : schema["definitions"]["device_driver"]["enum"])
    in_schema.insert(name.get<std::string>());
  std::set<std::string> in_catalogue;
  for (const std::string& name : cat::device_type_names()) in_catalogue.insert(name);
  CHECK(in_schema == in_catalogue);
}

TEST_CASE("every device key in the schema means something to some device type, and back") {
  nlohmann::json schema;
  if (!load_schema(schema)) VML_SKIP("schema/vmlaunch.schema.json is not in the runfiles");
  std::set<std::string> schema_keys;
  for (const auto& [key, value] : schema["definitions"]["device"]["properties"].items())
    schema_keys.insert(key);

  std::set<std::string> catalogue_keys = {"driver", "id", "bus", "addr"};
  for (const cat::DeviceType& t : cat::device_types()) {
    for (const cat::PropertySpec& p : t.properties) catalogue_keys.insert(p.name);
    for (const cat::BackendSpec& b : t.backends) {
      catalogue_keys.insert(b.property);
      for (const std::string& alias : b.aliases) catalogue_keys.insert(alias);
    }
  }
  for (const std::string& key : schema_keys)
    CHECK_MESSAGE(catalogue_keys.count(key), "schema-only key: " << key);
  for (const std::string& key : catalogue_keys)
    CHECK_MESSAGE(schema_keys.count(key), "catalogue-only key: " << key);
}

TEST_CASE("the schema's machine types and accelerators match the catalogue and the registry's names") {
  nlohmann::json schema;
  if (!load_schema(schema)) VML_SKIP("schema/vmlaunch.schema.json is not in the runfiles");
  std::set<std::string> types;
  for (const auto& t : schema["definitions"]["machine"]["properties"]["type"]["enum"])
    types.insert(t.get<std::string>());
  std::set<std::string> arches;
  for (const auto& a : schema["definitions"]["machine"]["properties"]["arch"]["enum"])
    arches.insert(a.get<std::string>());
  std::set<std::string> catalogue_types, catalogue_arches;
  for (const cat::MachineType& m : cat::machine_types()) {
    catalogue_types.insert(m.name);
    catalogue_arches.insert(m.arch);
  }
  CHECK(types == catalogue_types);
  CHECK(arches == catalogue_arches);
}
