#include "config/schema.h"

#include <doctest/doctest.h>

#include "config/test_util.h"

using namespace config;
using config::testing::dump;
using config::testing::find_message;
using config::testing::yaml;

namespace {
const char* kValid =
    "name: m\nmachine: {arch: riscv64, type: virt, memory: 512MiB}\n"
    "backends: {chardev: {con0: {driver: stdio}}}\n"
    "devices:\n  - {driver: ns16550, id: serial0, chardev: con0}\n";
}

TEST_CASE("schema: the embedded text is the draft-07 schema and parses") {
  CHECK(schema_text().find("\"$schema\": \"http://json-schema.org/draft-07/schema#\"") !=
        std::string_view::npos);
  CHECK(schema_json().is_object());
  CHECK(schema_json()["definitions"]["device_driver"]["enum"].size() >= 15);
}

TEST_CASE("schema: a valid machine has no diagnostics") {
  Diagnostics diagnostics = validate_schema(yaml(kValid));
  CHECK_MESSAGE(diagnostics.empty(), dump(diagnostics));
}

TEST_CASE("schema: unknown keys at their key, with did-you-mean from the schema's properties") {
  Diagnostics diagnostics = validate_schema(
      yaml("name: m\nmachine: {arch: riscv64, type: virt, memroy: 1G, memory: 1G}\nbackend: {}\n", "m.yaml"));
  REQUIRE(diagnostics.size() == 2);
  const Diagnostic* memroy = find_message(diagnostics, "memroy");
  REQUIRE(memroy);
  CHECK(memroy->to_string() ==
        "m.yaml:2:38: machine.memroy: unknown key \"memroy\" in machine (did you mean \"memory\"?)");
  const Diagnostic* backend = find_message(diagnostics, "backend\"");
  REQUIRE(backend);
  CHECK(backend->path == "backend");
  CHECK(backend->hint == "did you mean \"backends\"?");
}

TEST_CASE("schema: unknown driver names the closest known driver") {
  Diagnostics diagnostics = validate_schema(yaml(
      "machine: {arch: riscv64, type: virt, memory: 1G}\ndevices:\n  - {driver: virtio-blk-pcie, drive: d}\n",
      "m.yaml"));
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].to_string() ==
        "m.yaml:3:14: devices[0].driver: unknown driver \"virtio-blk-pcie\" (did you mean "
        "\"virtio-blk-pci\"?)");
}

TEST_CASE("schema: QEMU's device names point to vmlaunch's") {
  const std::vector<std::pair<std::string, std::string>> names = {
      {"isa-serial", "ns16550"},        {"pci-serial", "ns16550"},
      {"virtio-blk", "virtio-blk-pci"}, {"virtio-net", "virtio-net-pci"},
      {"virtio-rng", "virtio-rng-pci"}, {"virtio-rng-device", "virtio-rng-mmio"}};
  for (const auto& [qemu, ours] : names) {
    Diagnostics diagnostics = validate_schema(
        yaml("machine: {arch: riscv64, type: virt, memory: 1G}\ndevices:\n  - {driver: " + qemu + "}\n",
             "m.yaml"));
    REQUIRE(diagnostics.size() == 1);
    CHECK(diagnostics[0].hint == "\"" + qemu + "\" is QEMU's name; vmlaunch's is \"" + ours + "\"");
  }
}

TEST_CASE("schema: type errors say what was expected and what was found") {
  Diagnostics diagnostics = validate_schema(
      yaml("machine: {arch: riscv64, type: virt, memory: true}\ncpu: {count: two}\n", "m.yaml"));
  REQUIRE(diagnostics.size() == 2);
  CHECK(diagnostics[0].to_string() ==
        "m.yaml:1:46: machine.memory: expected integer or string, got boolean true");
  CHECK(diagnostics[1].to_string() == "m.yaml:2:14: cpu.count: expected integer, got string \"two\"");
}

