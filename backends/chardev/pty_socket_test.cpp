#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "backends/chardev/pty.h"
#include "backends/chardev/socket.h"
#include "backends/chardev/test_receiver.h"

using namespace backends::chardev;

namespace {

std::span<const uint8_t> bytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// Reads exactly n bytes (or what arrives within 5 s).
std::string read_n(int fd, size_t n) {
  std::string out;
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) break;
    char buffer[256];
    ssize_t r = read(fd, buffer, std::min(sizeof(buffer), n - out.size()));
    if (r <= 0) break;
    out.append(buffer, r);
  }
  return out;
}

int tcp_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

template <typename F>
bool eventually(F condition) {
  for (int i = 0; i < 5000; ++i) {
    if (condition()) return true;
    usleep(1000);
  }
  return false;
}

// Unix socket paths must fit sun_path (108 bytes), and Bazel's TEST_TMPDIR under the default output
// base is longer than that, so sockets go in a short private directory under /tmp.
std::string temp_path(const char* stem) {
  static std::string dir = [] {
    char pattern[] = "/tmp/vml-chardev-XXXXXX";
    const char* made = mkdtemp(pattern);
    return std::string(made ? made : "/tmp");
  }();
  return dir + "/" + stem + std::to_string(getpid());
}

}  // namespace

TEST_CASE("pty: path is a terminal and bytes flow both ways") {
  auto pty = PtyBackend::open();
  REQUIRE(pty.ok());
  CHECK((*pty)->path().rfind("/dev/pts/", 0) == 0);
  int user = open((*pty)->path().c_str(), O_RDWR | O_NOCTTY);
  REQUIRE(user >= 0);
  CHECK(isatty(user));
  TestReceiver receiver;
  (*pty)->attach(&receiver);
  REQUIRE(write(user, "typed", 5) == 5);
  CHECK(receiver.wait_for(5) == "typed");
  (*pty)->write(bytes("printed\n"));
  CHECK(read_n(user, 8) == "printed\n");  // raw slave: no CR inserted
  (*pty)->attach(nullptr);
  close(user);
}

TEST_CASE("pty: output with nobody attached never blocks the writer") {
  auto pty = PtyBackend::open();
  REQUIRE(pty.ok());
  std::string chunk(4096, 'x');
  for (int i = 0; i < 64; ++i) (*pty)->write(bytes(chunk));  // far more than the pty buffer
  CHECK((*pty)->dropped() > 0);
}

TEST_CASE("socket tcp server: a client gets output and sends input") {
  SocketBackend::Options options;
  options.server = true;
  auto server = SocketBackend::open(options);
  REQUIRE(server.ok());
  REQUIRE((*server)->port() != 0);
  TestReceiver receiver;
  (*server)->attach(&receiver);
  int client = tcp_connect((*server)->port());
  REQUIRE(client >= 0);
  CHECK(eventually([&] { return (*server)->connected(); }));
  (*server)->write(bytes("login: "));
  CHECK(read_n(client, 7) == "login: ");
  REQUIRE(write(client, "root\n", 5) == 5);
  CHECK(receiver.wait_for(5) == "root\n");
  close(client);
  CHECK(eventually([&] { return !(*server)->connected(); }));
  // The next client is served after the first leaves.
  int second = tcp_connect((*server)->port());
  REQUIRE(second >= 0);
  REQUIRE(write(second, "again", 5) == 5);
  CHECK(receiver.wait_for(10) == "root\nagain");
  (*server)->attach(nullptr);
  close(second);
}

TEST_CASE("socket: output while disconnected is dropped and counted") {
  SocketBackend::Options options;
  options.server = true;
  auto server = SocketBackend::open(options);
  REQUIRE(server.ok());
  (*server)->write(bytes("nobody"));
  CHECK((*server)->dropped() == 6);
}

TEST_CASE("socket unix client reconnects after the server restarts") {
  std::string path = temp_path("chardev-sock");
  SocketBackend::Options server_options;
  server_options.server = true;
  server_options.path = path;
  auto server = SocketBackend::open(server_options);
  REQUIRE(server.ok());
  TestReceiver server_side;
  (*server)->attach(&server_side);

  SocketBackend::Options client_options;
  client_options.path = path;
  client_options.reconnect_seconds = 1;
  auto client = SocketBackend::open(client_options);
  REQUIRE(client.ok());
  CHECK(eventually([&] { return (*server)->connected() && (*client)->connected(); }));
  (*client)->write(bytes("one"));
  CHECK(server_side.wait_for(3) == "one");

  (*server)->attach(nullptr);
  server->reset();  // server goes away
  CHECK(eventually([&] { return !(*client)->connected(); }));
  auto again = SocketBackend::open(server_options);
  REQUIRE(again.ok());
  TestReceiver second_side;
  (*again)->attach(&second_side);
  CHECK(eventually([&] { return (*client)->connected() && (*again)->connected(); }));
  (*client)->write(bytes("two"));
  CHECK(second_side.wait_for(3) == "two");
  (*again)->attach(nullptr);
}

TEST_CASE("socket client without reconnect fails at open when nobody listens") {
  SocketBackend::Options options;
  options.path = temp_path("nobody-here");
  auto client = SocketBackend::open(options);
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().message.find("connect to") != std::string::npos);
}
