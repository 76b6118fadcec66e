#include "accel/jit/jit_accelerator.h"

#include <memory>
#include <vector>

#include "jit/engine.h"

namespace accel {
namespace {

class JitVcpu final : public Vcpu {
 public:
  JitVcpu(jit::Engine& engine, unsigned index) : m_engine(engine), m_index(index) {}

  AccelResult<void> set_boot_state(const BootState& state) override {
    const auto* riscv = std::get_if<RiscvBootState>(&state);
    if (!riscv) return base::fail(AccelError("jit: boot state is not riscv64"));
    m_engine.reset(m_index, riscv->pc, riscv->a0, riscv->a1, riscv->a2);
    return {};
  }

  AccelResult<VcpuExit> run() override {
    m_engine.run(m_index);
    return VcpuExit{ExitInterrupted{}};
  }

  void kick() override { m_engine.kick(m_index); }

 private:
  jit::Engine& m_engine;
  const unsigned m_index;  // < the engine's hart count: create_vcpu checked it
};

// The optional hart features named by VmSpec::cpu_features. "+x" for something the interpreter
// lacks is an error (the device tree would promise it to the guest); "-x" of a mandatory part
// (base letters, Zicsr, ...) is accepted: the guest is simply not told.
AccelResult<jit::CpuConfig> cpu_config(const std::vector<std::string>& features) {
  jit::CpuConfig config;
  for (const std::string& feature : features) {
    if (feature.size() < 2 || (feature[0] != '+' && feature[0] != '-'))
      return base::fail(AccelError("jit: cpu feature \"" + feature + "\" must start with + or -"));
    const bool on = feature[0] == '+';
    const std::string name = feature.substr(1);
    if (name == "sstc") {
      config.sstc = on;
    } else if (name == "sv48") {
      config.sv48 = on;
    } else if (name == "sv39") {
      if (on) config.sv48 = false;  // "+sv39" caps the MMU at Sv39, as the device tree says
    } else if (on && name != "zicntr" && name != "zicsr" && name != "zifencei" && name.size() > 1) {
      return base::fail(AccelError("jit: cpu feature " + feature +
                                   " is not implemented by the interpreter (has rv64imafdc, zicsr, zifencei, "
                                   "zicntr, sstc, sv39, sv48)"));
    } else if (on && name.size() == 1 && std::string("imafdc").find(name) == std::string::npos) {
      return base::fail(AccelError("jit: cpu feature " + feature + " is not implemented by the interpreter"));
    }
  }
  return config;
}

// Guest-aligned words must be host-aligned: AMOs use host atomics on them (a split-lock atomic can
// fault on hosts that police them). GuestMemory's host mappings are page aligned, so this asks for
// 8-byte aligned guest bases.
bool aligned(const base::GuestMemory::Region& region) {
  return ((region.guest_base ^ reinterpret_cast<uintptr_t>(region.host)) & 7) == 0;
}
constexpr const char* kMisaligned = "jit: a RAM region's guest base must be 8-byte aligned";

class JitVm final : public Vm {
 public:
  JitVm(const VmSpec& spec, const base::GuestMemory& memory, VmOps& ops, jit::CpuConfig config)
      : m_own_timebase(spec.timebase ? nullptr : std::make_unique<base::Timebase>()),
        m_engine(ops, spec.timebase ? *spec.timebase : *m_own_timebase, spec.vcpu_count, config) {
    for (const auto& region : memory.regions()) m_engine.add_ram(region);
    m_claimed.assign(spec.vcpu_count, false);
  }

  AccelResult<void> map_memory(const base::GuestMemory::Region& region) override {
    if (region.size == 0 || !region.host) return base::fail(AccelError("jit: empty memory region"));
    if (!aligned(region)) return base::fail(AccelError(kMisaligned));
    m_engine.add_ram(region);
    return {};
  }

  AccelResult<std::unique_ptr<Vcpu>> create_vcpu(unsigned index) override {
    if (index >= m_engine.hart_count())
      return base::fail(AccelError("jit: vcpu " + std::to_string(index) + " out of range (" +
                                   std::to_string(m_engine.hart_count()) + " harts)"));
    if (m_claimed[index])
      return base::fail(AccelError("jit: vcpu " + std::to_string(index) + " created twice"));
    m_claimed[index] = true;
    return std::unique_ptr<Vcpu>(std::make_unique<JitVcpu>(m_engine, index));
  }

  AccelResult<void> pause(std::chrono::milliseconds timeout) override {
    if (!m_engine.park(timeout)) {
      m_engine.resume();  // cancel the request: the harts that did park continue
      return base::fail(
          AccelError("jit: a hart did not park within " + std::to_string(timeout.count()) + " ms"));
    }
    return {};
  }

  AccelResult<void> resume() override {
    m_engine.resume();
    return {};
  }

  AccelResult<void> set_irq_line(uint32_t line, bool level) override {
    const uint32_t hart = line / 64, bit = line % 64;
    if (hart >= m_engine.hart_count()) return base::fail(AccelError("jit: irq line for nonexistent hart"));
    if (bit != 3 && bit != 7 && bit != 9 && bit != 11 && bit != 1 && bit != 5)
      return base::fail(AccelError("jit: irq line " + std::to_string(bit) + " is not a mip interrupt bit"));
    m_engine.set_irq(hart, bit, level);
    return {};
  }

 private:
  std::unique_ptr<base::Timebase> m_own_timebase;
  jit::Engine m_engine;
  std::vector<bool> m_claimed;
};

class JitAccelerator final : public Accelerator {
 public:
  std::string_view name() const override { return "jit"; }
  std::vector<std::string> guest_arches() const override { return {"riscv64"}; }
  Availability probe() const override {
    return {true, "riscv64 reference interpreter (RV64GC, Sv39/Sv48, Sstc)"};
  }
  AccelResult<std::unique_ptr<Vm>> create_vm(const VmSpec& spec, const base::GuestMemory& memory,
                                             VmOps& ops) override {
    if (spec.arch != "riscv64")
      return base::fail(AccelError("jit: guest arch '" + spec.arch + "' unsupported (riscv64 only)"));
    if (spec.vcpu_count == 0 || spec.vcpu_count > 64)
      return base::fail(AccelError("jit: vcpu count must be 1..64"));
    if (!spec.cpu_model.empty() && spec.cpu_model != "rv64gc" && spec.cpu_model != "host" &&
        spec.cpu_model != "max")
      return base::fail(AccelError("jit: cpu model '" + spec.cpu_model + "' unsupported (rv64gc)"));
    for (const auto& region : memory.regions())
      if (!aligned(region)) return base::fail(AccelError(kMisaligned));
    auto config = cpu_config(spec.cpu_features);
    if (!config.ok()) return base::fail(std::move(config).error());
    return std::unique_ptr<Vm>(std::make_unique<JitVm>(spec, memory, ops, *config));
  }
};

}  // namespace

std::string jit_cpu_feature_problem(const std::string& feature) {
  auto config = cpu_config({feature});
  return config ? std::string() : config.error().message;
}

std::unique_ptr<Accelerator> make_jit_accelerator() {
  return std::make_unique<JitAccelerator>();
}

}  // namespace accel
