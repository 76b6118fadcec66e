#include "config/loader.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "config/test_util.h"

using namespace config;
using config::testing::yaml;

TEST_CASE("YAML plain scalars follow the core schema") {
  Node doc = yaml("a: 512\nb: 1.5\nc: true\nd: ~\ne: null\nf: 512MiB\ng: 0x10\nh: -7\ni: False\nj: .inf\n");
  CHECK(doc.find("a")->is_int());
  CHECK(doc.find("a")->as_int() == 512);
  CHECK(doc.find("b")->is_float());
  CHECK(doc.find("b")->as_float() == 1.5);
  CHECK(doc.find("c")->is_bool());
  CHECK(doc.find("c")->as_bool());
  CHECK(doc.find("d")->is_null());
  CHECK(doc.find("e")->is_null());
  CHECK(doc.find("f")->is_string());
  CHECK(doc.find("f")->as_string() == "512MiB");
  CHECK(doc.find("g")->as_int() == 16);
  CHECK(doc.find("h")->as_int() == -7);
  CHECK(doc.find("i")->is_bool());
  CHECK(std::isinf(doc.find("j")->as_float()));
}

// The loader classifies plain scalars with hand-written scanners; the core schema's regular
// expressions (YAML 1.2, 10.3.2) are the reference they must agree with.
TEST_CASE("YAML plain scalar scanners agree with the core schema's regular expressions") {
  const std::regex int10("[-+]?[0-9]+"), int8("0o[0-7]+"), int16("0x[0-9a-fA-F]+");
  const std::regex floating("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  const std::regex inf("[-+]?\\.(inf|Inf|INF)"), nan("\\.(nan|NaN|NAN)");
  const char* samples[] = {"0",     "-0",    "+12",   "12a",  "1_000", "0o17",  "0o18", "0o",       "0x1F",
                           "0xg",   "0x",    "0X10",  "1.",   ".5",    ".",     "-.5",  "1.5e3",    "1e",
                           "1e+",   "1E-7",  "+1.e2", "e5",   ".e5",   "1.5.2", "--1",  "+",        ".inf",
                           "-.Inf", "+.INF", ".iNf",  ".nan", "-.nan", ".NaN",  "1:30", "10.0.2.2", "1 2",
                           "٣",     "1e5x",  "00012", "-0x1", "+0o7"};
  for (const char* sample : samples) {
    const std::string text = sample;
    CAPTURE(text);
    Node doc = yaml(std::string("v: ") + sample + "\n");
    const Node* value = doc.find("v");
    REQUIRE(value);
    const bool integer =
        std::regex_match(text, int10) || std::regex_match(text, int8) || std::regex_match(text, int16);
    const bool number =
        std::regex_match(text, floating) || std::regex_match(text, inf) || std::regex_match(text, nan);
    if (integer) {
      CHECK(value->is_int());
    } else if (number) {
      CHECK(value->is_float());
    } else if (value->is_string()) {
      CHECK(value->as_string() == text);
    } else {
      FAIL("not a number by the reference, yet not a string either");
    }
  }
}

TEST_CASE("YAML quoted scalars are strings") {
  Node doc = yaml("a: \"512\"\nb: 'true'\nc: \"~\"\nd: |\n  1\n");
  CHECK(doc.find("a")->is_string());
  CHECK(doc.find("a")->as_string() == "512");
  CHECK(doc.find("b")->is_string());
  CHECK(doc.find("c")->is_string());
  CHECK(doc.find("d")->is_string());
}

TEST_CASE("YAML integers too large for 64 bits become floats instead of wrapping") {
  Node doc = yaml("a: 99999999999999999999\n");
  CHECK(doc.find("a")->is_float());
  CHECK(doc.find("a")->as_float() == 1e20);
}

TEST_CASE("YAML nodes carry 1-based line and column") {
  Node doc = yaml("name: x\nmachine:\n  arch: riscv64\ndevices:\n  - {driver: ns16550, id: s0}\n", "m.yaml");
  const Node::Entry* machine = doc.find_entry("machine");
  REQUIRE(machine);
  CHECK(machine->key_location.to_string() == "m.yaml:2:1");
  const Node* arch = machine->value.find("arch");
  CHECK(arch->location().to_string() == "m.yaml:3:9");
  CHECK(machine->value.find_entry("arch")->key_location.to_string() == "m.yaml:3:3");
  const Node& device = doc.find("devices")->items()[0];
  CHECK(device.location().to_string() == "m.yaml:5:5");
  CHECK(device.find("id")->location().to_string() == "m.yaml:5:27");
}

TEST_CASE("YAML keeps key order") {
  Node doc = yaml("z: 1\na: 2\nm: 3\n");
  REQUIRE(doc.entries().size() == 3);
  CHECK(doc.entries()[0].key == "z");
  CHECK(doc.entries()[1].key == "a");
  CHECK(doc.entries()[2].key == "m");
}

TEST_CASE("YAML syntax errors are diagnostics with a location") {
  ParseResult parsed = parse_yaml_string("a: [1, 2\nb: 3\n", "bad.yaml");
  REQUIRE_FALSE(parsed.ok());
  REQUIRE(parsed.diagnostics.size() == 1);
  CHECK(parsed.diagnostics[0].location.file == "bad.yaml");
  CHECK(parsed.diagnostics[0].location.line >= 1);
  CHECK(parsed.diagnostics[0].message.find("YAML syntax error") == 0);
}

TEST_CASE("YAML duplicate keys are errors pointing at both places") {
  ParseResult parsed = parse_yaml_string("a: 1\nb: 2\na: 3\n", "dup.yaml");
  REQUIRE(parsed.diagnostics.size() == 1);
  CHECK(parsed.diagnostics[0].to_string() ==
        "dup.yaml:3:1: duplicate key \"a\" (first written at dup.yaml:1:1)");
}

TEST_CASE("YAML alias bombs and self-referencing anchors are refused, not expanded") {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'k'; ++c)
    bomb += std::string(1, c) + ": &" + c + " [*" + char(c - 1) + ", *" + char(c - 1) + ", *" + char(c - 1) +
            ", *" + char(c - 1) + ", *" + char(c - 1) + ", *" + char(c - 1) + ", *" + char(c - 1) + "]\n";
  ParseResult parsed = parse_yaml_string(bomb, "bomb.yaml");
  CHECK_FALSE(parsed.ok());
  CHECK(parsed.diagnostics[0].message.find("more than") != std::string::npos);

  ParseResult deep = parse_yaml_string(std::string(200, '[') + std::string(200, ']'), "deep.yaml");
  CHECK_FALSE(deep.ok());
}

