#include "launcher/readiness.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "base/field_use.h"

VML_CONSUMES("readiness.console");  // up -d returns once a console line matches
VML_CONSUMES("readiness.tcp");      // and once the host port accepts
VML_CONSUMES("readiness.timeout");  // else it stops the machine and exits 1

namespace launcher {

std::string Readiness::describe() const {
  std::string text;
  if (!console.empty()) text = "console /" + console + "/";
  if (tcp != 0) text += (text.empty() ? "" : " and ") + std::string("tcp 127.0.0.1:") + std::to_string(tcp);
  return text;
}

base::ErrorOr<Readiness> readiness_of(const nlohmann::json& config) {
  Readiness readiness;
  auto section = config.find("readiness");
  if (section == config.end() || !section->is_object()) return readiness;
  if (auto it = section->find("console"); it != section->end() && it->is_string()) {
    readiness.console = it->get<std::string>();
    // std::regex reports a bad pattern by throwing; it stays inside this function.
    try {
      readiness.console_regex.emplace(readiness.console, std::regex::ECMAScript);
    } catch (const std::regex_error& error) {
      return base::fail(base::Error("readiness.console: \"" + readiness.console +
                                    "\" is not a regular expression: " + error.what()));
    }
  }
  if (auto it = section->find("tcp"); it != section->end() && it->is_number_integer())
    readiness.tcp = it->get<int>();
  if (auto it = section->find("timeout"); it != section->end() && it->is_number())
    readiness.timeout = it->get<double>();
  return readiness;
}

namespace {

bool port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return ok;
}

// Follows the console log (rotation: the file shrinks, start over) and matches line by line.
class ConsoleMatcher {
 public:
  ConsoleMatcher(const std::regex& regex, std::filesystem::path log)
      : m_regex(regex), m_log(std::move(log)) {}
  bool seen() {
    if (m_seen) return true;
    struct stat st {};
    if (::stat(m_log.c_str(), &st) != 0) return false;
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size < m_offset) m_offset = 0;
    if (size > m_offset) {
      std::ifstream in(m_log, std::ios::binary);
      in.seekg(static_cast<std::streamoff>(m_offset));
      std::string chunk(size - m_offset, '\0');
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      chunk.resize(static_cast<size_t>(in.gcount()));
      m_offset += chunk.size();
      m_line += chunk;
    }
    size_t start = 0;
    for (size_t newline; (newline = m_line.find('\n', start)) != std::string::npos; start = newline + 1)
      if (match(std::string_view(m_line).substr(start, newline - start))) return m_seen = true;
    m_line.erase(0, start);
    if (m_line.size() > 64 * 1024) m_line.erase(0, m_line.size() - 64 * 1024);  // a line without end
    return m_seen = match(m_line);                                              // a prompt has no newline yet
  }

 private:
  bool match(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return std::regex_search(line.begin(), line.end(), m_regex);
  }
  const std::regex& m_regex;
  std::filesystem::path m_log;
  uint64_t m_offset = 0;
  std::string m_line;
  bool m_seen = false;
};

}  // namespace

base::ErrorOr<void> wait_ready(const Readiness& readiness, const std::filesystem::path& console_log,
                               const std::function<bool()>& running) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(readiness.timeout);
  std::optional<ConsoleMatcher> console;
  if (readiness.console_regex) console.emplace(*readiness.console_regex, console_log);
  bool tcp_ok = readiness.tcp == 0;
  for (;;) {
    bool console_ok = !console || console->seen();
    if (!tcp_ok) tcp_ok = port_accepts(readiness.tcp);
    if (console_ok && tcp_ok) return {};
    if (!running()) {
      // One last look: the line may have come just before the end.
      if ((!console || console->seen()) && tcp_ok) return {};
      return base::fail(
          base::Error("the machine stopped before it was ready (" + readiness.describe() + ")"));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string missing;
      if (!console_ok) missing = "console /" + readiness.console + "/ not seen";
      if (!tcp_ok)
        missing += (missing.empty() ? "" : ", ") + std::string("tcp 127.0.0.1:") +
                   std::to_string(readiness.tcp) + " not accepting";
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%g", readiness.timeout);
      return base::fail(
          base::Error("not ready within readiness.timeout " + std::string(seconds) + " s: " + missing));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

namespace {

void drift(const nlohmann::json& was, const nlohmann::json& now, const std::string& path,
           std::vector<std::string>& out, size_t limit) {
  if (out.size() >= limit || was == now) return;
  auto name = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
  if (was.is_object() && now.is_object()) {
    for (auto it = was.begin(); it != was.end(); ++it) {
      auto other = now.find(it.key());
      if (other == now.end())
        out.push_back(name(it.key()) + " (removed)");
      else
        drift(it.value(), *other, name(it.key()), out, limit);
      if (out.size() >= limit) return;
    }
    for (auto it = now.begin(); it != now.end() && out.size() < limit; ++it)
      if (!was.contains(it.key())) out.push_back(name(it.key()) + " (added)");
    return;
  }
  if (was.is_array() && now.is_array() && was.size() == now.size()) {
    for (size_t i = 0; i < was.size() && out.size() < limit; ++i)
      drift(was[i], now[i], path + "[" + std::to_string(i) + "]", out, limit);
    return;
  }
  out.push_back(path.empty() ? "(the whole file)" : path);
}

}  // namespace

std::vector<std::string> config_drift(const nlohmann::json& was, const nlohmann::json& now, size_t limit) {
  std::vector<std::string> out;
  drift(was, now, "", out, limit);
  return out;
}

}  // namespace launcher
