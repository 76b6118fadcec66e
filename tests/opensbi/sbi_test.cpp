// Debian's OpenSBI (fw_jump) on the jit accelerator with a two-hart subset of the virt machine
// built right here (ns16550 transmit, CLINT, sifive_test), running an S-mode payload that checks
// the SBI services Linux needs. This tests the CPU against real firmware, independently of hw/.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "accel/jit/jit_accelerator.h"
#include "base/timebase.h"
#include "tests/opensbi/mini_virt.h"
#include "tests/skip.h"

namespace {

constexpr const char* kFirmware = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";
constexpr uint64_t kRam = 0x80000000, kPayload = 0x80200000, kFdt = 0x82200000;
using minivirt::kHarts;
using minivirt::MiniVirt;

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// Boots the firmware and payload with the jit accelerator's `options`; the stats JSON in *stats.
void boot(const std::vector<std::pair<std::string, std::string>>& options, std::string* stats = nullptr) {
  const auto firmware = read_file(kFirmware);
  if (firmware.empty()) VML_SKIP("Debian's opensbi package is not installed");
  const auto payload = read_file("tests/opensbi/payload.bin");
  const auto fdt = read_file("tests/opensbi/virt.dtb");
  REQUIRE(!payload.empty());
  REQUIRE(!fdt.empty());

  base::GuestMemory memory;
  REQUIRE(memory.add_region(kRam, 256u << 20).ok());
  REQUIRE(memory.write(kRam, firmware));
  REQUIRE(memory.write(kPayload, payload));
  REQUIRE(memory.write(kFdt, fdt));
  base::Timebase timebase;
  MiniVirt machine(timebase);
  auto accel = accel::make_jit_accelerator();
  accel::VmSpec spec;
  spec.arch = "riscv64";
  spec.vcpu_count = kHarts;
  spec.timebase = &timebase;
  spec.accel_options = options;
  auto vm = accel->create_vm(spec, memory, machine);
  REQUIRE_MESSAGE(vm.ok(), (vm.ok() ? "" : vm.error().message));
  machine.vm = vm->get();
  std::vector<std::unique_ptr<accel::Vcpu>> vcpus;
  for (unsigned i = 0; i < kHarts; ++i) {
    auto vcpu = (*vm)->create_vcpu(i);
    REQUIRE(vcpu.ok());
    REQUIRE((*vcpu)->set_boot_state(accel::RiscvBootState{kRam, i, kFdt, 0}).ok());
    vcpus.push_back(std::move(*vcpu));
  }
  std::mutex error_mutex;
  std::string error;  // a vCPU's run() error (a lockstep divergence)
  std::vector<std::thread> threads;
  for (auto& vcpu : vcpus)
    threads.emplace_back([&] {
      auto run = vcpu->run();
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!run.ok() && error.empty()) error = run.error().message;
    });
  const bool finished = machine.wait_finished(120);
  for (auto& vcpu : vcpus) vcpu->kick();
  for (auto& t : threads) t.join();
  if (stats) *stats = accel->stats_json();
  const std::string out = machine.output();
  INFO("console:\n" << out);
  CHECK_MESSAGE(error.empty(), error);
  CHECK(finished);
  CHECK(out.find("OpenSBI") != std::string::npos);
  CHECK(out.find("payload: hello from S-mode") != std::string::npos);
  CHECK(out.find("payload: all ok") != std::string::npos);
  CHECK(machine.finisher == 0x5555);  // sifive_test "pass" = SRST shutdown
}

}  // namespace

TEST_CASE("opensbi: fw_jump boots two harts and serves an S-mode payload (timer, IPI, HSM, fences, SRST)") {
  boot({});
}

// The same with the LLVM tier forced and lockstep on: every compiled region of OpenSBI and the
// payload (M and S mode, two harts taking turns) checked against the interpreter at its exit.
TEST_CASE("opensbi: the same under tier llvm with lockstep, 0 divergences") {
  std::string stats;
  boot({{"tier", "llvm"}, {"lockstep", "true"}}, &stats);
  const size_t at = stats.find("\"lockstep_compared\": ");
  REQUIRE(at != std::string::npos);
  const uint64_t compared = std::stoull(stats.substr(at + 21));
  MESSAGE(compared << " region exits compared with the interpreter");
  CHECK(compared > 1000);
}
