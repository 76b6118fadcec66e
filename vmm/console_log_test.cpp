#include "vmm/console_log.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::span<const uint8_t> bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

std::filesystem::path fresh_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("console_log_test." + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("the console log appends and never grows past its cap: one rotation keeps the previous window") {
  auto dir = fresh_dir();
  auto log = vmm::ConsoleLog::open(dir / "console.log", 4096);
  REQUIRE(log.ok());
  std::string line(100, 'a');
  line.back() = '\n';
  for (int i = 0; i < 100; ++i) log.value()->append(bytes(line));  // 10000 bytes through a 4096-byte cap
  CHECK(log.value()->written() == 10000);
  CHECK(log.value()->rotations() == 2);
  auto current = std::filesystem::file_size(dir / "console.log");
  auto previous = std::filesystem::file_size(dir / "console.log.1");
  CHECK(current <= 4096);
  CHECK(previous <= 4096);
  CHECK(current + previous >= 4096);  // the latest output is all there, in one file or the other
  CHECK(read_text(dir / "console.log").substr(0, 100) == line);  // rotation falls between writes
  std::filesystem::remove_all(dir);
}

TEST_CASE("the console log appends to what an earlier run left, counting it against the cap") {
  auto dir = fresh_dir();
  { std::ofstream(dir / "console.log") << std::string(4000, 'x'); }
  auto log = vmm::ConsoleLog::open(dir / "console.log", 4096);
  REQUIRE(log.ok());
  log.value()->append(bytes(std::string(200, 'y')));
  CHECK(log.value()->rotations() == 1);
  CHECK(read_text(dir / "console.log") == std::string(200, 'y'));
  CHECK(read_text(dir / "console.log.1") == std::string(4000, 'x'));
  std::filesystem::remove_all(dir);
}

TEST_CASE("the tee copies guest output to the log and hands input attachment through") {
  struct Sink : backends::CharBackend {
    std::string seen;
    backends::CharReceiver* receiver = nullptr;
    void write(std::span<const uint8_t> data) override { seen.append(data.begin(), data.end()); }
    void attach(backends::CharReceiver* r) override { receiver = r; }
  };
  struct Receiver : backends::CharReceiver {
    size_t can_receive() override { return 1; }
    void receive(std::span<const uint8_t>) override {}
  };
  auto dir = fresh_dir();
  auto log = vmm::ConsoleLog::open(dir / "console.log", 1 << 20);
  REQUIRE(log.ok());
  auto sink = std::make_shared<Sink>();
  vmm::TeeCharBackend tee(sink, log.value());
  tee.write(bytes("hello\n"));
  Receiver receiver;
  tee.attach(&receiver);
  CHECK(sink->seen == "hello\n");
  CHECK(sink->receiver == &receiver);
  CHECK(read_text(dir / "console.log") == "hello\n");
  std::filesystem::remove_all(dir);
}
