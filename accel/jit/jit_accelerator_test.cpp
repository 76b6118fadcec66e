#include "accel/jit/jit_accelerator.h"

#include <doctest/doctest.h>

#include <thread>

namespace {

class NoDevices final : public accel::VmOps {
 public:
  bool mmio_read(uint64_t, std::span<uint8_t>) override { return false; }
  bool mmio_write(uint64_t, std::span<const uint8_t>) override { return false; }
  bool pio_read(uint16_t, std::span<uint8_t>) override { return false; }
  bool pio_write(uint16_t, std::span<const uint8_t>) override { return false; }
};

accel::VmSpec riscv_spec(unsigned harts) {
  accel::VmSpec spec;
  spec.arch = "riscv64";
  spec.vcpu_count = harts;
  return spec;
}

}  // namespace

TEST_CASE("jit accelerator: identity and availability") {
  auto accel = accel::make_jit_accelerator();
  CHECK(accel->name() == "jit");
  CHECK(accel->guest_arches() == std::vector<std::string>{"riscv64"});
  CHECK(accel->probe().usable);
}

TEST_CASE("jit accelerator: rejects other architectures and bad vcpu indices") {
  auto accel = accel::make_jit_accelerator();
  base::GuestMemory memory;
  NoDevices ops;
  accel::VmSpec spec = riscv_spec(1);
  spec.arch = "x86_64";
  CHECK_FALSE(accel->create_vm(spec, memory, ops).ok());
  auto vm = accel->create_vm(riscv_spec(2), memory, ops);
  REQUIRE(vm.ok());
  CHECK((*vm)->create_vcpu(1).ok());
  CHECK_FALSE((*vm)->create_vcpu(1).ok());  // twice
  CHECK_FALSE((*vm)->create_vcpu(2).ok());
  CHECK((*vm)->set_irq_line(64 + 11, true).ok());
  CHECK_FALSE((*vm)->set_irq_line(2 * 64 + 11, true).ok());  // no hart 2
  CHECK_FALSE((*vm)->set_irq_line(4, true).ok());            // not an interrupt bit
  auto vcpu = (*vm)->create_vcpu(0);
  REQUIRE(vcpu.ok());
  CHECK_FALSE((*vcpu)->set_boot_state(accel::X86BootState{}).ok());
}

TEST_CASE("jit accelerator: run() spins guest code until kick()") {
  auto accel = accel::make_jit_accelerator();
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0x80000000, 0x10000).ok());
  REQUIRE(memory.write_le<uint32_t>(0x80000000, 0x0000006f));  // j .
  NoDevices ops;
  base::Timebase timebase;
  accel::VmSpec spec = riscv_spec(1);
  spec.timebase = &timebase;
  auto vm = accel->create_vm(spec, memory, ops);
  REQUIRE(vm.ok());
  auto vcpu = (*vm)->create_vcpu(0);
  REQUIRE(vcpu.ok());
  REQUIRE((*vcpu)->set_boot_state(accel::RiscvBootState{0x80000000, 0, 0, 0}).ok());
  accel::VcpuExit exit;
  std::thread runner([&] { exit = (*vcpu)->run().value(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  (*vcpu)->kick();
  runner.join();
  CHECK(std::holds_alternative<accel::ExitInterrupted>(exit));
}

TEST_CASE("jit accelerator: a kick before run() is not lost") {
  auto accel = accel::make_jit_accelerator();
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0x80000000, 0x1000).ok());
  NoDevices ops;
  auto vm = accel->create_vm(riscv_spec(1), memory, ops);
  REQUIRE(vm.ok());
  auto vcpu = (*vm)->create_vcpu(0);
  REQUIRE(vcpu.ok());
  (*vcpu)->kick();
  auto exit = (*vcpu)->run();  // returns at once instead of running forever
  REQUIRE(exit.ok());
  CHECK(std::holds_alternative<accel::ExitInterrupted>(*exit));
}

TEST_CASE("jit accelerator: cpu features") {
  auto accel = accel::make_jit_accelerator();
  base::GuestMemory memory;
  NoDevices ops;
  accel::VmSpec spec = riscv_spec(1);
  spec.cpu_features = {"-sstc", "-sv48", "+zifencei", "-v"};
  CHECK(accel->create_vm(spec, memory, ops).ok());
  spec.cpu_features = {"+zba"};
  CHECK_FALSE(accel->create_vm(spec, memory, ops).ok());  // the guest would be promised Zba
  spec.cpu_features = {"+v"};
  CHECK_FALSE(accel->create_vm(spec, memory, ops).ok());
  spec.cpu_features = {"sstc"};
  CHECK_FALSE(accel->create_vm(spec, memory, ops).ok());
}

TEST_CASE("jit accelerator: RAM must be 8-byte aligned (host atomics back guest AMOs)") {
  auto accel = accel::make_jit_accelerator();
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0x80000004, 0x1000).ok());
  NoDevices ops;
  CHECK_FALSE(accel->create_vm(riscv_spec(1), memory, ops).ok());
}

TEST_CASE("jit accelerator: vCPU state carries the debug triggers (snapshots, gdb's tdata registers)") {
  auto accel = accel::make_jit_accelerator();
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0x80000000, 0x10000).ok());
  NoDevices ops;
  base::Timebase timebase;
  accel::VmSpec spec = riscv_spec(1);
  spec.timebase = &timebase;
  auto vm = accel->create_vm(spec, memory, ops);
  REQUIRE(vm.ok());
  auto vcpu = (*vm)->create_vcpu(0);
  REQUIRE(vcpu.ok());
  REQUIRE((*vcpu)->set_boot_state(accel::RiscvBootState{0x80000000, 0, 0, 0}).ok());
  auto state = (*vcpu)->get_state();
  REQUIRE(state.ok());
  auto s = std::get<accel::RiscvVcpuState>(*state);
  CHECK(s.tselect == 0);
  CHECK((s.tdata1[0] >> 60) == 2);                       // reset: mcontrol, nothing enabled
  const uint64_t store_m = (6ull << 60) | (1 << 6) | 2;  // mcontrol6, M, store
  const uint64_t debugger = (2ull << 60) | (1ull << 59) | (1 << 12) | (1 << 6) | 4;  // dmode, action 1
  s.tselect = 1;
  s.tdata1[0] = store_m;
  s.tdata2[0] = 0x80001000;
  s.tdata1[1] = debugger;
  s.tdata2[1] = 0x80000100;
  REQUIRE((*vcpu)->set_state(s).ok());
  state = (*vcpu)->get_state();
  REQUIRE(state.ok());
  const auto back = std::get<accel::RiscvVcpuState>(*state);
  CHECK(back.tselect == 1);
  CHECK(back.tdata1[0] == store_m);
  CHECK(back.tdata2[0] == 0x80001000);
  CHECK((back.tdata1[1] & ~(63ull << 53)) == debugger);  // kept (plus the read-only maskmax)
  CHECK(back.tdata2[1] == 0x80000100);
}
