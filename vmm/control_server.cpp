#include "vmm/control_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "graph/render.h"
#include "security/thread_role.h"
#include "vmm/control_protocol.h"
#include "vmm/state_dir.h"

namespace vmm {
namespace {

constexpr size_t kMaxClients = 32;
constexpr size_t kMaxPendingOutput = 1 << 20;  // a client this far behind is dropped, not waited for

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Replies never throw on odd bytes: invalid UTF-8 is replaced, not reported by an exception.
std::string line_of(const nlohmann::json& object) {
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

nlohmann::json error_reply(const std::string& cls, const std::string& message) {
  return {{"error", {{"class", cls}, {"message", message}}}};
}

// `keep` holds the directory fd the address may go through until the caller's bind/connect is done.
base::ErrorOr<sockaddr_un> address_of(const std::filesystem::path& path, std::optional<SocketPath>& keep) {
  keep.emplace(TRY(SocketPath::of(path)));
  return keep->address();
}

struct Client {
  int fd = -1;
  control::LineReader in{kMaxRequest};
  std::string out;
  bool closing = false;  // close once `out` is flushed (after quit)
};

}  // namespace

class ControlServer::Impl {
 public:
  Impl(Controller& controller, std::filesystem::path path, nlohmann::json identity, std::string version)
      : m_controller(controller),
        m_path(std::move(path)),
        m_identity(std::move(identity)),
        m_version(std::move(version)) {}