TEST_CASE("schema: missing keys point at the map that lacks them") {
  Diagnostics diagnostics = validate_schema(
      yaml("machine: {arch: riscv64, type: virt, memory: 1G}\ndevices:\n  - {driver: virtio-net-pci}\n",
           "m.yaml"));
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].to_string() ==
        "m.yaml:3:5: devices[0]: driver virtio-net-pci needs \"netdev\" (name an entry of backends.net)");
  Diagnostics top = validate_schema(yaml("name: m\n", "n.yaml"));
  REQUIRE(top.size() == 1);
  CHECK(top[0].to_string() == "n.yaml:1:1: missing required key \"machine\"");
}

TEST_CASE("schema: patterns, ranges and uniqueness in words") {
  Diagnostics diagnostics =
      validate_schema(yaml("machine: {arch: riscv64, type: virt, memory: 1G}\naccel: [jit, jit]\ndevices:\n"
                           "  - {driver: pci-bridge, id: 9br, addr: 32}\n",
                           "m.yaml"));
  CHECK(dump(diagnostics) ==
        "m.yaml:2:14: accel[1]: \"jit\" is listed twice (also at accel[0])\n"
        "m.yaml:4:30: devices[0].id: \"9br\" is not a valid id (expected letters, digits, '.', '_' and '-', "
        "starting "
        "with a letter)\n"
        "m.yaml:4:41: devices[0].addr: 32 is too large (maximum 31)\n");
}

TEST_CASE("schema: addr takes a slot number or \"slot.function\"") {
  auto with_addr = [](const std::string& addr) {
    return validate_schema(
        yaml("machine: {arch: x86_64, type: pc, memory: 1G}\ndevices:\n"
             "  - {driver: pci-bridge, id: br, addr: " +
             addr + "}\n"));
  };
  CHECK(with_addr("3").empty());
  CHECK(with_addr("\"1f.2\"").empty());
  CHECK(with_addr("\"1f\"").empty());
  CHECK(with_addr("\"1f.9\"").size() == 1);
  CHECK(with_addr("-1").size() == 1);
}

TEST_CASE("schema: to_json keeps every kind") {
  nlohmann::json j = to_json(yaml("a: 1\nb: 1.5\nc: true\nd: ~\ne: s\nf: [1, {g: h}]\n"));
  CHECK(j == nlohmann::json::parse(R"({"a":1,"b":1.5,"c":true,"d":null,"e":"s","f":[1,{"g":"h"}]})"));
}

TEST_CASE("schema: the walker pairs nodes with their fragments through $ref and additionalProperties") {
  Node doc = yaml("backends: {block: {d0: {driver: raw, file: a.img}}}\nboot: {kernel: k}\n");
  std::vector<std::string> paths;
  walk_schema(doc, schema_json(), [&](Node& node, const nlohmann::json& fragment, const std::string& path) {
    if (const nlohmann::json* marked = schema_keyword(fragment, "x-vmlaunch-path");
        marked && node.is_string())
      paths.push_back(path);
  });
  CHECK(paths == std::vector<std::string>{"backends.block.d0.file", "boot.kernel"});
}

TEST_CASE("schema: another schema can be used, and a broken one is reported, not thrown") {
  nlohmann::json schema =
      nlohmann::json::parse(R"({"type": "object", "properties": {"a": {"type": "integer"}}})");
  CHECK(validate_schema(yaml("a: 1"), schema).empty());
  CHECK(validate_schema(yaml("a: x"), schema).size() == 1);
  nlohmann::json broken = nlohmann::json::parse(R"({"type": 5})");
  Diagnostics diagnostics = validate_schema(yaml("a: 1"), broken);
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].message.find("internal error: schema") == 0);
}

TEST_CASE("schema: very long strings are reported and cut instead of overflowing std::regex") {
  std::string text =
      "name: " + std::string(300000, 'a') + "\nmachine: {arch: riscv64, type: virt, memory: 1G}\n";
  Diagnostics diagnostics = validate_schema(yaml(text, "long.yaml"));
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].to_string() == "long.yaml:1:7: name: value is 300000 characters long (at most 4096)");
  Diagnostics quoted = validate_schema(yaml("name: \"" + std::string(100, ' ') + "\"\nmachine: {}\n"));
  const Diagnostic* name = find_message(quoted, "is not a valid name");
  REQUIRE(name);
  CHECK(name->message.size() < 100);
}
