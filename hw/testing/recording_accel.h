// An accelerator for machine-builder tests: it records what a machine asks of it (the VmSpec, RAM
// regions, boot states, interrupt lines, MSIs, IOAPIC routes) and runs no guest. Instead each
// vCPU's run() calls `on_run` (a few bus accesses standing in for a tiny guest), then reports
// ExitInterrupted, so hw::run_vcpus keeps calling it until the machine stops.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "accel/accelerator.h"

namespace hw::testing {

class RecordingAccel : public accel::Accelerator {
 public:
  struct State {
    accel::VmSpec spec;
    accel::VmOps* ops = nullptr;
    const base::GuestMemory* memory = nullptr;
    std::vector<base::GuestMemory::Region> mapped;
    std::map<unsigned, accel::BootState> boot;  // by vCPU index
    unsigned vcpus = 0;
    std::map<uint32_t, bool> irq;   // last level of each line
    std::map<uint32_t, int> rises;  // rising edges of each line
    std::vector<std::pair<uint64_t, uint32_t>> msis;
    std::vector<std::vector<accel::Vm::IoapicRoute>> route_sets;
    // What vCPU `index` does through the bus each time it runs. Unset: nothing.
    std::function<void(accel::VmOps& ops, unsigned index)> on_run;
  };

  // `arch`: the guest architecture this fake claims ("x86_64", "riscv64").
  explicit RecordingAccel(std::string arch) : m_arch(std::move(arch)) {}

  // Shared with every Vm and Vcpu made, so it stays readable after the machine is gone.
  std::shared_ptr<State> state = std::make_shared<State>();

  std::string_view name() const override { return "fake"; }
  std::vector<std::string> guest_arches() const override { return {m_arch}; }
  accel::Availability probe() const override { return {true, "fake"}; }
  accel::AccelResult<std::unique_ptr<accel::Vm>> create_vm(const accel::VmSpec& spec,
                                                           const base::GuestMemory& memory,
                                                           accel::VmOps& ops) override {
    state->spec = spec;
    state->memory = &memory;
    state->ops = &ops;
    return std::unique_ptr<accel::Vm>(std::make_unique<Vm>(state));
  }

 private:
  class Vcpu final : public accel::Vcpu {
   public:
    Vcpu(std::shared_ptr<State> state, unsigned index) : m_state(std::move(state)), m_index(index) {}
    accel::AccelResult<void> set_boot_state(const accel::BootState& boot) override {
      m_state->boot.insert_or_assign(m_index, boot);
      return {};
    }
    accel::AccelResult<accel::VcpuExit> run() override {
      if (m_state->on_run) m_state->on_run(*m_state->ops, m_index);
      return accel::VcpuExit{accel::ExitInterrupted{}};
    }
    void kick() override {}

   private:
    std::shared_ptr<State> m_state;
    unsigned m_index;
  };

  class Vm final : public accel::Vm {
   public:
    explicit Vm(std::shared_ptr<State> state) : m_state(std::move(state)) {}
    accel::AccelResult<void> map_memory(const base::GuestMemory::Region& region) override {
      m_state->mapped.push_back(region);
      return {};
    }
    accel::AccelResult<std::unique_ptr<accel::Vcpu>> create_vcpu(unsigned index) override {
      ++m_state->vcpus;
      return std::unique_ptr<accel::Vcpu>(std::make_unique<Vcpu>(m_state, index));
    }
    accel::AccelResult<void> set_irq_line(uint32_t line, bool level) override {
      if (level && !m_state->irq[line]) ++m_state->rises[line];
      m_state->irq[line] = level;
      return {};
    }
    accel::AccelResult<void> signal_msi(uint64_t address, uint32_t data) override {
      m_state->msis.push_back({address, data});
      return {};
    }
    accel::AccelResult<void> set_ioapic_routes(std::span<const IoapicRoute> routes) override {
      m_state->route_sets.emplace_back(routes.begin(), routes.end());
      return {};
    }

   private:
    std::shared_ptr<State> m_state;
  };

  std::string m_arch;
};

}  // namespace hw::testing
