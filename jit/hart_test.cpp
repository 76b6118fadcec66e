// Hart-level tests without assembled programs: hostile (random) code must never crash the VMM,
// and the run/kick/wfi plumbing behaves.
#include "jit/hart.h"

#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <thread>

#include "jit/mmu.h"
#include "jit/test_support.h"

namespace {

using jit::testing::kBase;
using jit::testing::NoDevices;

}  // namespace

TEST_CASE("hart: random instruction streams never crash the host") {
  // Random words as code, trap vector and page tables; the prologue points mtvec into the random
  // bytes so traps keep executing garbage (which may rewrite satp, mstatus, PMP, ...).
  for (uint32_t seed = 1; seed <= 24; ++seed) {
    base::GuestMemory memory;
    auto region = memory.add_region(kBase, 1 << 20);
    REQUIRE(region.ok());
    std::mt19937 rng(seed);
    for (uint64_t off = 0; off < (1 << 20); off += 4) (void)memory.write_le<uint32_t>(kBase + off, rng());
    if (seed % 2 == 0) {  // half the seeds: only compressed-looking halfwords in the first page
      for (uint64_t off = 0x100; off < 0x1000; off += 2)
        (void)memory.write_le<uint16_t>(kBase + off, static_cast<uint16_t>(rng() & 0xfffc) | (rng() & 3));
    }
    // lui t0, 0x80000; addi t0, t0, 0x100; csrw mtvec, t0; jr t0
    const uint32_t prologue[] = {0x800002b7, 0x10028293, 0x30529073, 0x00028067};
    for (int i = 0; i < 4; ++i) (void)memory.write_le<uint32_t>(kBase + 4 * i, prologue[i]);
    base::Timebase timebase;
    NoDevices ops;
    jit::Platform platform(ops, timebase);
    platform.add_ram(*region);
    jit::Hart hart(platform, 0);
    hart.reset(kBase, 0, 0, 0);
    for (int round = 0; round < 20; ++round) hart.step(20000);
    CHECK(hart.instret() > 0);
  }
}