  ~Impl() {
    if (m_sink != 0) m_controller.remove_event_sink(m_sink);
    if (m_thread.joinable()) {
      m_done = true;
      wake();
      m_thread.join();
    }
    // Events the serving thread had not handed out yet (the STOPPED event is emitted just before
    // the server goes away) still reach every client.
    std::vector<std::string> events;
    {
      std::lock_guard guard(m_events_lock);
      events.swap(m_events);
    }
    for (Client& client : m_clients) {
      for (const std::string& line : events) queue(client, line);
      // One last non-blocking flush so watchers see the STOPPED event.
      if (!client.out.empty())
        (void)!::send(client.fd, client.out.data(), client.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(client.fd);
    }
    if (m_listen >= 0) ::close(m_listen);
    if (m_wake[0] >= 0) ::close(m_wake[0]);
    if (m_wake[1] >= 0) ::close(m_wake[1]);
    ::unlink(m_path.c_str());
  }

  base::Result<void, base::Error> start() {
    if (::pipe2(m_wake, O_CLOEXEC | O_NONBLOCK) != 0) return base::fail(errno_text("pipe"));
    m_listen = TRY(listen_private(m_path, 64));
    m_sink = m_controller.add_event_sink([this](const nlohmann::json& event) {
      {
        std::lock_guard guard(m_events_lock);
        m_events.push_back(line_of(event));
      }
      wake();
    });
    m_thread = std::thread([this] {
      security::ThreadRole role(security::Role::Control);
      serve();
    });
    return {};
  }

 private:
  void wake() {
    char byte = 1;
    (void)!::write(m_wake[1], &byte, 1);
  }

  void serve() {
    std::vector<pollfd> fds;
    while (!m_done) {
      fds.clear();
      fds.push_back({m_wake[0], POLLIN, 0});
      fds.push_back({m_listen, POLLIN, 0});
      for (Client& client : m_clients)
        fds.push_back({client.fd, static_cast<short>(POLLIN | (client.out.empty() ? 0 : POLLOUT)), 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents & POLLIN) {
        char drain[256];
        while (::read(m_wake[0], drain, sizeof(drain)) > 0) {
        }
        std::vector<std::string> events;
        {
          std::lock_guard guard(m_events_lock);
          events.swap(m_events);
        }
        for (Client& client : m_clients)
          for (const std::string& line : events) queue(client, line);
      }
      size_t index = 2;
      for (auto it = m_clients.begin(); it != m_clients.end(); ++index) {
        short revents = index < fds.size() && fds[index].fd == it->fd ? fds[index].revents : 0;
        if (!service(*it, revents)) {
          ::close(it->fd);
          it = m_clients.erase(it);
        } else {
          ++it;
        }
      }
      if (fds[1].revents & POLLIN) accept_clients();
    }
  }

  void accept_clients() {
    for (;;) {
      int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;
      if (m_clients.size() >= kMaxClients) {
        std::string line = line_of(error_reply(
            "TooManyClients", "at most " + std::to_string(kMaxClients) + " control connections at a time"));
        (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      Client client;
      client.fd = fd;
      queue(client, line_of({{"vmlaunch",
                              {{"version", {{"protocol", kProtocolVersion}, {"vmlaunch", m_version}}},
                               {"capabilities", {"events"}}}}}));
      m_clients.push_back(std::move(client));
      flush(m_clients.back());
    }
  }

  void queue(Client& client, const std::string& line) {
    if (client.out.size() + line.size() > kMaxPendingOutput) {
      client.closing = true;  // it stopped reading; what it missed cannot be replayed
      client.out.clear();
      return;
    }
    client.out += line;
  }

  // Returns false when the client is gone or must go.
  bool flush(Client& client) {
    while (!client.out.empty()) {
      ssize_t n = ::send(client.fd, client.out.data(), client.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n <= 0) return false;
      client.out.erase(0, static_cast<size_t>(n));
    }
    return !client.closing;
  }

  bool service(Client& client, short revents) {
    if (revents & (POLLERR | POLLNVAL)) return false;
    if (revents & (POLLIN | POLLHUP)) {
      char buffer[16 * 1024];
      ssize_t n = ::recv(client.fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n == 0) return false;  // hangup; a partial line dies with its connection
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
      if (n > 0) take(client, std::string_view(buffer, static_cast<size_t>(n)));
    }
    return flush(client);
  }

  void take(Client& client, std::string_view data) {
    if (client.closing) return;
    client.in.feed(
        data,
        [&](const std::string& line) {
          handle(client, line);
          return !client.closing;  // nothing after `quit` is read
        },
        [&] {
          queue(client, line_of(error_reply("RequestTooLarge", "a request line is at most " +
                                                                   std::to_string(kMaxRequest) + " bytes")));
        });
  }

  void handle(Client& client, const std::string& line) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;  // blank lines are keep-alives
    m_requests++;
    nlohmann::json reply;
    try {
      reply = answer(client, line);
    } catch (const std::exception& error) {
      // Nothing above should throw; if it does, the client hears it and the machine does not.
      reply = error_reply("InternalError", error.what());
    }
    if (reply.contains("error")) m_errors++;
    queue(client, line_of(reply));
  }

  nlohmann::json answer(Client& client, const std::string& line) {
    auto request = control::parse_request(line);
    if (!request.ok()) {
      nlohmann::json reply = error_reply(request.error().cls, request.error().message);
      if (!request.error().id.is_null()) reply["id"] = request.error().id;
      return reply;
    }
    nlohmann::json reply = dispatch(client, request.value());
    if (!request.value().id.is_null()) reply["id"] = request.value().id;
    return reply;
  }

  nlohmann::json dispatch(Client& client, const control::Request& request) {
    const std::string& command = request.command;
    if (command == "status") {
      nlohmann::json status = m_identity;
      status["state"] = state_name(m_controller.state());
      status["accelerator"] = m_controller.accelerator_name();
      status["vcpus"] = m_controller.graph().machine.cpu.count;
      status["memory"] = m_controller.graph().machine.ram_size;
      status["started_at"] = m_controller.started_at();
      return {{"return", status}};
    }
    if (command == "stop") {
      m_controller.stop("stop");
      return {{"return", nlohmann::json::object()}};
    }
    if (command == "powerdown") {
      // The guest's power button: the guest decides (a clean shutdown, normally); `stop` forces.
      auto pressed = m_controller.powerdown();
      if (!pressed.ok()) {
        State state = m_controller.state();
        bool running = state == State::Running || state == State::Paused;
        return error_reply(running ? "Unsupported" : "InvalidState", pressed.error().message);
      }
      return {{"return", nlohmann::json::object()}};
    }
    if (command == "pause" || command == "resume") {
      auto done = command == "pause" ? m_controller.pause() : m_controller.resume();
      if (!done.ok()) {
        State state = m_controller.state();
        bool can_ask = state == State::Running || state == State::Paused;
        return error_reply(can_ask ? "Unsupported" : "InvalidState", done.error().message);
      }
      return {{"return", nlohmann::json::object()}};
    }
    if (command == "snapshot") {
      auto args = control::parse_snapshot_arguments(request);
      if (!args.ok()) return error_reply(args.error().cls, args.error().message);
      auto written = m_controller.snapshot(args.value().dir, args.value().stop);
      if (!written.ok()) {
        State state = m_controller.state();
        bool running = state == State::Running || state == State::Paused;
        return error_reply(running ? "SnapshotFailed" : "InvalidState", written.error().message);
      }
      return {{"return", written.value()}};
    }
    if (command == "query-devices") {
      nlohmann::json graph = nlohmann::json::parse(graph::render_json(m_controller.graph()), nullptr, false);
      if (graph.is_discarded())
        return error_reply("InternalError", "the device graph did not render as JSON");
      return {{"return", graph}};
    }
    if (command == "query-stats") {
      nlohmann::json stats = m_controller.stats();
      stats["control"] = {{"clients", m_clients.size()}, {"requests", m_requests}, {"errors", m_errors}};
      return {{"return", stats}};
    }
    if (command == "query-commands")
      return {{"return",
               {"status", "stop", "powerdown", "pause", "resume", "snapshot", "query-devices", "query-stats",
                "query-commands", "quit"}}};
    if (command == "quit") {
      client.closing = true;  // after this reply is flushed
      return {{"return", nlohmann::json::object()}};
    }
    return error_reply("CommandNotFound", "unknown command (query-commands lists them)");
  }

  Controller& m_controller;
  std::filesystem::path m_path;
  nlohmann::json m_identity;
  std::string m_version;
  int m_listen = -1;
  int m_wake[2] = {-1, -1};
  std::atomic<bool> m_done{false};
  std::thread m_thread;
  size_t m_sink = 0;
  std::list<Client> m_clients;  // serve() thread only
  uint64_t m_requests = 0, m_errors = 0;
  std::mutex m_events_lock;
  std::vector<std::string> m_events;
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
ControlServer::~ControlServer() = default;

base::ErrorOr<std::unique_ptr<ControlServer>> ControlServer::start(Controller& controller,
                                                                   const std::filesystem::path& socket_path,
                                                                   nlohmann::json identity,
                                                                   std::string version) {
  auto impl = std::make_unique<Impl>(controller, socket_path, std::move(identity), std::move(version));
  TRY(impl->start());
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

// ---- client

ControlClient::~ControlClient() {
  if (m_fd >= 0) ::close(m_fd);
}

base::ErrorOr<ControlClient> ControlClient::connect(const std::filesystem::path& socket_path,
                                                    int timeout_ms) {
  std::optional<SocketPath> keep;
  sockaddr_un address = TRY(address_of(socket_path, keep));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return base::fail(errno_text("socket"));
  ControlClient client(fd);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
    return base::fail(errno_text("connect " + socket_path.string()));
  client.m_greeting = TRY(client.read_object(timeout_ms));
  if (!client.m_greeting.contains("vmlaunch"))
    return base::fail(base::Error("not a vmlaunch control socket"));
  return client;
}

base::ErrorOr<nlohmann::json> ControlClient::read_object(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    size_t newline = m_buffer.find('\n');
    if (newline != std::string::npos) {
      nlohmann::json object = nlohmann::json::parse(m_buffer.substr(0, newline), nullptr, false);
      m_buffer.erase(0, newline + 1);
      if (object.is_discarded() || !object.is_object()) return base::fail(base::Error("malformed reply"));
      return object;
    }
    if (m_buffer.size() > (4u << 20)) return base::fail(base::Error("reply too large"));
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return base::fail(base::Error("the machine did not answer in time"));
    pollfd pfd{m_fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char chunk[16 * 1024];
    ssize_t n = ::recv(m_fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return base::fail(base::Error("the machine closed the control connection"));
    m_buffer.append(chunk, static_cast<size_t>(n));
  }
}

base::ErrorOr<nlohmann::json> ControlClient::execute(const std::string& command, int timeout_ms) {
  return execute(command, nullptr, timeout_ms);
}

base::ErrorOr<nlohmann::json> ControlClient::execute(const std::string& command,
                                                     const nlohmann::json& arguments, int timeout_ms) {
  long id = m_next_id++;
  nlohmann::json request = {{"execute", command}, {"id", id}};
  if (!arguments.is_null()) request["arguments"] = arguments;
  std::string line = line_of(request);
  if (::send(m_fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
    return base::fail(errno_text("send"));
  for (;;) {
    nlohmann::json reply = TRY(read_object(timeout_ms));
    auto it = reply.find("id");
    if (it == reply.end() || !it->is_number_integer() || it->get<long>() != id) continue;  // an event
    if (auto error = reply.find("error"); error != reply.end()) {
      // value() would throw on a field of the wrong type; the reply is checked like a request.
      auto text = [&](const char* key) {
        auto it = error->is_object() ? error->find(key) : error->end();
        return it != error->end() && it->is_string() ? it->get<std::string>() : std::string("?");
      };
      return base::fail(base::Error(text("class") + ": " + text("message")));
    }
    auto result = reply.find("return");
    return result == reply.end() ? nlohmann::json::object() : *result;
  }
}

}  // namespace vmm
