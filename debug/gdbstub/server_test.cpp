// The socket side: listens where told (unix path or TCP port), serves one client at a time, turns
// target stops into stop replies, and treats a vanished client as a detach.
#include "debug/gdbstub/server.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "debug/gdbstub/fake_target.h"
#include "debug/gdbstub/session.h"

namespace {

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof sun.sun_path - 1);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
  return fd;
}

// Reads until `want` has arrived (or the peer closes / 10 s pass: then what came).
std::string read_until(int fd, const std::string& want) {
  std::string got;
  while (got.find(want) == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) break;
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

void send(int fd, const std::string& text) {
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

}  // namespace

TEST_CASE("gdbstub server: addresses are tcp:HOST:PORT or unix:PATH") {
  auto tcp = gdbstub::parse_listen_address("tcp:127.0.0.1:1234");
  REQUIRE(tcp.ok());
  CHECK(tcp.value().host == "127.0.0.1");
  CHECK(tcp.value().port == 1234);
  auto v6 = gdbstub::parse_listen_address("tcp:[::1]:0");
  REQUIRE(v6.ok());
  CHECK(v6.value().host == "::1");
  CHECK(v6.value().to_string() == "tcp:[::1]:0");
  auto unix_socket = gdbstub::parse_listen_address("unix:/tmp/x.sock");
  REQUIRE(unix_socket.ok());
  CHECK(unix_socket.value().path == "/tmp/x.sock");
  for (const char* bad :
       {"", "1234", "tcp:1234", "tcp::1234", "tcp:host:", "tcp:host:99999", "tcp:h:12a", "unix:", "udp:h:1"})
    CHECK_FALSE(gdbstub::parse_listen_address(bad).ok());
  CHECK(gdbstub::parse_listen_address("unix:/" + std::string(200, 'x')).error().message.find("too long") !=
        std::string::npos);
}

TEST_CASE("gdbstub server: one client at a time, stop replies, detach on hang-up") {
  // Under /tmp: a unix socket path must fit 108 bytes, and TEST_TMPDIR under a long Bazel output
  // base (CI's clone) does not.
  char dir[] = "/tmp/gdbstub_server_test.XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/gdb.sock";
  gdbstub::testing::FakeTarget target;
  auto server = gdbstub::Server::start({"", 0, path}, target);
  REQUIRE_MESSAGE(server.ok(), (server.ok() ? "" : server.error().message));
  CHECK(server.value()->address().to_string() == "unix:" + path);

  const int fd = connect_unix(path);
  send(fd, gdbstub::Session::frame("qC"));
  CHECK(read_until(fd, "#").find("$QC1#") != std::string::npos);
  CHECK(target.stopped());  // attaching stopped it

  const int second = connect_unix(path);  // refused while the first is attached
  CHECK(read_until(second, "never").empty());
  ::close(second);

  send(fd, gdbstub::Session::frame("c"));
  for (int i = 0; i < 1000 && target.stopped(); ++i) ::usleep(1000);
  REQUIRE_FALSE(target.stopped());
  REQUIRE(target.listener);
  target.listener({gdbstub::StopEvent::Reason::kBreakpoint, 1});
  CHECK(read_until(fd, "T05thread:2;").find("T05thread:2;") != std::string::npos);

  ::close(fd);  // gone without D: a detach
  for (int i = 0; i < 1000 && !target.detached; ++i) ::usleep(1000);
  CHECK(target.detached);

  // A TCP port of 0 picks a free one and says which.
  gdbstub::testing::FakeTarget other;
  auto tcp = gdbstub::Server::start({"127.0.0.1", 0, ""}, other);
  REQUIRE(tcp.ok());
  CHECK(tcp.value()->address().port != 0);
  server.value().reset();
  std::filesystem::remove_all(dir);
}