// Few values but many bytes: 5,000 aliases of one 1 MB string took 25 s and 4.9 GB.
TEST_CASE("YAML alias expansion is bounded by bytes, not only by values") {
  std::string text = "a: &s " + std::string(1 << 20, 'x') + "\nb: [";
  for (int i = 0; i < 5000; ++i) text += "*s, ";
  text += "]\n";
  auto start = std::chrono::steady_clock::now();
  ParseResult parsed = parse_yaml_string(text, "long.yaml");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.diagnostics[0].message ==
        "document expands to more than 32 MiB of text (a long string "
        "referenced by many aliases?)");
  CHECK(parsed.diagnostics[0].location.line == 2);
  // The same through a map anchor: the bytes under the anchor count for each alias.
  std::string nested = "a: &m {k: " + std::string(1 << 20, 'y') + "}\nb: [";
  for (int i = 0; i < 5000; ++i) nested += "*m, ";
  CHECK_FALSE(parse_yaml_string(nested + "]\n", "nested.yaml").ok());
  // A few aliases of a long string are fine.
  CHECK(parse_yaml_string("a: &s " + std::string(1 << 20, 'x') + "\nb: [*s, *s, *s]\n", "ok.yaml").ok());
}

// `kernel: "…/Image\0/x"` used to boot ".../Image": NUL is refused in every string and key.
TEST_CASE("a NUL byte in any string or key is an error, in YAML and TOML") {
  for (std::string text : {std::string("kernel: \"Image\\0/x\"\n"), std::string("\"k\\0ey\": 1\n"),
                           std::string("a: [ok, \"b\\0\"]\n")}) {
    CAPTURE(text);
    ParseResult parsed = parse_yaml_string(text, "nul.yaml");
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.diagnostics[0].message == "a NUL byte (\\0) inside a string");
  }
  ParseResult toml = parse_toml_string("kernel = \"Image\\u0000/x\"\n", "nul.toml");
  REQUIRE_FALSE(toml.ok());
  CHECK(toml.diagnostics[0].to_string() ==
        "nul.toml:1:10: a NUL byte (\\0) inside a string (names, paths and values cannot contain NUL; remove "
        "it)");
  CHECK_FALSE(parse_toml_string("\"k\\u0000\" = 1\n", "nul.toml").ok());
}

// A message quotes the user's text; ESC and NUL in it must reach the terminal as text.
TEST_CASE("diagnostics escape control characters in every part") {
  Diagnostic d = Diagnostic::error(Location{"m.yaml", 1, 2}, "a\x1b[31m",
                                   std::string("bad \"x\0y\nz\x7f\"", 12), "hint\t");
  CHECK(d.to_string() == "m.yaml:1:2: a\\e[31m: bad \"x\\0y\\nz\\x7f\" (hint\\t)");
  CHECK(escape_control("caf\xC3\xA9") == "caf\xC3\xA9");  // UTF-8 stays
}

