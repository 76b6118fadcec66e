#include "hw/riscv/clint.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace {

struct Lines {
  std::mutex lock;
  std::map<std::pair<unsigned, unsigned>, bool> level;
  hw::riscv::HartIrqSink sink() {
    return [this](unsigned hart, unsigned bit, bool l) {
      std::lock_guard g(lock);
      level[{hart, bit}] = l;
    };
  }
  bool get(unsigned hart, unsigned bit) {
    std::lock_guard g(lock);
    return level[{hart, bit}];
  }
};

uint64_t read64(hw::Device& d, uint64_t off) {
  uint8_t b[8];
  d.read(off, b);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}
void write64(hw::Device& d, uint64_t off, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  d.write(off, b);
}
void write32(hw::Device& d, uint64_t off, uint32_t v) {
  uint8_t b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  d.write(off, b);
}
uint32_t read32(hw::Device& d, uint64_t off) {
  uint8_t b[4];
  d.read(off, b);
  return b[0] | b[1] << 8 | b[2] << 16 | uint32_t(b[3]) << 24;
}

}  // namespace

TEST_CASE("clint: msip drives each hart's MSIP line") {
  base::Timebase tb;
  Lines lines;
  hw::riscv::Clint clint(2, tb, lines.sink());
  write32(clint, 4, 1);
  CHECK(lines.get(1, hw::riscv::kMipMsip));
  CHECK_FALSE(lines.get(0, hw::riscv::kMipMsip));
  CHECK(read32(clint, 4) == 1);
  write32(clint, 4, 0);
  CHECK_FALSE(lines.get(1, hw::riscv::kMipMsip));
}

TEST_CASE("clint: mtime reads the shared timebase and advances") {
  base::Timebase tb;
  Lines lines;
  hw::riscv::Clint clint(1, tb, lines.sink());
  uint64_t a = read64(clint, hw::riscv::Clint::kMtime);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  uint64_t b = read64(clint, hw::riscv::Clint::kMtime);
  CHECK(b > a);
  CHECK(b <= tb.now());
  // 32-bit halves agree with the 64-bit view.
  uint32_t hi = read32(clint, hw::riscv::Clint::kMtime + 4);
  CHECK(hi == (tb.now() >> 32));
}

TEST_CASE("clint: mtimecmp in the past raises MTIP at once; moving it ahead lowers it") {
  base::Timebase tb;
  Lines lines;
  hw::riscv::Clint clint(1, tb, lines.sink());
  CHECK(read64(clint, 0x4000) == UINT64_MAX);
  write64(clint, 0x4000, 0);
  CHECK(lines.get(0, hw::riscv::kMipMtip));
  write64(clint, 0x4000, UINT64_MAX);
  CHECK_FALSE(lines.get(0, hw::riscv::kMipMtip));
}

TEST_CASE("clint: a future mtimecmp fires when mtime reaches it") {
  base::Timebase tb;
  Lines lines;
  hw::riscv::Clint clint(2, tb, lines.sink());
  uint64_t deadline = tb.now() + tb.frequency_hz() / 100;  // 10 ms
  write64(clint, 0x4008, deadline);
  CHECK_FALSE(lines.get(1, hw::riscv::kMipMtip));
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!lines.get(1, hw::riscv::kMipMtip) && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(lines.get(1, hw::riscv::kMipMtip));
  CHECK(tb.now() >= deadline);
  CHECK_FALSE(lines.get(0, hw::riscv::kMipMtip));
}

TEST_CASE("clint: 32-bit halves of mtimecmp combine") {
  base::Timebase tb;
  Lines lines;
  hw::riscv::Clint clint(1, tb, lines.sink());
  write32(clint, 0x4004, 0x12345678);
  write32(clint, 0x4000, 0x9abcdef0);
  CHECK(read64(clint, 0x4000) == 0x123456789abcdef0ull);
}

TEST_CASE("clint: accesses outside the harts' registers are ignored") {
  base::Timebase tb;
  Lines lines;
  hw::riscv::Clint clint(1, tb, lines.sink());
  write32(clint, 4, 1);       // hart 1 does not exist
  write64(clint, 0x4008, 0);  // nor its mtimecmp
  write64(clint, 0x4001, 0);  // misaligned
  CHECK(lines.level.size() == 0);
  CHECK(read32(clint, 0x8000) == 0);
}
