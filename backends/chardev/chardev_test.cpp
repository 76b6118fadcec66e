#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "backends/chardev/simple.h"
#include "backends/chardev/stdio.h"
#include "backends/chardev/test_receiver.h"

using namespace backends::chardev;

namespace {

std::span<const uint8_t> bytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

std::string filter_all(EscapeFilter& filter, std::string_view input) {
  std::vector<uint8_t> out;
  filter.process(bytes(input), out);
  return std::string(out.begin(), out.end());
}

struct Pipe {
  int read_end = -1, write_end = -1;
  Pipe() {
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    read_end = fds[0];
    write_end = fds[1];
  }
  ~Pipe() {
    if (read_end >= 0) close(read_end);
    if (write_end >= 0) close(write_end);
  }
  void put(std::string_view text) {
    REQUIRE(::write(write_end, text.data(), text.size()) == (ssize_t)text.size());
  }
  std::string take(size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::read(read_end, out.data() + got, n - got);
      if (r <= 0) break;
      got += r;
    }
    out.resize(got);
    return out;
  }
};

std::string temp_path(const char* stem) {
  const char* dir = getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + stem + "." + std::to_string(getpid());
}

}  // namespace

TEST_CASE("escape filter passes ordinary bytes through") {
  EscapeFilter filter(nullptr, nullptr);
  CHECK(filter_all(filter, "hello\r\n") == "hello\r\n");
}

TEST_CASE("escape filter: Ctrl-a x calls quit and sends nothing") {
  int quits = 0;
  EscapeFilter filter([&] { ++quits; }, nullptr);
  CHECK(filter_all(filter, "ab\x01xcd") == "abcd");
  CHECK(quits == 1);
}

TEST_CASE("escape filter: Ctrl-a Ctrl-a sends one literal Ctrl-a") {
  EscapeFilter filter(nullptr, nullptr);
  CHECK(filter_all(filter, "\x01\x01") == "\x01");
}

TEST_CASE("escape filter: escape split across reads") {
  int quits = 0;
  EscapeFilter filter([&] { ++quits; }, nullptr);
  CHECK(filter_all(filter, "a\x01") == "a");
  CHECK(filter_all(filter, "x") == "");
  CHECK(quits == 1);
}

TEST_CASE("escape filter: Ctrl-a with another key sends both, Ctrl-a h shows help") {
  std::string help;
  EscapeFilter filter(nullptr, [&](std::string_view text) { help = text; });
  CHECK(filter_all(filter, "\x01q") == "\x01q");
  CHECK(filter_all(filter, "\x01h") == "");
  CHECK(help.find("exit") != std::string::npos);
}

TEST_CASE("stdio on pipes: input reaches the receiver, output reaches the out fd") {
  Pipe in, out;
  StdioBackend backend({in.read_end, out.write_end, true, true, false, nullptr});
  CHECK_FALSE(backend.terminal_raw());
  TestReceiver receiver;
  backend.attach(&receiver);
  in.put("boot\n");
  CHECK(receiver.wait_for(5) == "boot\n");
  backend.write(bytes("console line\n"));
  CHECK(out.take(13) == "console line\n");
  backend.attach(nullptr);
}

TEST_CASE("stdio never delivers more than can_receive()") {
  Pipe in, out;
  StdioBackend backend({in.read_end, out.write_end, true, true, false, nullptr});
  TestReceiver receiver(4);  // a 4-byte FIFO the "guest" drains slowly
  backend.attach(&receiver);
  std::string text = "0123456789abcdefghij";
  in.put(text);
  std::string got;
  for (int i = 0; i < 2000 && got.size() < text.size(); ++i) {
    if (receiver.fifo_size() == 4) receiver.drain();
    got = receiver.wait_for(0);
    usleep(500);
    receiver.drain();
    got = receiver.wait_for(0);
  }
  CHECK(receiver.wait_for(text.size()) == text);
  CHECK_FALSE(receiver.overflowed());
  CHECK(receiver.largest() <= 4);
  backend.attach(nullptr);
}

TEST_CASE("stdio: Ctrl-a x from the input calls the machine's quit callback") {
  Pipe in, out;
  std::atomic<int> quits{0};
  StdioBackend backend({in.read_end, out.write_end, true, true, false, [&] { ++quits; }});
  TestReceiver receiver;
  backend.attach(&receiver);
  in.put("ls\x01x");
  receiver.wait_for(2);
  for (int i = 0; i < 500 && quits.load() == 0; ++i) usleep(1000);
  CHECK(quits.load() == 1);
  CHECK(receiver.wait_for(2) == "ls");
  backend.attach(nullptr);
}

