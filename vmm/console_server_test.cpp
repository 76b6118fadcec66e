// The console socket's slow-client path: output a client does not read is kept up to the backlog
// cap, the rest is dropped and reported (once per episode through on_overflow, with every byte
// counted), and what the client does get is the guest's output in order with nothing invented.
#include "vmm/console_server.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct NullChar : backends::CharBackend {
  void write(std::span<const uint8_t>) override {}
  void attach(backends::CharReceiver*) override {}
};

int attach(const std::filesystem::path& socket) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  int small = 4096;  // the kernel buffers little, so the server's backlog fills
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, socket.c_str());
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(::write(fd, "attach\n", 7) == 7);
  char reply[3] = {};
  REQUIRE(::read(fd, reply, 3) == 3);
  REQUIRE(std::string(reply, 3) == "ok\n");
  return fd;
}

// Reads until nothing more arrives for half a second.
std::string drain(int fd) {
  std::string got;
  char buffer[65536];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 500) > 0) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    got.append(buffer, static_cast<size_t>(n));
  }
  return got;
}

}  // namespace

TEST_CASE("console server: a client that does not read loses output beyond the backlog, counted") {
  char dir_template[] = "/tmp/console_server_test.XXXXXX";
  REQUIRE(::mkdtemp(dir_template));
  const std::filesystem::path socket = std::filesystem::path(dir_template) / "console.sock";
  auto tee = std::make_shared<vmm::TeeCharBackend>(std::make_shared<NullChar>(), nullptr);
  std::atomic<uint64_t> dropped{0};
  std::atomic<int> episodes{0};
  auto server = vmm::ConsoleServer::start(tee, socket, [&](uint64_t bytes, bool first) {
    dropped += bytes;
    if (first) episodes++;
  });
  REQUIRE(server.ok());
  int client = attach(socket);

  // Guest output: 4 MiB of numbered lines, four times the backlog, while the client reads nothing.
  std::string written;
  for (int line = 0; written.size() < (4u << 20); ++line) written += "line " + std::to_string(line) + "\n";
  for (size_t at = 0; at < written.size(); at += 4096) {
    size_t n = std::min<size_t>(4096, written.size() - at);
    tee->write({reinterpret_cast<const uint8_t*>(written.data() + at), n});
  }
  CHECK(episodes.load() == 1);
  CHECK(dropped.load() > 0);
  CHECK(dropped.load() <= written.size() - vmm::kMaxConsoleBacklog);

  // Every byte is either delivered or counted as dropped, and what arrives is a prefix of the
  // guest's output (the newest bytes are what goes).
  std::string got = drain(client);
  CHECK(got.size() + dropped.load() == written.size());
  CHECK(written.compare(0, got.size(), got) == 0);

  // The client caught up: the next flood is a new episode.
  for (size_t at = 0; at < written.size(); at += 4096)
    tee->write(
        {reinterpret_cast<const uint8_t*>(written.data() + at), std::min<size_t>(4096, written.size() - at)});
  CHECK(episodes.load() == 2);
  ::close(client);
  server.value().reset();
  std::filesystem::remove_all(dir_template);
}
