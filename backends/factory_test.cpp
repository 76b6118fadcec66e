#include "backends/factory.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "backends/chardev/simple.h"
#include "backends/chardev/socket.h"
#include "backends/net/stream.h"

using backends::FactoryContext;
using config::Node;

namespace {

Node options_map(std::vector<std::pair<std::string, Node>> entries) {
  Node map = Node::map(config::Location{"machine.yaml", 10, 3});
  uint32_t line = 11;
  for (auto& [key, value] : entries) {
    value.set_location(config::Location{"machine.yaml", line, 10});
    map.set(key, std::move(value), config::Location{"machine.yaml", line++, 5});
  }
  return map;
}

std::string temp_dir() {
  const char* dir = getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

}  // namespace

TEST_CASE("factory creates null and ringbuf chardevs") {
  auto null = backends::create_backend("chardev", "c0", "null", Node::null(), {});
  REQUIRE(null.ok());
  CHECK(null->chardev != nullptr);
  CHECK(null->kind == "chardev");
  auto ring = backends::create_chardev("log", "ringbuf", options_map({{"size", Node::integer(16)}}), {});
  REQUIRE(ring.ok());
  auto* typed = dynamic_cast<backends::chardev::RingbufBackend*>(ring->get());
  REQUIRE(typed != nullptr);
  CHECK(typed->capacity() == 16);
}

TEST_CASE("factory creates stdio with the machine's quit callback") {
  FactoryContext context;
  context.quit = [] {};
  auto stdio =
      backends::create_chardev("console", "stdio", options_map({{"escape", Node::boolean(false)}}), context);
  REQUIRE(stdio.ok());
  CHECK(*stdio != nullptr);
}

TEST_CASE("factory file chardev resolves relative paths against base_dir and appends") {
  FactoryContext context;
  context.base_dir = temp_dir();
  std::string name = "factory-console-" + std::to_string(getpid()) + ".log";
  std::filesystem::remove(context.base_dir / name);
  auto file = backends::create_chardev("log", "file", options_map({{"path", Node::string(name)}}), context);
  REQUIRE(file.ok());
  const char text[] = "hello";
  (*file)->write({reinterpret_cast<const uint8_t*>(text), 5});
  file->reset();
  std::ifstream in(context.base_dir / name);
  std::stringstream got;
  got << in.rdbuf();
  CHECK(got.str() == "hello");
}

TEST_CASE("factory: unknown driver names the known ones") {
  auto bad = backends::create_chardev("c0", "telepathy", Node::null(), {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("unknown chardev driver 'telepathy'") != std::string::npos);
  CHECK(bad.error().message.find("stdio") != std::string::npos);
}

TEST_CASE("factory: unknown kind is an error") {
  auto bad = backends::create_backend("teleport", "t0", "x", Node::null(), {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("unknown backend kind 'teleport'") != std::string::npos);
}

TEST_CASE("factory: unknown option is an error with its place") {
  auto bad = backends::create_chardev("c0", "null", options_map({{"colour", Node::string("red")}}), {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("machine.yaml:11:5") != std::string::npos);
  CHECK(bad.error().message.find("unknown option 'colour'") != std::string::npos);
  CHECK(bad.error().message.find("backend 'c0' (chardev null)") != std::string::npos);
}

TEST_CASE("factory: wrong option type and missing required option") {
  auto wrong = backends::create_chardev("c0", "ringbuf", options_map({{"size", Node::string("big")}}), {});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message.find("option 'size': expected an integer") != std::string::npos);
  auto missing = backends::create_chardev("c0", "file", Node::map(), {});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("option 'path': missing") != std::string::npos);
}

TEST_CASE("factory: identity keys in the options are accepted") {
  auto ok = backends::create_chardev("c0", "null", options_map({{"driver", Node::string("null")}}), {});
  CHECK(ok.ok());
}

TEST_CASE("factory: socket needs an address and accepts a tcp server") {
  auto none = backends::create_chardev("s", "socket", Node::map(), {});
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message.find("option 'port'") != std::string::npos);
  auto server = backends::create_chardev(
      "s", "socket", options_map({{"port", Node::integer(0)}, {"server", Node::boolean(true)}}), {});
  CHECK(server.ok());
}

TEST_CASE("factory creates a pty") {
  auto pty = backends::create_chardev("p", "pty", Node::null(), {});
  CHECK(pty.ok());
}

TEST_CASE("factory: block images by driver, with readonly and snapshot") {
  std::string dir = temp_dir() + "/factory-block-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir + "/disk.raw", std::ios::binary);
    out << std::string(1 << 16, 'r');
  }
  FactoryContext context;
  context.base_dir = dir;
  auto raw = backends::create_block("d", "raw", options_map({{"file", Node::string("disk.raw")}}), context);
  REQUIRE(raw.ok());
  CHECK((*raw)->size() == 1 << 16);
  CHECK_FALSE((*raw)->read_only());
  // Closed first: while it is open for writing, the image is locked against other opens.
  (*raw).reset();
  auto ro = backends::create_backend(
      "block", "d", "raw",
      options_map({{"file", Node::string("disk.raw")}, {"readonly", Node::boolean(true)}}), context);
  REQUIRE(ro.ok());
  CHECK(ro->block->read_only());
  auto snap = backends::create_block(
      "d", "raw", options_map({{"file", Node::string("disk.raw")}, {"snapshot", Node::boolean(true)}}),
      context);
  REQUIRE(snap.ok());
  CHECK_FALSE((*snap)->read_only());
  const uint8_t byte = 'x';
  REQUIRE((*snap)->write(0, {&byte, 1}).ok());
  std::ifstream in(dir + "/disk.raw");
  CHECK(in.get() == 'r');
}