// "remove the ---" was the hint for every second document, also when the file has no "---".
TEST_CASE("a second document is explained by what the file holds") {
  ParseResult toml = parse_yaml_string("[machine]\narch = \"riscv64\"\ntype = \"virt\"\n", "t.yaml");
  REQUIRE_FALSE(toml.ok());
  CHECK(toml.diagnostics[0].to_string() ==
        "t.yaml:2:1: this file is TOML, but its name makes it YAML (name it .toml, or write it as YAML)");
  ParseResult json = parse_yaml_string("{\"name\": \"x\"}\n{\"machine\": 1}\n", "j.yaml");
  REQUIRE_FALSE(json.ok());
  CHECK(json.diagnostics[0].to_string() ==
        "j.yaml:2:1: more than one value in the file: the first one ended before this line (a machine file "
        "holds one map; put everything in it)");
  ParseResult dashes = parse_yaml_string("a: 1\n---\nb: 2\n", "d.yaml");
  REQUIRE_FALSE(dashes.ok());
  CHECK(dashes.diagnostics[0].hint == "a machine file holds one document; remove the \"---\"");
}

TEST_CASE("YAML with several documents is an error") {
  ParseResult parsed = parse_yaml_string("a: 1\n---\nb: 2\n", "two.yaml");
  CHECK_FALSE(parsed.ok());
  CHECK(parsed.diagnostics[0].location.line == 2);
}

TEST_CASE("YAML: an empty file is a null document at 1:1") {
  ParseResult parsed = parse_yaml_string("", "empty.yaml");
  CHECK(parsed.ok());
  CHECK(parsed.node.is_null());
  CHECK(parsed.node.location().to_string() == "empty.yaml:1:1");
}

TEST_CASE("JSON text loads through the YAML loader with the same types") {
  ParseResult parsed = parse_yaml_string(
      "{\"name\": \"x\", \"n\": 2, \"f\": 0.5, \"ok\": true, \"none\": null, \"s\": \"2\"}", "m.json");
  REQUIRE(parsed.ok());
  CHECK(parsed.node.find("n")->is_int());
  CHECK(parsed.node.find("f")->is_float());
  CHECK(parsed.node.find("ok")->is_bool());
  CHECK(parsed.node.find("none")->is_null());
  CHECK(parsed.node.find("s")->is_string());
  CHECK(parsed.node.find("n")->location().to_string() == "m.json:1:20");
  CHECK(format_for_path("a/b.json") == Format::Yaml);
  CHECK(format_for_path("a/b.TOML") == Format::Toml);
  CHECK(format_for_path("b.yml") == Format::Yaml);
}

TEST_CASE("TOML values, tables and locations") {
  ParseResult parsed = parse_toml_string(
      "name = \"x\"\ncount = 2\nratio = 1.5\nok = true\n\n[machine]\narch = "
      "\"riscv64\"\n\n[[devices]]\ndriver = \"ns16550\"\n",
      "m.toml");
  REQUIRE(parsed.ok());
  const Node& doc = parsed.node;
  CHECK(doc.find("count")->as_int() == 2);
  CHECK(doc.find("ratio")->as_float() == 1.5);
  CHECK(doc.find("ok")->as_bool());
  CHECK(doc.find("machine")->find("arch")->location().to_string() == "m.toml:7:8");
  CHECK(doc.find_entry("count")->key_location.to_string() == "m.toml:2:1");
  CHECK(doc.find("devices")->items()[0].find("driver")->as_string() == "ns16550");
}

TEST_CASE("TOML keeps file order, not toml++'s alphabetical order") {
  ParseResult parsed = parse_toml_string("z = 1\na = 2\n[m]\ny = 1\nb = 2\n", "o.toml");
  REQUIRE(parsed.ok());
  REQUIRE(parsed.node.entries().size() == 3);
  CHECK(parsed.node.entries()[0].key == "z");
  CHECK(parsed.node.entries()[1].key == "a");
  CHECK(parsed.node.entries()[2].key == "m");
  CHECK(parsed.node.find("m")->entries()[0].key == "y");
}

TEST_CASE("TOML syntax errors are diagnostics with a location") {
  ParseResult parsed = parse_toml_string("a = 1\nb = [1, 2\n", "bad.toml");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.diagnostics[0].location.file == "bad.toml");
  CHECK(parsed.diagnostics[0].location.line == 2);
  CHECK(parsed.diagnostics[0].message.find("TOML syntax error") == 0);
}

