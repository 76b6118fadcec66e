#include "config/interpolate.h"

#include <doctest/doctest.h>

#include "config/test_util.h"

using namespace config;
using config::testing::yaml;

namespace {
std::optional<std::string> expand(const std::string& text, const Environment& env) {
  std::string error, hint;
  return expand_variables(text, env, error, hint);
}
}  // namespace

TEST_CASE("interpolation: ${VAR} and ${VAR:-default}") {
  Environment env = Environment::fixed({{"HOME", "/home/u"}, {"EMPTY", ""}});
  CHECK(expand("${HOME}/.cache", env) == "/home/u/.cache");
  CHECK(expand("${UNSET:-fallback}", env) == "fallback");
  CHECK(expand("${HOME:-fallback}", env) == "/home/u");
  CHECK(expand("${EMPTY:-fallback}", env) == "fallback");
  CHECK(expand("${EMPTY}", env) == "");
  CHECK(expand("a${HOME}b${HOME}c", env) == "a/home/ub/home/uc");
}

TEST_CASE("interpolation: $$ is a literal dollar and a lone $ stays") {
  Environment env = Environment::fixed({{"X", "1"}});
  CHECK(expand("cost $$5", env) == "cost $5");
  CHECK(expand("$$(X)", env) == "$(X)");
  CHECK(expand("a$b $", env) == "a$b $");
}

TEST_CASE("interpolation: an unset variable without default is an error naming it, at its string") {
  Node doc = yaml("boot:\n  kernel: ${GUESTS}/Image\n", "m.yaml");
  Diagnostics diagnostics = interpolate(doc, Environment::fixed({}));
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].to_string() ==
        "m.yaml:2:11: boot.kernel: environment variable GUESTS is not set (set it, or give a default: "
        "${GUESTS:-value})");
}

TEST_CASE("interpolation: malformed references are errors") {
  Environment env({});
  std::string error, hint;
  CHECK_FALSE(expand_variables("${HOME", env, error, hint));
  CHECK(error == "unterminated \"${\"");
  CHECK_FALSE(expand_variables("${1X}", env, error, hint));
  CHECK(error.find("invalid variable name") == 0);
  CHECK_FALSE(expand_variables("${}", env, error, hint));
}

TEST_CASE("interpolation: every string in the document, none of the keys") {
  Node doc = yaml("a: ${X}\nlist: [\"${X}\", 3]\n${X}: 1\n");
  Diagnostics diagnostics = interpolate(doc, Environment::fixed({{"X", "v"}}));
  CHECK(diagnostics.empty());
  CHECK(doc == yaml("a: v\nlist: [v, 3]\n${X}: 1\n"));
}

TEST_CASE("interpolation: the default Environment reads the process environment") {
  setenv("VMLAUNCH_TEST_VARIABLE", "from-process", 1);
  CHECK(Environment().get("VMLAUNCH_TEST_VARIABLE") == "from-process");
  CHECK_FALSE(Environment::fixed({}).get("VMLAUNCH_TEST_VARIABLE"));
}

TEST_CASE("interpolation: a whole reference in a number or boolean field takes the field's type") {
  Node doc = yaml(
      "name: \"${N}\"\ncpu: {count: \"${CPUS:-2}\", model: \"${CPUS:-2}\"}\nmachine: {memory: \"${MEM}\"}\n"
      "devices: [{driver: pci-bridge, addr: \"${SLOT}\", bootindex: \"x${SLOT}\"}]\n");
  Diagnostics diagnostics =
      interpolate(doc, Environment::fixed({{"N", "7"}, {"MEM", "4096"}, {"SLOT", "3"}}));
  CHECK(diagnostics.empty());
  CHECK(doc.find("name")->is_string());                     // a string field stays a string
  CHECK(doc.find("cpu")->find("count")->as_int() == 2);     // integer field
  CHECK(doc.find("cpu")->find("model")->is_string());       // string field
  CHECK(doc.find("machine")->find("memory")->is_string());  // integer or string: left as written
  const Node& device = doc.find("devices")->items()[0];
  CHECK(device.find("addr")->is_string());       // addr also takes strings ("1f.2")
  CHECK(device.find("bootindex")->is_string());  // not a whole reference
}

TEST_CASE("interpolation: defaults nest, as in the shell, up to a bound") {
  Environment env = Environment::fixed({{"B", "bee"}});
  CHECK(expand("${A:-${B}}", env) == "bee");
  CHECK(expand("${A:-${C:-deep}}/x", env) == "deep/x");
  CHECK(expand("${A:-pre-${B}-post}", env) == "pre-bee-post");
  CHECK_FALSE(expand("${A:-${C}}", env).has_value());  // the inner one is unset, no default
  std::string nested = "x";
  for (int i = 0; i < 20; ++i) nested = "${U" + std::to_string(i) + ":-" + nested + "}";
  std::string error, hint;
  CHECK_FALSE(expand_variables(nested, env, error, hint).has_value());
  CHECK(error.find("nested more than") != std::string::npos);
}
