// libFuzzer target: the control socket's protocol (vmm/control_protocol.h) against a hostile
// client's byte stream. The input is fed to a LineReader in pieces whose sizes come from the input
// itself; every line is parsed as a request and, for `snapshot`, its arguments. Properties: no
// line handed on is longer than the limit, a successful parse has a string command and an object
// for arguments and an id that is null, an integer or a string of at most 256 bytes; an error's
// class is one the protocol documents.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vmm/control_protocol.h"

namespace {

constexpr size_t kLimit = 4096;  // smaller than the server's 64 KiB, so the fuzzer reaches it

void check_error(const vmm::control::ProtocolError& error) {
  if (error.cls != "ParseError" && error.cls != "InvalidRequest") std::abort();
  if (error.message.empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  vmm::control::LineReader reader(kLimit);
  const size_t piece = 1 + data[0] % 64;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  int lines = 0;
  while (!rest.empty()) {
    std::string_view chunk = rest.substr(0, piece);
    rest.remove_prefix(chunk.size());
    reader.feed(
        chunk,
        [&](const std::string& line) {
          if (line.size() > kLimit) std::abort();
          ++lines;
          auto request = vmm::control::parse_request(line);
          if (!request.ok()) {
            check_error(request.error());
            return true;
          }
          const auto& r = request.value();
          if (!r.arguments.is_object()) std::abort();
          if (!r.id.is_null() && !r.id.is_number_integer() &&
              !(r.id.is_string() && r.id.get_ref<const std::string&>().size() <= 256))
            std::abort();
          if (r.command == "snapshot") {
            auto args = vmm::control::parse_snapshot_arguments(r);
            if (args.ok() && (args.value().dir.empty() || args.value().dir[0] != '/')) std::abort();
            if (!args.ok()) check_error(args.error());
          }
          return r.command != "quit";
        },
        [] {});
    if (reader.pending() > kLimit) std::abort();
  }
  return 0;
}
