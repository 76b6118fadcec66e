// `vmlaunch console NAME [--force] [--detach-key KEY]`: attach this terminal to a running machine's
// serial console (its console socket). Keys go to the guest, its output comes here; the detach key
// (default Ctrl-]) leaves the machine running. On a terminal the input is raw (Ctrl-C reaches the
// guest); without one (pipes, tests) the same bytes flow, and end of input detaches as the key does.
// A second attach is refused while one is attached, unless --force takes the console over.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "base/fd_io.h"
#include "launcher/command.h"
#include "launcher/machine_state.h"

namespace launcher {
namespace {

// "ctrl-]", "ctrl-a", "^]" -> the control byte; nullopt for anything else.
std::optional<unsigned char> parse_detach_key(std::string key) {
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string rest;
  if (key.rfind("ctrl-", 0) == 0)
    rest = key.substr(5);
  else if (key.rfind("^", 0) == 0)
    rest = key.substr(1);
  else
    return std::nullopt;
  if (rest.size() != 1) return std::nullopt;
  unsigned char c = static_cast<unsigned char>(rest[0]);
  if (c >= 'a' && c <= 'z') return static_cast<unsigned char>(c - 'a' + 1);
  if (c == '@' || c == '[' || c == '\\' || c == ']' || c == '^' || c == '_')
    return static_cast<unsigned char>(c == '@' ? 0 : c - '@');
  return std::nullopt;
}

// Raw mode on a terminal for the attachment's life.
class RawTerminal {
 public:
  RawTerminal() {
    if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &m_saved) != 0) return;
    termios raw = m_saved;
    ::cfmakeraw(&raw);
    m_active = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (m_active) ::tcsetattr(STDIN_FILENO, TCSANOW, &m_saved);
  }

 private:
  termios m_saved{};
  bool m_active = false;
};

int connect_console(const std::filesystem::path& socket_path) {
  auto path = vmm::SocketPath::of(socket_path);
  if (!path.ok()) return -1;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.value().path().size() >= sizeof(address.sun_path)) return -1;
  std::memcpy(address.sun_path, path.value().path().c_str(), path.value().path().size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The server's one-line answer ("ok", "busy", "error: ..."), or empty if it hung up; bytes after it
// (the first guest output) go to `rest`.
std::string read_answer(int fd, std::string& rest) {
  std::string text;
  char buffer[256];
  while (text.find('\n') == std::string::npos && text.size() < 4096) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) <= 0) return {};
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {};
    text.append(buffer, static_cast<size_t>(n));
  }
  size_t newline = text.find('\n');
  if (newline == std::string::npos) return {};
  rest = text.substr(newline + 1);
  return text.substr(0, newline);
}

int run_console(const std::string& name, bool force, const std::string& key_text) {
  if (auto valid = vmm::check_name(name); !valid.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", valid.error().message.c_str());
    return kExitBadInput;
  }
  std::optional<unsigned char> detach_key = parse_detach_key(key_text);
  if (!detach_key) {
    std::fprintf(stderr, "vmlaunch: --detach-key \"%s\": expected ctrl-LETTER or one of ctrl-@ [ \\ ] ^ _\n",
                 key_text.c_str());
    return kExitBadInput;
  }
  auto root = open_state_root();
  if (!root) return kExitRuntimeFailure;
  vmm::MachineRecord record = vmm::read_record(*root, name);
  std::error_code ec;
  if (!std::filesystem::is_directory(record.dir, ec)) {
    std::fprintf(stderr, "vmlaunch: no machine named %s\n", name.c_str());
    return kExitRuntimeFailure;
  }
  if (record.state != "running") {
    std::fprintf(stderr, "vmlaunch: %s is %s, not running\n", name.c_str(), record.state.c_str());
    return kExitRuntimeFailure;
  }
  int fd = connect_console(record.dir / "console.sock");
  if (fd < 0) {
    std::fprintf(stderr, "vmlaunch: %s has no console to attach to (%s)\n", name.c_str(),
                 std::strerror(errno));
    return kExitRuntimeFailure;
  }
  std::string hello = force ? "attach force\n" : "attach\n";
  std::string rest;
  std::string answer = base::send_all(fd, hello) ? read_answer(fd, rest) : std::string();
  if (answer != "ok") {
    ::close(fd);
    if (answer == "busy")
      std::fprintf(stderr, "vmlaunch: someone is attached to %s's console; --force takes it over\n",
                   name.c_str());
    else
      std::fprintf(stderr, "vmlaunch: %s's console did not answer%s%s\n", name.c_str(),
                   answer.empty() ? "" : ": ", answer.c_str());
    return kExitRuntimeFailure;
  }
  std::fprintf(stderr, "vmlaunch: attached to %s's console; %s detaches\r\n", name.c_str(), key_text.c_str());
  RawTerminal raw;
  if (!rest.empty()) base::write_all(STDOUT_FILENO, rest);
  int status = kExitOk;
  const char* why = "detached";
  for (;;) {
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      status = kExitRuntimeFailure;
      why = "poll failed";
      break;
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buffer[16 * 1024];
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        why = "the console closed (the machine stopped, or another attach took it over)";
        break;
      }
      if (!base::write_all(STDOUT_FILENO, std::string_view(buffer, static_cast<size_t>(n)))) break;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buffer[4096];
      ssize_t n = ::read(STDIN_FILENO, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // end of input: detach
      auto* key = static_cast<char*>(std::memchr(buffer, *detach_key, static_cast<size_t>(n)));
      size_t keep = key ? static_cast<size_t>(key - buffer) : static_cast<size_t>(n);
      if (keep > 0 && !base::send_all(fd, std::string_view(buffer, keep))) {
        why = "the console closed";
        break;
      }
      if (key) break;
    }
  }
  ::close(fd);
  std::fprintf(stderr, "\r\nvmlaunch: %s\r\n", why);
  return status;
}

}  // namespace

void register_console(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "console",
      "Attach this terminal to a running machine's serial console. The detach key (default Ctrl-]) "
      "leaves the machine running; so does the end of input when stdin is not a terminal. One attach at "
      "a time: a second is refused (exit 1) unless --force takes the console over. Exit codes: 0 "
      "detached or the machine stopped, 1 no such running machine or the console is taken, 2 bad "
      "arguments.");
  auto name = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto key = std::make_shared<std::string>("ctrl-]");
  cmd->add_option("NAME", *name, "Machine name (see ps)")->required();
  cmd->add_flag("-f,--force", *force, "Take the console over from whoever is attached");
  cmd->add_option("--detach-key", *key, "Key that detaches: ctrl-LETTER or ctrl-] (default), ctrl-\\, ...");
  cmd->callback([&action, name, force, key] {
    action = [name, force, key] { return run_console(*name, *force, *key); };
  });
}

}  // namespace launcher
