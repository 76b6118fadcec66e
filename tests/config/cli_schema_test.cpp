// Runs the real binary: `vmlaunch schema` must print valid JSON, the same schema validation uses.
#include <doctest/doctest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "config/schema.h"

namespace {
std::string run(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe);
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  *status = pclose(pipe);
  return out;
}
}  // namespace

TEST_CASE("vmlaunch schema prints the draft-07 schema as JSON") {
  int status = -1;
  std::string out = run("launcher/vmlaunch schema", &status);
  CHECK(status == 0);
  nlohmann::json parsed = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  REQUIRE_FALSE(parsed.is_discarded());
  CHECK(parsed["$schema"] == "http://json-schema.org/draft-07/schema#");
  CHECK(parsed == config::schema_json());
}

TEST_CASE("vmlaunch validate --json output parses and carries locations") {
  int status = -1;
  std::string out =
      run("launcher/vmlaunch validate --json tests/config/invalid/unknown-key.yaml 2>/dev/null", &status);
  CHECK(WEXITSTATUS(status) == 2);
  nlohmann::json parsed = nlohmann::json::parse(out, nullptr, false);
  REQUIRE(parsed.is_array());
  REQUIRE(parsed.size() == 4);
  CHECK(parsed[1]["path"] == "machine.memroy");
  CHECK(parsed[1]["line"] == 3);
  CHECK(parsed[1]["column"] == 38);
  CHECK(parsed[1]["hint"] == "did you mean \"memory\"?");
  CHECK(parsed[1]["severity"] == "error");
}