TEST_CASE("factory: block errors name the option and the file") {
  auto missing = backends::create_block("d", "qcow2", Node::map(), {});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("option 'file': missing") != std::string::npos);
  auto absent =
      backends::create_block("d", "qcow2", options_map({{"file", Node::string("/nonexistent/x.qcow2")}}), {});
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.error().message.find("/nonexistent/x.qcow2") != std::string::npos);
  CHECK(absent.error().message.find("machine.yaml:11:10") != std::string::npos);
  auto zstd_rw = backends::create_block("d", "zstd", options_map({{"file", Node::string("/x.zst")}}), {});
  REQUIRE_FALSE(zstd_rw.ok());
  CHECK(zstd_rw.error().message.find("read-only") != std::string::npos);
  auto unknown = backends::create_block("d", "vmdk", Node::map(), {});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("known: qcow2, raw, zstd") != std::string::npos);
}

TEST_CASE("factory: rng random and builtin") {
  auto random = backends::create_rng("r", "random", Node::null(), {});
  REQUIRE(random.ok());
  std::vector<uint8_t> buffer(16);
  CHECK((*random)->fill(buffer).ok());
  auto builtin = backends::create_backend("rng", "r", "builtin", Node::null(), {});
  REQUIRE(builtin.ok());
  CHECK(builtin->rng != nullptr);
  auto bad =
      backends::create_rng("r", "random", options_map({{"file", Node::string("/nonexistent/rng")}}), {});
  CHECK_FALSE(bad.ok());
}