TEST_CASE("stdio with escape off passes Ctrl-a through") {
  Pipe in, out;
  StdioBackend backend({in.read_end, out.write_end, false, true, false, nullptr});
  TestReceiver receiver;
  backend.attach(&receiver);
  in.put("\x01x");
  CHECK(receiver.wait_for(2) == "\x01x");
  backend.attach(nullptr);
}

TEST_CASE("stdio on a terminal: raw mode while alive, restored afterwards") {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  REQUIRE(master >= 0);
  REQUIRE(grantpt(master) == 0);
  REQUIRE(unlockpt(master) == 0);
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  REQUIRE(slave >= 0);
  termios before;
  REQUIRE(tcgetattr(slave, &before) == 0);
  REQUIRE((before.c_lflag & ICANON) != 0);
  {
    StdioBackend backend({slave, slave, true, true, false, nullptr});
    CHECK(backend.terminal_raw());
    termios during;
    REQUIRE(tcgetattr(slave, &during) == 0);
    CHECK((during.c_lflag & (ICANON | ECHO | ISIG)) == 0);
    CHECK((during.c_oflag & OPOST) != 0);
    // Raw: Ctrl-C arrives as a byte instead of a signal.
    TestReceiver receiver;
    backend.attach(&receiver);
    REQUIRE(::write(master, "\x03", 1) == 1);
    CHECK(receiver.wait_for(1) == "\x03");
    backend.attach(nullptr);
  }
  termios after;
  REQUIRE(tcgetattr(slave, &after) == 0);
  CHECK(after.c_lflag == before.c_lflag);
  CHECK(after.c_iflag == before.c_iflag);
  CHECK(after.c_oflag == before.c_oflag);
  close(slave);
  close(master);
}

TEST_CASE("stdio: EOF on input is not fatal and destruction is prompt") {
  Pipe in, out;
  auto backend = std::make_unique<StdioBackend>(
      StdioBackend::Options{in.read_end, out.write_end, true, true, false, nullptr});
  close(in.write_end);
  in.write_end = -1;
  backend->write(bytes("x"));
  CHECK(out.take(1) == "x");
  backend.reset();
}

TEST_CASE("null discards output") {
  NullBackend backend;
  backend.write(bytes("gone"));
  TestReceiver receiver;
  backend.attach(&receiver);
  backend.attach(nullptr);
  CHECK(receiver.wait_for(0).empty());
}

TEST_CASE("file appends across opens") {
  std::string path = temp_path("chardev-file");
  std::filesystem::remove(path);
  {
    auto file = FileBackend::open(path);
    REQUIRE(file.ok());
    (*file)->write(bytes("first\n"));
  }
  {
    auto file = FileBackend::open(path);
    REQUIRE(file.ok());
    (*file)->write(bytes("second\n"));
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str() == "first\nsecond\n");
  std::filesystem::remove(path);
}

TEST_CASE("file open failure is an error naming the path") {
  auto file = FileBackend::open("/nonexistent-dir/console.log");
  REQUIRE_FALSE(file.ok());
  CHECK(file.error().message.find("/nonexistent-dir/console.log") != std::string::npos);
}

TEST_CASE("ringbuf keeps the last bytes in order") {
  RingbufBackend ring(8);
  ring.write(bytes("abc"));
  auto first = ring.contents();
  CHECK(std::string(first.begin(), first.end()) == "abc");
  ring.write(bytes("defghij"));
  auto wrapped = ring.contents();
  CHECK(std::string(wrapped.begin(), wrapped.end()) == "cdefghij");
  ring.write(bytes("0123456789XYZ"));
  auto big = ring.contents();
  CHECK(std::string(big.begin(), big.end()) == "56789XYZ");
  CHECK(ring.total_written() == 23);
}

TEST_CASE("stdio with signal: true keeps Ctrl-C as a signal for vmlaunch") {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  REQUIRE(master >= 0);
  REQUIRE(grantpt(master) == 0);
  REQUIRE(unlockpt(master) == 0);
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  REQUIRE(slave >= 0);
  {
    StdioBackend backend({slave, slave, true, true, true, nullptr});
    termios during;
    REQUIRE(tcgetattr(slave, &during) == 0);
    CHECK((during.c_lflag & ISIG) != 0);
    CHECK((during.c_lflag & ICANON) == 0);
  }
  close(slave);
  close(master);
}
