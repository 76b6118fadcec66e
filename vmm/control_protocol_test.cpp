#include "vmm/control_protocol.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using vmm::control::LineReader;
using vmm::control::parse_request;
using vmm::control::parse_snapshot_arguments;

namespace {

struct Fed {
  std::vector<std::string> lines;
  int too_large = 0;
};

void feed(LineReader& reader, Fed& fed, std::string_view data, int stop_after = -1) {
  reader.feed(
      data,
      [&](const std::string& line) {
        fed.lines.push_back(line);
        return stop_after < 0 || static_cast<int>(fed.lines.size()) < stop_after;
      },
      [&] { fed.too_large++; });
}

}  // namespace

TEST_CASE("control protocol: lines split across reads, oversized ones dropped up to their newline") {
  LineReader reader(8);
  Fed fed;
  feed(reader, fed, "ab");
  feed(reader, fed, "c\nde");
  CHECK(fed.lines == std::vector<std::string>{"abc"});
  CHECK(reader.pending() == 2);
  feed(reader, fed, "fghijkl");  // "defghijkl" is 9 bytes: too large, dropped until its newline
  CHECK(fed.too_large == 1);
  feed(reader, fed, "mnop\nok\n");
  CHECK(fed.too_large == 1);
  CHECK(fed.lines == std::vector<std::string>{"abc", "ok"});
  feed(reader, fed, "123456789\nafter\n");  // too large within one read: the next line still counts
  CHECK(fed.too_large == 2);
  CHECK(fed.lines.back() == "after");
}

TEST_CASE("control protocol: stopping after a line (quit) leaves the rest unread") {
  LineReader reader(64);
  Fed fed;
  feed(reader, fed, "one\ntwo\nthree\n", 1);
  CHECK(fed.lines == std::vector<std::string>{"one"});
}

TEST_CASE("control protocol: requests and their typed errors") {
  auto ok = parse_request(R"({"execute": "status", "id": 7, "arguments": {"x": 1}})");
  REQUIRE(ok.ok());
  CHECK(ok.value().command == "status");
  CHECK(ok.value().id == 7);
  CHECK(ok.value().arguments["x"] == 1);
  CHECK(parse_request("{not json").error().cls == "ParseError");
  CHECK(parse_request("[1]").error().cls == "InvalidRequest");
  CHECK(parse_request(R"({"execute": "x", "id": {"a": 1}})").error().message.find("id must be") == 0);
  CHECK(parse_request(R"({"execute": "x", "id": ")" + std::string(257, 'a') + "\"}").error().cls ==
        "InvalidRequest");
  auto no_execute = parse_request(R"({"id": "abc"})");
  REQUIRE_FALSE(no_execute.ok());
  CHECK(no_execute.error().id == "abc");  // errors after a valid id echo it
  CHECK(parse_request(R"({"execute": "x", "arguments": [1]})").error().message ==
        "arguments must be an object");
}

TEST_CASE("control protocol: snapshot arguments") {
  auto request = [](const std::string& args) {
    return parse_request(R"({"execute": "snapshot", "arguments": )" + args + "}").value();
  };
  auto good = parse_snapshot_arguments(request(R"({"dir": "/tmp/s", "stop": true})"));
  REQUIRE(good.ok());
  CHECK(good.value().dir == "/tmp/s");
  CHECK(good.value().stop);
  CHECK_FALSE(parse_snapshot_arguments(request(R"({"dir": "relative"})")).ok());
  CHECK_FALSE(parse_snapshot_arguments(request(R"({"dir": ""})")).ok());
  CHECK_FALSE(parse_snapshot_arguments(request(R"({"dir": "/a\u0000b"})")).ok());
  CHECK_FALSE(parse_snapshot_arguments(request(R"({"dir": "/a", "stop": "yes"})")).ok());
  CHECK_FALSE(parse_snapshot_arguments(request(R"({})")).ok());
}
