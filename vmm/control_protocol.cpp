#include "vmm/control_protocol.h"

#include <filesystem>

namespace vmm::control {

void LineReader::feed(std::string_view data, const std::function<bool(const std::string& line)>& on_line,
                      const std::function<void()>& on_too_large) {
  while (!data.empty()) {
    size_t newline = data.find('\n');
    std::string_view part = data.substr(0, newline);
    bool go_on = true;
    if (m_discarding) {
      if (newline != std::string_view::npos) m_discarding = false;
    } else if (m_in.size() + part.size() > m_max) {
      on_too_large();
      m_in.clear();
      m_discarding = newline == std::string_view::npos;
    } else {
      m_in.append(part);
      if (newline != std::string_view::npos) {
        std::string line;
        line.swap(m_in);
        go_on = on_line(line);
      }
    }
    if (newline == std::string_view::npos || !go_on) return;
    data.remove_prefix(newline + 1);
  }
}

base::Result<Request, ProtocolError> parse_request(std::string_view line) {
  nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
  if (request.is_discarded())
    return base::fail(ProtocolError{"ParseError", "not a JSON object (one object per line)", nullptr});
  if (!request.is_object())
    return base::fail(ProtocolError{"InvalidRequest", "a request is a JSON object", nullptr});
  Request out;
  if (auto it = request.find("id"); it != request.end()) {
    // The id is echoed, so only small scalars are accepted: a nested one would be ours to copy.
    if (!(it->is_string() && it->get_ref<const std::string&>().size() <= 256) && !it->is_number_integer())
      return base::fail(
          ProtocolError{"InvalidRequest", "id must be an integer or a string of at most 256 bytes", nullptr});
    out.id = *it;
  }
  auto execute = request.find("execute");
  if (execute == request.end() || !execute->is_string())
    return base::fail(ProtocolError{"InvalidRequest", "execute must be a string", out.id});
  out.command = execute->get<std::string>();
  if (auto args = request.find("arguments"); args != request.end()) {
    if (!args->is_object())
      return base::fail(ProtocolError{"InvalidRequest", "arguments must be an object", out.id});
    out.arguments = *args;
  }
  return out;
}

base::Result<SnapshotArguments, ProtocolError> parse_snapshot_arguments(const Request& request) {
  const nlohmann::json& args = request.arguments;
  auto dir = args.find("dir");
  if (dir == args.end() || !dir->is_string() || dir->get_ref<const std::string&>().empty() ||
      dir->get_ref<const std::string&>().size() > 4096 ||
      dir->get_ref<const std::string&>().find('\0') != std::string::npos ||
      !std::filesystem::path(dir->get<std::string>()).is_absolute())
    return base::fail(
        ProtocolError{"InvalidRequest", "snapshot needs arguments.dir, an absolute path", request.id});
  auto stop = args.find("stop");
  if (stop != args.end() && !stop->is_boolean())
    return base::fail(ProtocolError{"InvalidRequest", "arguments.stop must be a boolean", request.id});
  return SnapshotArguments{dir->get<std::string>(), stop != args.end() && stop->get<bool>()};
}

}  // namespace vmm::control