TEST_CASE("hart: kick() ends run(), and a kick before run() is not lost") {
  base::GuestMemory memory;
  auto region = memory.add_region(kBase, 0x1000);
  REQUIRE(region.ok());
  REQUIRE(memory.write_le<uint32_t>(kBase, 0x10500073));      // wfi
  REQUIRE(memory.write_le<uint32_t>(kBase + 4, 0xffdff06f));  // j -4
  base::Timebase timebase;
  NoDevices ops;
  jit::Platform platform(ops, timebase);
  platform.add_ram(*region);
  jit::Hart hart(platform, 0);
  hart.reset(kBase, 0, 0, 0);
  std::thread runner([&] { hart.run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  hart.kick();
  runner.join();  // returns although the guest sleeps in wfi with nothing enabled
  hart.kick();
  hart.run();  // returns at once
  CHECK(hart.pc() >= kBase);
}

TEST_CASE("hart: an external interrupt wakes wfi and is taken when enabled") {
  base::GuestMemory memory;
  auto region = memory.add_region(kBase, 0x1000);
  REQUIRE(region.ok());
  // li t0, 0x800; csrw mie, t0 (MEIE); auipc t1, 0; addi t1, t1, 52 (= base + 0x40);
  // csrw mtvec, t1; csrsi mstatus, 8; wfi; j .
  const uint32_t code[] = {0x000012b7, 0x8002829b, 0x30429073, 0x00000317, 0x03430313,
                           0x30531073, 0x30046073, 0x10500073, 0x0000006f};
  for (size_t i = 0; i < std::size(code); ++i) REQUIRE(memory.write_le<uint32_t>(kBase + 4 * i, code[i]));
  REQUIRE(memory.write_le<uint32_t>(kBase + 0x40, 0x0000006f));  // handler: j .
  base::Timebase timebase;
  NoDevices ops;
  jit::Platform platform(ops, timebase);
  platform.add_ram(*region);
  jit::Hart hart(platform, 0);
  hart.reset(kBase, 0, 0, 0);
  std::thread runner([&] { hart.run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  hart.set_irq(11, true);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  hart.kick();
  runner.join();
  uint64_t mcause = 0;
  REQUIRE(hart.read_csr(0x342, &mcause));
  CHECK(mcause == ((1ull << 63) | 11));
  CHECK(hart.pc() == kBase + 0x40);
}

TEST_CASE("hart: without Sstc, stimecmp is an illegal CSR; without Sv48, satp ignores mode 9") {
  base::GuestMemory memory;
  auto region = memory.add_region(kBase, 0x1000);
  REQUIRE(region.ok());
  REQUIRE(memory.write_le<uint32_t>(kBase, 0x18051073));      // csrw satp, a0
  REQUIRE(memory.write_le<uint32_t>(kBase + 4, 0x18059073));  // csrw satp, a1
  REQUIRE(memory.write_le<uint32_t>(kBase + 8, 0x14d02573));  // csrr a0, stimecmp
  base::Timebase timebase;
  NoDevices ops;
  jit::CpuConfig config;
  config.sstc = false;
  config.sv48 = false;
  jit::Platform platform(ops, timebase, config);
  platform.add_ram(*region);
  jit::Hart hart(platform, 0);
  hart.reset(kBase, 0, 0, 0);
  hart.set_x(10, (9ull << 60) | 0x80001);  // Sv48: not implemented here, the write is dropped
  hart.set_x(11, (8ull << 60) | 0x80001);  // Sv39
  uint64_t satp = 0;
  hart.step(1);
  REQUIRE(hart.read_csr(0x180, &satp));
  CHECK(satp == 0);
  hart.step(1);
  REQUIRE(hart.read_csr(0x180, &satp));
  CHECK(satp == ((8ull << 60) | 0x80001));
  hart.step(1);  // M-mode, so satp does not apply to this fetch
  uint64_t mcause = 0, mtval = 0;
  REQUIRE(hart.read_csr(0x342, &mcause));
  REQUIRE(hart.read_csr(0x343, &mtval));
  CHECK(mcause == 2);
  CHECK(mtval == 0x14d02573);
  uint64_t value = 0;
  CHECK_FALSE(hart.read_csr(0x14d, &value));
}

TEST_CASE("hart: code rewritten behind the hart's back (DMA, other harts) shows after fence.i") {
  base::GuestMemory memory;
  auto region = memory.add_region(kBase, 0x1000);
  REQUIRE(region.ok());
  REQUIRE(memory.write_le<uint32_t>(kBase, 0x0000100f));          // 0x000: fence.i
  REQUIRE(memory.write_le<uint32_t>(kBase + 4, 0x0fc0006f));      // 0x004: j 0x100
  REQUIRE(memory.write_le<uint32_t>(kBase + 0x100, 0x00100513));  // 0x100: li a0, 1
  REQUIRE(memory.write_le<uint32_t>(kBase + 0x104, 0xefdff06f));  // 0x104: j 0x000
  base::Timebase timebase;
  NoDevices ops;
  jit::Platform platform(ops, timebase);
  platform.add_ram(*region);
  jit::Hart hart(platform, 0);
  hart.reset(kBase + 0x100, 0, 0, 0);
  hart.step(1);
  CHECK(hart.x(10) == 1);
  // A device (or another hart) rewrites the instruction; this hart's store tracking cannot see it.
  REQUIRE(memory.write_le<uint32_t>(kBase + 0x100, 0x00200513));  // li a0, 2
  hart.step(4);                                                   // j 0x000; fence.i; j 0x100; li a0, 2
  CHECK(hart.x(10) == 2);
  // And an unchanged page keeps working after another fence.i.
  hart.step(4);
  CHECK(hart.x(10) == 2);
  CHECK(hart.pc() == kBase + 0x104);
}

TEST_CASE("hart: the MMU's C entry points load, store, and report faults as pending traps") {
  base::GuestMemory memory;
  auto region = memory.add_region(kBase, 0x2000);
  REQUIRE(region.ok());
  base::Timebase timebase;
  NoDevices ops;
  jit::Platform platform(ops, timebase);
  platform.add_ram(*region);
  jit::Hart hart(platform, 0);
  hart.reset(kBase, 0, 0, 0);
  jit::CpuState state = hart.state();
  state.mtvec = kBase + 0x100;
  hart.set_state(state);

  const uint64_t value = 0x1122334455667788;
  CHECK(jit_mmu_store(&hart, kBase + 0xffd, &value, 8) == 1);  // misaligned, across a page
  uint64_t back = 0;
  CHECK(jit_mmu_load(&hart, kBase + 0xffd, &back, 8) == 1);
  CHECK(back == value);
  CHECK(memory.read_le<uint8_t>(kBase + 0xffd).value_or(0) == 0x88);

  CHECK(jit_mmu_load(&hart, 0x1000, &back, 4) == 0);  // no RAM, no device
  CHECK(jit_mmu_load(&hart, kBase, &back, 3) == 0);   // not an access size
  CHECK(jit_mmu_amo(&hart, 0xffff, 1, 2, 3) == 0);    // not an atomic op
  CHECK(jit_mmu_load(&hart, 0x1000, &back, 4) == 0);
  jit_take_pending_trap(&hart);
  CHECK(hart.pc() == kBase + 0x100);
  CHECK(hart.state().mcause == jit::kLoadAccessFault);
  CHECK(hart.state().mtval == 0x1000);
  CHECK(hart.state().mepc == kBase);
}
