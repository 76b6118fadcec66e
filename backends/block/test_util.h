// Helpers for the block backend tests: scratch files, deterministic patterns, and running the
// reference tools (qemu-img, qemu-io, zstd) that referee our image handling.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace backends::block::testing {

inline std::string scratch_dir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string base = dir ? dir : "/tmp";
  static int counter = 0;
  std::string path = base + "/blk-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::filesystem::create_directories(path);
  return path;
}

// Runs a shell command; returns its exit status (or -1). Output goes to the test log.
inline int run(const std::string& command) {
  int status = std::system((command + " >&2").c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

inline bool have(const char* tool) {
  return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// Bytes whose value depends on position and a seed: any misplaced byte shows.
inline std::vector<uint8_t> pattern(uint64_t offset, size_t length, uint32_t seed) {
  std::vector<uint8_t> out(length);
  for (size_t i = 0; i < length; ++i) {
    uint64_t x = (offset + i) * 0x9e3779b97f4a7c15ull + seed * 0xbf58476d1ce4e5b9ull;
    out[i] = static_cast<uint8_t>((x >> 29) ^ (x >> 47));
  }
  return out;
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A tiny deterministic PRNG (splitmix64) for reproducible random workloads.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

}  // namespace backends::block::testing