TEST_CASE("The same machine in YAML and TOML is the same document") {
  Node from_yaml = yaml(
      "name: m\nmachine: {arch: riscv64, type: virt, memory: 512MiB}\ncpu: {count: 2}\naccel: [jit]\n"
      "devices:\n  - {driver: ns16550, id: s0, addr: 3}\n");
  ParseResult from_toml = parse_toml_string(
      "name = \"m\"\nmachine = {arch = \"riscv64\", type = \"virt\", memory = \"512MiB\"}\ncpu = {count = "
      "2}\n"
      "accel = [\"jit\"]\n[[devices]]\ndriver = \"ns16550\"\nid = \"s0\"\naddr = 3\n",
      "m.toml");
  REQUIRE(from_toml.ok());
  CHECK(from_yaml == from_toml.node);
  // And a difference is noticed.
  Node other = from_yaml;
  other.find("cpu")->set("count", Node::integer(3));
  CHECK_FALSE(other == from_toml.node);
}

TEST_CASE("read_file reports missing files and directories") {
  std::string error;
  CHECK_FALSE(read_file("/nonexistent/vmlaunch.yaml", &error));
  CHECK(error == "No such file or directory");
  CHECK_FALSE(read_file("/", &error));
  CHECK(error == "is a directory");
}

// Each of these used to grow memory without bound or block forever: only regular files up to
// kMaxFileBytes are read, and the refusal is immediate.
TEST_CASE("read_file reads only regular files, up to the size limit") {
  std::string error;
  CHECK_FALSE(read_file("/dev/zero", &error));
  CHECK(error == "is a character device, not a regular file");
  const char* tmp = getenv("TEST_TMPDIR");
  std::string dir = std::string(tmp ? tmp : "/tmp") + "/read-file-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::string fifo = dir + "/fifo.yaml";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_FALSE(read_file(fifo, &error));  // no writer: must not wait for one
  CHECK(error == "is a FIFO, not a regular file");
  std::string sparse = dir + "/sparse.yaml";
  { std::ofstream(sparse) << "a: 1\n"; }
  std::filesystem::resize_file(sparse, uint64_t{1} << 40);  // 1 TiB of holes
  CHECK_FALSE(read_file(sparse, &error));
  CHECK(error == "is 1099511627776 bytes, over the 16 MiB limit for a config file");
  std::filesystem::resize_file(sparse, kMaxFileBytes);
  CHECK(read_file(sparse, &error).has_value());  // exactly at the limit is fine
  CHECK_FALSE(read_file(std::string("a\0b", 3), &error));
  CHECK(error == "the file name contains a NUL byte");
  std::filesystem::remove_all(dir);
}

TEST_CASE("YAML that is not valid UTF-8 is refused at the first bad byte") {
  ParseResult parsed = parse_yaml_string("name: ok\nmachine: \"caf\xC3\xA9\"\nbad: \"\xFF\"\n", "enc.yaml");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.diagnostics[0].to_string() == "enc.yaml:3:7: the file is not valid UTF-8 (save it as UTF-8)");
  CHECK_FALSE(parse_yaml_string("a: \"\xC0\xAF\"", "overlong.yaml").ok());
  CHECK_FALSE(parse_yaml_string("a: \"\xED\xA0\x80\"", "surrogate.yaml").ok());
  CHECK_FALSE(parse_yaml_string("a: \"\xE2\x82\"", "truncated.yaml").ok());
  CHECK(parse_yaml_string("a: \"\xF0\x9F\x98\x80\"", "emoji.yaml").ok());
}

TEST_CASE("YAML inputs that make yaml-cpp 0.7 loop forever end with an error") {
  for (const char* text : {",", ",#", "- ,\n"}) {
    ParseResult parsed = parse_yaml_string(text, "loop.yaml");
    CHECK_FALSE(parsed.ok());
  }
}

TEST_CASE("YAML aliases expand; an alias inside its own anchor is an error") {
  Node doc = yaml("base: &b {arch: riscv64}\ncopy: *b\nname: &n x\n*n : 1\n");
  CHECK(*doc.find("copy") == *doc.find("base"));
  CHECK(doc.find("x") != nullptr);
  ParseResult self = parse_yaml_string("a: &a [*a]\n", "self.yaml");
  REQUIRE_FALSE(self.ok());
  CHECK(self.diagnostics[0].message.find("not finished") != std::string::npos);
}

TEST_CASE("YAML keys must be scalars") {
  ParseResult parsed = parse_yaml_string("? [a, b]\n: 1\nc: 2\n", "k.yaml");
  REQUIRE(parsed.diagnostics.size() == 1);
  CHECK(parsed.diagnostics[0].message.find("keys must be plain names") == 0);
  CHECK(parsed.node.find("c")->as_int() == 2);
}
