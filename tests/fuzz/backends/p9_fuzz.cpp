// libFuzzer target: the 9P2000.L server (backends/fs/p9_server) against a hostile guest's message
// stream. The input is a sequence of 9P messages, each taken at its own size[4] field (clamped to
// what is left), served one after another in one session on a small share; byte 0 picks a
// read-only or writable share and the reply room. The server must answer every message without
// crashing, writing outside its reply buffer, or acting outside the share (the sandbox's
// directory next to the share is checked to stay untouched). Each session is also saved and loaded
// into a fresh server (snapshots), and the input itself loaded as a saved session.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "backends/fs/p9_server.h"

namespace fs = std::filesystem;

namespace {

struct Sandbox {
  fs::path root;   // holds share/ and outside/
  fs::path share;  // what the server exports
  fs::path outside;
  int inputs = 0;

  Sandbox() {
    char pattern[] = "/tmp/p9-fuzz-XXXXXX";
    root = mkdtemp(pattern);
    share = root / "share";
    outside = root / "outside";
    fs::create_directories(outside);
    std::ofstream(outside / "secret") << "must not change\n";
    refill();
  }
  // The share starts each batch the same: a file, a directory with a file, a symlink out.
  void refill() {
    std::error_code ignored;
    fs::remove_all(share, ignored);
    fs::create_directories(share / "dir");
    std::ofstream(share / "file") << "hello from the share\n";
    std::ofstream(share / "dir" / "inner") << "inner file\n";
    fs::create_symlink("../outside/secret", share / "escape", ignored);
  }
  void check_outside() const {
    std::ifstream in(outside / "secret");
    std::string line;
    std::getline(in, line);
    if (line != "must not change" || std::distance(fs::directory_iterator(outside), {}) != 1) {
      std::fprintf(stderr, "p9_fuzz: the server changed a file outside its share\n");
      std::abort();
    }
  }
};

uint32_t load_le32(const uint8_t* p) {
  return p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Sandbox* sandbox = new Sandbox();
  if (size < 1) return 0;
  // Every 256 inputs the share is rebuilt, so files the fuzzer writes cannot fill the disk.
  if (++sandbox->inputs % 256 == 0) sandbox->refill();
  const bool read_only = data[0] & 1;
  const size_t room = (data[0] & 2) ? 64 * 1024 : 8 * 1024 + (data[0] >> 2);
  auto server = backends::fs::P9Server::open(sandbox->share.string(), read_only);
  if (!server) std::abort();
  // The reply buffer sits inside a larger one whose guard bytes must stay untouched.
  std::vector<uint8_t> reply(room + 64, 0xa5);
  std::span<uint8_t> offered(reply.data() + 32, room);
  size_t at = 1;
  while (at < size) {
    size_t left = size - at;
    size_t length = left >= 4 ? std::min<size_t>(std::max<uint32_t>(load_le32(data + at), 1), left) : left;
    size_t answered = (*server)->serve({data + at, length}, offered);
    if (answered > room) std::abort();
    for (size_t i = 0; i < 32; ++i)
      if (reply[i] != 0xa5 || reply[32 + room + i] != 0xa5) std::abort();
    at += length;
  }
  // Snapshots: the session just built is saved and loaded into a fresh server, and the raw input is
  // loaded as a (hostile) saved session. Loading may refuse; it must not crash or leave the share.
  if (!(*server)->cannot_save()) {
    auto restored = backends::fs::P9Server::open(sandbox->share.string(), read_only);
    if (!restored) std::abort();
    if ((*restored)->load_state((*server)->save_state()).ok() &&
        (*restored)->fid_count() != (*server)->fid_count())
      std::abort();
  }
  {
    auto hostile = backends::fs::P9Server::open(sandbox->share.string(), read_only);
    if (!hostile) std::abort();
    (void)(*hostile)->load_state({data + 1, size - 1});
  }
  (*server)->reset();
  sandbox->check_outside();
  return 0;
}
