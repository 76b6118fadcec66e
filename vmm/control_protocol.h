// The control socket's wire protocol without the socket (vmm/control_server.h has the whole of it):
// splitting a client's bytes into request lines, and reading one request. Everything here takes
// hostile bytes, so it is fuzzed on its own (tests/fuzz/backends:control_fuzz).
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vmm::control {

// One client's byte stream into lines of at most `max_line` bytes (the newline excluded). A longer
// line is reported once and dropped up to its newline; what follows it is read normally.
class LineReader {
 public:
  explicit LineReader(size_t max_line) : m_max(max_line) {}
  // Calls on_line for each complete line (false from it: stop reading, e.g. after `quit`) and
  // on_too_large for each oversized one. Bytes after an unfinished line wait for the next feed.
  void feed(std::string_view data, const std::function<bool(const std::string& line)>& on_line,
            const std::function<void()>& on_too_large);
  size_t pending() const { return m_in.size(); }

 private:
  size_t m_max;
  std::string m_in;
  bool m_discarding = false;  // inside an oversized line: drop bytes until its newline
};

// A typed error the server answers with: {"error": {"class": cls, "message": message}, "id": id}.
struct ProtocolError {
  std::string cls;
  std::string message;
  nlohmann::json id;  // echoed when the request had a valid one (null otherwise)
};

struct Request {
  std::string command;                                  // "execute"
  nlohmann::json id;                                    // null, an integer, or a string of <= 256 bytes
  nlohmann::json arguments = nlohmann::json::object();  // always an object
};

// One request line: a JSON object with "execute" (a string), an optional "id" (an integer or a
// string of at most 256 bytes: it is echoed) and optional "arguments" (an object).
base::Result<Request, ProtocolError> parse_request(std::string_view line);

// The `snapshot` command's arguments: {"dir": an absolute path (no NUL, at most 4096 bytes),
// "stop": bool}. The VMM writes DIR itself, so a relative path would resolve against the VMM's
// directory rather than the client's.
struct SnapshotArguments {
  std::string dir;
  bool stop = false;
};
base::Result<SnapshotArguments, ProtocolError> parse_snapshot_arguments(const Request& request);

}  // namespace vmm::control
