#include "debug/gdbstub/sw_breakpoints.h"

#include <doctest/doctest.h>

#include <vector>

namespace gdbstub {
namespace {

// 64 KiB of RAM at guest-physical 0x100000, reached at kVirt (a kernel-style linear map); kAlias is
// a second virtual address of the byte at 0x100010; kMmio translates to device memory (the LAPIC).
class FakeMemory : public SoftwareBreakpoints::Memory {
 public:
  static constexpr uint64_t kRam = 0x100000, kSize = 0x10000, kVirt = 0xffff800000100000ull;
  static constexpr uint64_t kAlias = 0x5000, kMmio = 0xfee00000;
  std::vector<uint8_t> bytes = std::vector<uint8_t>(kSize);
  std::vector<uint64_t> written_at;

  FakeMemory() {
    for (size_t i = 0; i < kSize; ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 1);
  }
  base::ErrorOr<uint64_t> translate(uint64_t va) override {
    if (va >= kVirt && va - kVirt < kSize) return kRam + (va - kVirt);
    if (va == kAlias) return kRam + 0x10;
    if (va == kMmio) return kMmio;
    return base::fail(base::Error("not mapped"));
  }
  uint8_t* ram(uint64_t gpa) override {
    if (gpa < kRam || gpa - kRam >= kSize) return nullptr;
    return &bytes[gpa - kRam];
  }
  void written(uint64_t gpa) override { written_at.push_back(gpa); }
  uint8_t& at(uint64_t offset) { return bytes[offset]; }
};

TEST_CASE("insert plants int3 and keeps the byte; remove puts it back") {
  FakeMemory m;
  SoftwareBreakpoints bps;
  const uint8_t original = m.at(0x20);
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x20).ok());
  CHECK(m.at(0x20) == 0xcc);
  CHECK(bps.planted_at_gpa(FakeMemory::kRam + 0x20));
  CHECK(m.written_at == std::vector<uint64_t>{FakeMemory::kRam + 0x20});
  CHECK(bps.addresses() == std::vector<uint64_t>{FakeMemory::kVirt + 0x20});
  // Inserted twice (gdb may resend): still one, and the saved byte is not the int3.
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x20).ok());
  CHECK(bps.addresses().size() == 1);
  bps.remove(m, FakeMemory::kVirt + 0x20);
  CHECK(m.at(0x20) == original);
  CHECK(bps.empty());
  // Removing one that is not there is no error and touches nothing.
  bps.remove(m, FakeMemory::kVirt + 0x30);
  CHECK(m.at(0x30) == static_cast<uint8_t>(0x30 * 7 + 1));
}

TEST_CASE("reads through the debugger see the original bytes") {
  FakeMemory m;
  SoftwareBreakpoints bps;
  const std::vector<uint8_t> before(m.bytes.begin() + 0x100, m.bytes.begin() + 0x110);
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x100).ok());  // first byte of the range
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x101).ok());  // adjacent
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x10f).ok());  // last byte
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x110).ok());  // just past the range
  std::vector<uint8_t> read(m.bytes.begin() + 0x100, m.bytes.begin() + 0x110);
  CHECK(read[0] == 0xcc);
  bps.mask(FakeMemory::kRam + 0x100, read);
  CHECK(read == before);
  // A read that starts inside: offsets are the read's own.
  std::vector<uint8_t> tail(m.bytes.begin() + 0x10f, m.bytes.begin() + 0x111);
  bps.mask(FakeMemory::kRam + 0x10f, tail);
  CHECK(tail[0] == before[0xf]);
  CHECK(tail[1] == static_cast<uint8_t>(0x110 * 7 + 1));
  // A range at the very top of the address space does not wrap around.
  std::vector<uint8_t> top(4, 0xcc);
  bps.mask(~0ull - 1, top);
  CHECK(top == std::vector<uint8_t>(4, 0xcc));
}

TEST_CASE("a debugger write over a planted byte becomes its original; the int3 stays") {
  FakeMemory m;
  SoftwareBreakpoints bps;
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x40).ok());
  // gdb writes 0x90 0x91 0x92 over 0x3f..0x41 (the accessor copies, then tells the bookkeeping).
  m.at(0x3f) = 0x90;
  m.at(0x40) = 0x91;
  m.at(0x41) = 0x92;
  bps.rewritten(FakeMemory::kRam + 0x3f, std::span<uint8_t>(&m.at(0x3f), 3));
  CHECK(m.at(0x40) == 0xcc);
  std::vector<uint8_t> read(m.bytes.begin() + 0x3f, m.bytes.begin() + 0x42);
  bps.mask(FakeMemory::kRam + 0x3f, read);
  CHECK(read == std::vector<uint8_t>{0x90, 0x91, 0x92});
  bps.remove(m, FakeMemory::kVirt + 0x40);
  CHECK(m.at(0x40) == 0x91);
}

