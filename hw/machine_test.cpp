#include "hw/machine.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "graph/graph.h"
#include "hw/device_model.h"

namespace {

// A vCPU that runs `steps` times (each "run" returns ExitInterrupted after a short while or at a
// kick), then returns `final_exit`.
struct FakeVcpu : accel::Vcpu {
  int steps;
  accel::VcpuExit final_exit;
  std::atomic<bool> kicked{false};
  std::atomic<int> runs{0};
  bool block_until_kick = false;
  FakeVcpu(int s, accel::VcpuExit e, bool block = false) : steps(s), final_exit(e), block_until_kick(block) {}
  accel::AccelResult<void> set_boot_state(const accel::BootState&) override { return {}; }
  accel::AccelResult<accel::VcpuExit> run() override {
    ++runs;
    if (block_until_kick) {
      while (!kicked.exchange(false)) std::this_thread::sleep_for(std::chrono::microseconds(100));
      return accel::VcpuExit{accel::ExitInterrupted{}};
    }
    if (steps-- > 0) return accel::VcpuExit{accel::ExitInterrupted{}};
    return final_exit;
  }
  void kick() override { kicked = true; }
};

struct FailingVcpu : accel::Vcpu {
  accel::AccelResult<void> set_boot_state(const accel::BootState&) override { return {}; }
  accel::AccelResult<accel::VcpuExit> run() override {
    return base::fail(accel::AccelError("illegal state"));
  }
  void kick() override {}
};

}  // namespace

TEST_CASE("power controller: the first request wins and wakes wait()") {
  hw::PowerController power;
  int stops = 0;
  power.set_on_stop([&] { ++stops; });
  CHECK_FALSE(power.stopping());
  power.power_off(3);
  power.reset();
  CHECK(power.stopping());
  auto outcome = power.wait();
  CHECK(outcome.kind == hw::RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 3);
  CHECK(stops == 1);
}

TEST_CASE("run_vcpus: a shutdown exit powers off and stops the other vCPUs") {
  std::vector<std::unique_ptr<accel::Vcpu>> vcpus;
  vcpus.push_back(std::make_unique<FakeVcpu>(5, accel::ExitShutdown{7}));
  vcpus.push_back(std::make_unique<FakeVcpu>(0, accel::ExitInterrupted{}, /*block=*/true));
  hw::PowerController power;
  auto outcome = hw::run_vcpus(vcpus, power);
  CHECK(outcome.kind == hw::RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 7);
}

TEST_CASE("run_vcpus: a device's power-off request stops running vCPUs") {
  std::vector<std::unique_ptr<accel::Vcpu>> vcpus;
  vcpus.push_back(std::make_unique<FakeVcpu>(0, accel::ExitInterrupted{}, true));
  hw::PowerController power;
  std::thread device([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    power.power_off(0);
  });
  auto outcome = hw::run_vcpus(vcpus, power);
  device.join();
  CHECK(outcome.kind == hw::RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 0);
}

TEST_CASE("run_vcpus: reset, accelerator errors and all-halted are reported") {
  {
    std::vector<std::unique_ptr<accel::Vcpu>> vcpus;
    vcpus.push_back(std::make_unique<FakeVcpu>(2, accel::ExitReset{}));
    hw::PowerController power;
    CHECK(hw::run_vcpus(vcpus, power).kind == hw::RunOutcome::Kind::Reset);
  }
  {
    std::vector<std::unique_ptr<accel::Vcpu>> vcpus;
    vcpus.push_back(std::make_unique<FailingVcpu>());
    hw::PowerController power;
    auto outcome = hw::run_vcpus(vcpus, power);
    CHECK(outcome.kind == hw::RunOutcome::Kind::Error);
    CHECK(outcome.message.find("illegal state") != std::string::npos);
  }
  {
    std::vector<std::unique_ptr<accel::Vcpu>> vcpus;
    vcpus.push_back(std::make_unique<FakeVcpu>(0, accel::ExitHalt{}));
    vcpus.push_back(std::make_unique<FakeVcpu>(3, accel::ExitHalt{}));
    hw::PowerController power;
    auto outcome = hw::run_vcpus(vcpus, power);
    CHECK(outcome.kind == hw::RunOutcome::Kind::Error);
    CHECK(outcome.message.find("halted") != std::string::npos);
  }
}

TEST_CASE("machine registry: unknown types list the known ones") {
  hw::register_machine(
      "test/fake",
      [](const graph::Graph&, hw::MachineContext&) -> base::ErrorOr<std::unique_ptr<hw::Machine>> {
        return base::fail(base::Error("fake cannot build"));
      });
  auto types = hw::machine_types();
  CHECK(std::find(types.begin(), types.end(), "test/fake") != types.end());
  hw::MachineContext context;
  graph::Graph g;
  g.machine.arch = "arm";
  g.machine.type = "none";
  auto unknown = hw::build_machine(g, context);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("test/fake") != std::string::npos);
  auto fake = hw::build_machine_of_type("test/fake", g, context);
  REQUIRE_FALSE(fake.ok());
  CHECK(fake.error().message == "fake cannot build");
}

TEST_CASE("bus: routes MMIO and port I/O to separate address spaces") {
  struct Reg : hw::Device {
    uint8_t value = 0;
    std::string_view name() const override { return "reg"; }
    void read(uint64_t, std::span<uint8_t> d) override { d[0] = value; }
    void write(uint64_t, std::span<const uint8_t> d) override { value = d[0]; }
  };
  hw::Bus bus;
  auto reg = std::make_shared<Reg>();
  REQUIRE(bus.pio().insert(0x3f8, 8, reg).ok());
  uint8_t v = 9;
  CHECK(bus.pio_write(0x3f8, {&v, 1}));
  CHECK_FALSE(bus.mmio_write(0x3f8, {&v, 1}));
  uint8_t out = 0;
  CHECK(bus.pio_read(0x3f9, {&out, 1}));
  CHECK(out == 9);
}

TEST_CASE("device models: registered factories are found by driver") {
  hw::register_device_model("test-device-mmio",
                            [](hw::DeviceEnv&) -> base::ErrorOr<std::shared_ptr<hw::Device>> {
                              return std::shared_ptr<hw::Device>();
                            });
  CHECK(hw::find_device_model("test-device-mmio") != nullptr);
  CHECK(hw::find_device_model("no-such-device") == nullptr);
}