TEST_CASE("factory: socket chardev accepts the tcp:HOST:PORT form") {
  auto server = backends::create_chardev(
      "s", "socket",
      options_map({{"path", Node::string("tcp:127.0.0.1:0")}, {"server", Node::boolean(true)}}), {});
  CHECK(server.ok());
  auto bad =
      backends::create_chardev("s", "socket", options_map({{"path", Node::string("tcp:nowhere")}}), {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("tcp:HOST:PORT") != std::string::npos);
}

TEST_CASE("factory: net user with hostfwd rules, and their errors") {
  auto user = backends::create_backend("net", "n0", "user",
                                       options_map({{"hostfwd",
                                                     [] {
                                                       Node list = Node::list();
                                                       list.push_back(Node::string("tcp:127.0.0.1:0-:22"));
                                                       return list;
                                                     }()},
                                                    {"restrict", Node::boolean(true)}}),
                                       {});
  REQUIRE_MESSAGE(user.ok(), (user.ok() ? "" : user.error().message));
  CHECK(user->net != nullptr);
  auto bad = backends::create_net("n0", "user", options_map({{"hostfwd", Node::string("tcp:22")}}), {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("option 'hostfwd'") != std::string::npos);
  auto tap = backends::create_net("n0", "tap", Node::map(), {});
  REQUIRE_FALSE(tap.ok());
  CHECK(tap.error().message.find("option 'ifname': missing") != std::string::npos);
  auto unknown = backends::create_net("n0", "vde", Node::map(), {});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("known: socket, tap, user") != std::string::npos);
}

namespace {

// A server socket for both socket drivers (net `socket`, chardev `socket`), by options.
base::ErrorOr<std::string> open_socket_error(const std::string& kind,
                                             std::vector<std::pair<std::string, Node>> entries) {
  auto made = backends::create_backend(kind, "s0", "socket", options_map(std::move(entries)), {});
  if (made.ok()) return base::fail(base::Error("opened"));
  return made.error().message;
}

}  // namespace

// Every way a socket address can fail is an error value naming the option's place (these used to
// abort with "terminate called after throwing std::system_error" from the net backend).
TEST_CASE("factory: socket backends report bad addresses as errors with their place") {
  // Short on purpose: under Bazel, TEST_TMPDIR alone can pass the 107-byte socket path limit.
  std::string dir = "/tmp/vml-sock-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  // A TCP port in use: a listener of our own holds it.
  auto holder = backends::create_backend(
      "net", "h", "socket", options_map({{"port", Node::integer(0)}, {"server", Node::boolean(true)}}), {});
  REQUIRE(holder.ok());
  auto* stream = dynamic_cast<backends::net::StreamBackend*>(holder->net.get());
  REQUIRE(stream != nullptr);
  int busy_port = stream->port();
  for (std::string kind : {"net", "chardev"}) {
    CAPTURE(kind);
    struct Case {
      std::string name;
      std::vector<std::pair<std::string, Node>> options;
      std::string says;
    };
    std::vector<Case> cases = {
        {"missing dir", {{"path", Node::string("/nonexistent/n.sock")}}, "No such file or directory"},
        {"long path", {{"path", Node::string(dir + "/" + std::string(120, 'x'))}}, "107-byte limit"},
        {"directory", {{"path", Node::string(dir)}}, "is a directory"},
        {"port in use", {{"port", Node::integer(busy_port)}}, "Address already in use"},
        {"unresolvable host",
         {{"host", Node::string("no-such-host.invalid")}, {"port", Node::integer(1)}},
         "resolving no-such-host.invalid"},
    };
    for (auto& c : cases) {
      CAPTURE(c.name);
      c.options.emplace_back("server", Node::boolean(true));
      auto message = open_socket_error(kind, c.options);
      REQUIRE(message.ok());
      CHECK(message->find("machine.yaml:1") == 0);  // the option's line:col
      CHECK(message->find(c.says) != std::string::npos);
    }
  }
  std::filesystem::remove_all(dir);
}

// `path:` naming an existing regular file is refused and the file kept; a stale socket from an
// earlier run is replaced, and the backend removes its own socket when it closes.
TEST_CASE("factory: server sockets remove only sockets") {
  // Not TEST_TMPDIR: Bazel's is too long for a unix socket path.
  std::string dir = "/tmp/vml-keep-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::string file = dir + "/data.txt";
  std::ofstream(file) << "precious";
  for (std::string kind : {"net", "chardev"}) {
    CAPTURE(kind);
    auto message = open_socket_error(kind, {{"path", Node::string(file)}, {"server", Node::boolean(true)}});
    REQUIRE(message.ok());
    CHECK(message->find("exists and is a regular file, not a socket") != std::string::npos);
    std::ifstream in(file);
    std::string content;
    in >> content;
    CHECK(content == "precious");
    std::string sock = dir + "/" + kind + ".sock";
    {
      auto first = backends::create_backend(
          kind, "s0", "socket", options_map({{"path", Node::string(sock)}, {"server", Node::boolean(true)}}),
          {});
      REQUIRE(first.ok());
      CHECK(std::filesystem::is_socket(sock));
    }
    CHECK_FALSE(std::filesystem::exists(sock));
  }
  std::filesystem::remove_all(dir);
}

namespace {

// What `make` writes to stderr (fd 2), read back through a temporary file.
template <typename F>
std::string stderr_of(F make) {
  std::fflush(stderr);
  std::string path = temp_dir() + "/stderr-" + std::to_string(getpid());
  int saved = dup(2);
  FILE* file = std::fopen(path.c_str(), "w+");
  dup2(fileno(file), 2);
  make();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::fclose(file);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::filesystem::remove(path);
  return text;
}

}  // namespace

// `port: 0` lets the kernel choose; without the chosen port printed, nobody could connect.
TEST_CASE("factory: socket servers on port 0 print the port they listen on") {
  for (std::string kind : {"net", "chardev"}) {
    CAPTURE(kind);
    base::ErrorOr<backends::AnyBackend> made = base::fail(base::Error("not run"));
    std::string printed = stderr_of([&] {
      made = backends::create_backend(
          kind, "s0", "socket", options_map({{"port", Node::integer(0)}, {"server", Node::boolean(true)}}),
          {});
    });
    REQUIRE(made.ok());
    uint16_t port = kind == "net"
                        ? dynamic_cast<backends::net::StreamBackend*>(made->net.get())->port()
                        : dynamic_cast<backends::chardev::SocketBackend*>(made->chardev.get())->port();
    CHECK(port != 0);
    CHECK(printed == "vmlaunch: backend 's0' (" + kind +
                         " socket): listening on 127.0.0.1:" + std::to_string(port) + "\n");
  }
}

// A path is quoted in backend errors; a control character in it prints as text.
TEST_CASE("factory: backend errors escape control characters") {
  auto made =
      backends::create_block("d", "raw", options_map({{"file", Node::string("/nonexistent/\x1b[2Jx")}}), {});
  REQUIRE_FALSE(made.ok());
  CHECK(made.error().message.find("/nonexistent/\\e[2Jx") != std::string::npos);
  CHECK(made.error().message.find('\x1b') == std::string::npos);
}