TEST_CASE("two virtual addresses of one byte share it: the original comes back after both go") {
  FakeMemory m;
  SoftwareBreakpoints bps;
  const uint8_t original = m.at(0x10);
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x10).ok());
  REQUIRE(bps.insert(m, FakeMemory::kAlias).ok());  // the byte is 0xcc now: must not become "original"
  CHECK(bps.addresses().size() == 2);
  bps.remove(m, FakeMemory::kVirt + 0x10);
  CHECK(m.at(0x10) == 0xcc);  // still planted for the alias
  bps.remove(m, FakeMemory::kAlias);
  CHECK(m.at(0x10) == original);
}

TEST_CASE("hostile addresses are errors, nothing is written") {
  FakeMemory m;
  SoftwareBreakpoints bps;
  const std::vector<uint8_t> before = m.bytes;
  auto unmapped = bps.insert(m, 0xdead0000);
  REQUIRE_FALSE(unmapped.ok());
  CHECK(unmapped.error().message.find("0xdead0000") != std::string::npos);
  auto mmio = bps.insert(m, FakeMemory::kMmio);
  REQUIRE_FALSE(mmio.ok());
  CHECK(mmio.error().message.find("not guest RAM") != std::string::npos);
  REQUIRE_FALSE(bps.insert(m, ~0ull).ok());
  CHECK(m.bytes == before);
  CHECK(m.written_at.empty());
  CHECK(bps.empty());
}

TEST_CASE("a byte the guest rewrote itself is left as the guest wrote it") {
  FakeMemory m;
  SoftwareBreakpoints bps;
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x50).ok());
  m.at(0x50) = 0x55;  // the guest (a loader, self-modifying code) replaced the int3
  std::vector<uint8_t> read{m.at(0x50)};
  bps.mask(FakeMemory::kRam + 0x50, read);
  CHECK(read[0] == 0x55);  // what is there, not what was there before the guest wrote
  bps.remove(m, FakeMemory::kVirt + 0x50);
  CHECK(m.at(0x50) == 0x55);
}

TEST_CASE("remove_all restores everything; the limit is enforced") {
  FakeMemory m;
  SoftwareBreakpoints bps;
  const std::vector<uint8_t> before = m.bytes;
  for (uint64_t i = 0; i < SoftwareBreakpoints::kMax; ++i) REQUIRE(bps.insert(m, FakeMemory::kVirt + i).ok());
  CHECK_FALSE(bps.insert(m, FakeMemory::kVirt + SoftwareBreakpoints::kMax).ok());
  CHECK(bps.insert(m, FakeMemory::kVirt + 5).ok());  // one already there is fine
  bps.remove_all(m);
  CHECK(m.bytes == before);
  CHECK(bps.empty());
}

TEST_CASE("lift and replant around a snapshot; forget and replant on a new machine") {
  FakeMemory m;
  SoftwareBreakpoints bps;
  const std::vector<uint8_t> before = m.bytes;
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x60).ok());
  REQUIRE(bps.insert(m, FakeMemory::kVirt + 0x61).ok());
  bps.lift(m);
  CHECK(m.bytes == before);  // what a snapshot saves
  std::vector<uint8_t> read{m.at(0x60)};
  bps.mask(FakeMemory::kRam + 0x60, read);
  CHECK(read[0] == before[0x60]);
  bps.replant(m);
  CHECK(m.at(0x60) == 0xcc);
  CHECK(m.at(0x61) == 0xcc);

  // The machine is rebuilt (guest reset): fresh RAM, the same addresses planted again.
  bps.forget();
  CHECK(bps.empty());
  FakeMemory fresh;
  bps.replant(fresh);
  CHECK(fresh.at(0x60) == 0xcc);
  CHECK(fresh.at(0x61) == 0xcc);
  bps.remove_all(fresh);
  CHECK(fresh.at(0x60) == before[0x60]);
}

}  // namespace
}  // namespace gdbstub
