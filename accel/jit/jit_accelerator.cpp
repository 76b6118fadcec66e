#include "accel/jit/jit_accelerator.h"

#include <cctype>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "base/field_use.h"
#include "jit/engine.h"

VML_CONSUMES("accel[].tier");             // the jit accelerator's tier: auto, interp, llvm
VML_CONSUMES("accel[].hot-threshold");    // block entries before promotion to the LLVM tier
VML_CONSUMES("accel[].compile-threads");  // background compilers for tier auto
VML_CONSUMES("accel[].code-cache");       // the LLVM tier's code cache limit
VML_CONSUMES("accel[].lockstep");         // compiled regions checked against the interpreter

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
    // Lockstep found compiled code disagreeing with the interpreter: the machine stops with it.
    if (std::string failure = m_engine.lockstep_failure(m_index); !failure.empty())
      return base::fail(AccelError(std::move(failure)));
    if (auto stop = m_engine.debug_stop(m_index)) {
      ExitDebug exit;
      exit.pc = stop->pc;
      exit.reason = stop->kind == jit::Engine::DebugStop::Kind::kStep    ? ExitDebug::Reason::kStep
                    : stop->kind == jit::Engine::DebugStop::Kind::kWatch ? ExitDebug::Reason::kWatchpoint
                                                                         : ExitDebug::Reason::kBreakpoint;
      exit.data_address = stop->data_addr;
      exit.write = stop->write;
      return VcpuExit{exit};
    }
    return VcpuExit{ExitInterrupted{}};
  }

  void kick() override { m_engine.kick(m_index); }

  std::optional<uint64_t> instructions_retired() const override {
    return m_engine.instructions_retired(m_index);
  }

  AccelResult<VcpuState> get_state() override {
    auto s = m_engine.state(m_index);
    if (!s) return base::fail(AccelError("jit: no such hart"));
    RiscvVcpuState out;
    for (unsigned i = 0; i < 32; ++i) out.x[i] = i == 0 ? 0 : s->x[i];
    for (unsigned i = 0; i < 32; ++i) out.f[i] = s->f[i];
    out.pc = s->pc;
    out.fflags = s->fflags;
    out.frm = s->frm;
    out.priv = static_cast<uint8_t>(s->priv);
    out.instret = s->instret;
    out.cycle = s->instret + s->cycle_offset;
    out.mstatus = s->mstatus, out.medeleg = s->medeleg, out.mideleg = s->mideleg, out.mie = s->mie;
    out.mip = s->mip_sw, out.mtvec = s->mtvec, out.stvec = s->stvec, out.mepc = s->mepc;
    out.sepc = s->sepc, out.mcause = s->mcause, out.scause = s->scause, out.mtval = s->mtval;
    out.stval = s->stval, out.mscratch = s->mscratch, out.sscratch = s->sscratch, out.satp = s->satp;
    out.mcounteren = s->mcounteren, out.scounteren = s->scounteren, out.mcountinhibit = s->mcountinhibit;
    out.menvcfg = s->menvcfg, out.senvcfg = s->senvcfg, out.stimecmp = s->stimecmp;
    for (unsigned i = 0; i < 16; ++i) out.pmpcfg[i] = s->pmpcfg[i], out.pmpaddr[i] = s->pmpaddr[i];
    out.reservation_valid = s->resv_valid != 0;
    static_assert(RiscvVcpuState::kTriggers == jit::kTriggerCount);
    out.tselect = s->tselect;
    for (unsigned i = 0; i < jit::kTriggerCount; ++i)
      out.tdata1[i] = s->tdata1[i], out.tdata2[i] = s->tdata2[i];
    return VcpuState{out};
  }

  // Writes what a debugger may change; the caller's priv must be one the hart has (U, S, M).
  AccelResult<void> set_state(const VcpuState& state) override {
    const auto* in = std::get_if<RiscvVcpuState>(&state);
    if (!in) return base::fail(AccelError("jit: vCPU state is not riscv64"));
    if (in->priv != 0 && in->priv != 1 && in->priv != 3)
      return base::fail(AccelError("jit: privilege level " + std::to_string(in->priv) + " does not exist"));
    auto current = m_engine.state(m_index);
    if (!current) return base::fail(AccelError("jit: no such hart"));
    jit::CpuState s = *current;
    for (unsigned i = 1; i < 32; ++i) s.x[i] = in->x[i];
    for (unsigned i = 0; i < 32; ++i) s.f[i] = in->f[i];
    s.pc = in->pc;
    s.fflags = in->fflags & 0x1f;
    s.frm = in->frm & 7;
    s.priv = static_cast<jit::Priv>(in->priv);
    s.cycle_offset = in->cycle - in->instret;
    s.instret = in->instret;
    s.mstatus = in->mstatus, s.medeleg = in->medeleg, s.mideleg = in->mideleg, s.mie = in->mie;
    s.mip_sw = in->mip, s.mtvec = in->mtvec, s.stvec = in->stvec, s.mepc = in->mepc;
    s.sepc = in->sepc, s.mcause = in->mcause, s.scause = in->scause, s.mtval = in->mtval;
    s.stval = in->stval, s.mscratch = in->mscratch, s.sscratch = in->sscratch, s.satp = in->satp;
    s.mcounteren = static_cast<uint32_t>(in->mcounteren),
    s.scounteren = static_cast<uint32_t>(in->scounteren);
    s.mcountinhibit = static_cast<uint32_t>(in->mcountinhibit);
    s.menvcfg = in->menvcfg, s.senvcfg = in->senvcfg, s.stimecmp = in->stimecmp;
    for (unsigned i = 0; i < 16; ++i) s.pmpcfg[i] = in->pmpcfg[i], s.pmpaddr[i] = in->pmpaddr[i];
    // Trigger writes from here are a debugger's (debug mode): dmode and action 1 are allowed; the
    // hart legalises the rest.
    s.tselect = in->tselect;
    for (unsigned i = 0; i < jit::kTriggerCount; ++i)
      s.tdata1[i] = in->tdata1[i], s.tdata2[i] = in->tdata2[i];
    m_engine.set_state(m_index, s);
    return {};
  }

  AccelResult<void> set_debug(const VcpuDebug& debug) override {
    std::vector<jit::Engine::Watch> watches;
    for (const auto& w : debug.watchpoints) watches.push_back({w.address, w.length, w.read, w.write});
    m_engine.set_debug(m_index, debug.single_step, debug.breakpoints, watches);
    return {};
  }

  AccelResult<uint64_t> translate(uint64_t gva) override {
    auto pa = m_engine.debug_translate(m_index, gva);
    if (!pa) return base::fail(AccelError("jit: guest-virtual address not mapped"));
    return *pa;
  }

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
// The accel entry's settings: tier (auto|interp|llvm), hot-threshold, compile-threads.
AccelResult<jit::TierOptions> tier_options(const std::vector<std::pair<std::string, std::string>>& settings) {
  jit::TierOptions options;
  auto number = [](const std::string& text, uint32_t* out) {
    if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
      return false;
    *out = static_cast<uint32_t>(std::stoul(text));
    return *out > 0;
  };
  for (const auto& [name, value] : settings) {
    if (name == "tier") {
      if (value == "auto") {
        options.mode = jit::TierOptions::Mode::kAuto;
      } else if (value == "interp") {
        options.mode = jit::TierOptions::Mode::kInterp;
      } else if (value == "llvm") {
        options.mode = jit::TierOptions::Mode::kLlvm;
      } else {
        return base::fail(AccelError("jit: tier \"" + value + "\" unknown (auto, interp, llvm)"));
      }
    } else if (name == "hot-threshold" || name == "compile-threads") {
      uint32_t n = 0;
      if (!number(value, &n) || n > (name == "hot-threshold" ? 65535u : 64u))
        return base::fail(AccelError("jit: " + name + " must be a positive integer (" +
                                     (name == "hot-threshold" ? "at most 65535" : "at most 64") +
                                     "), not \"" + value + "\""));
      (name == "hot-threshold" ? options.hot_threshold : options.compile_threads) = n;
    } else if (name == "code-cache") {
      // A size as the schema checked it: digits, then an optional binary unit (K, KiB, M, ...).
      const size_t digits = value.find_first_not_of("0123456789");
      uint64_t shift = 0;
      std::string unit = digits == std::string::npos ? "" : value.substr(digits);
      while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
      if (!unit.empty()) {
        const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0])));
        shift = c == 'K' ? 10 : c == 'M' ? 20 : c == 'G' ? 30 : c == 'T' ? 40 : 64;
      }
      const std::string number_text = value.substr(0, digits);
      if (number_text.empty() || number_text.size() > 12 || shift == 64)
        return base::fail(AccelError("jit: code-cache must be a size (e.g. 64MiB), not \"" + value + "\""));
      options.code_cache_bytes = std::stoull(number_text) << shift;
      if (options.code_cache_bytes == 0)
        return base::fail(AccelError("jit: code-cache must be above zero, not \"" + value + "\""));
    } else if (name == "lockstep") {
      if (value != "true" && value != "false")
        return base::fail(AccelError("jit: lockstep must be true or false, not \"" + value + "\""));
      options.lockstep = value == "true";
    } else {
      return base::fail(AccelError("jit: unknown setting \"" + name +
                                   "\" (tier, hot-threshold, compile-threads, code-cache, lockstep)"));
    }
  }
  // Lockstep checks compiled code: without a compiled tier it would silently check nothing.
  if (options.lockstep && options.mode == jit::TierOptions::Mode::kInterp)
    return base::fail(AccelError("jit: lockstep needs a compiled tier (tier: llvm or auto); tier is interp"));
  return options;
}

constexpr const char* kMisaligned = "jit: a RAM region's guest base must be 8-byte aligned";

// The tier numbers of the accelerator's VMs for `up --stats`: read from the live engine while a VM
// exists, kept as they were when it went away.
struct StatsBoard {
  std::mutex mutex;
  const jit::Engine* live = nullptr;
  jit::TierStats last;
  bool any = false;
};

std::string format_stats(const jit::TierStats& s) {
  char line[1024];
  const double share = s.guest_instructions ? 100.0 * s.compiled_instructions / s.guest_instructions : 0;
  std::snprintf(
      line, sizeof line,
      "jit: tier %s%s%s: %llu regions compiled (%llu refused, %llu installed, %llu reused), compile time p50 "
      "%.2f ms, "
      "p99 %.2f ms, total %.3f s; code cache %.1f KiB; %.1f%% of %llu guest instructions ran in compiled "
      "code; %llu dropped, %llu modules, compile CPU %.3f s; code cache limit %.1f MiB, %llu flushes",
      s.mode.c_str(), s.tier.empty() ? "" : ", ", s.tier.c_str(),
      static_cast<unsigned long long>(s.regions_compiled), static_cast<unsigned long long>(s.regions_failed),
      static_cast<unsigned long long>(s.regions_installed), static_cast<unsigned long long>(s.regions_reused),
      s.compile_ns_p50 / 1e6, s.compile_ns_p99 / 1e6, s.compile_ns_total / 1e9, s.code_bytes / 1024.0, share,
      static_cast<unsigned long long>(s.guest_instructions),
      static_cast<unsigned long long>(s.regions_dropped), static_cast<unsigned long long>(s.batches),
      s.compile_cpu_ns / 1e9, s.code_cache_limit / 1048576.0,
      static_cast<unsigned long long>(s.code_cache_flushes));
  std::string text = line;
  char more[256];
  std::snprintf(
      more, sizeof more, "; tier load CPU %.3f s; %llu guest instructions compiled (%.1f us CPU each)",
      s.load_cpu_ns / 1e9, static_cast<unsigned long long>(s.compiled_guest_insns),
      s.compiled_guest_insns ? s.compile_cpu_ns / 1e3 / static_cast<double>(s.compiled_guest_insns) : 0.0);
  text += more;
  if (s.lockstep)
    text += "; lockstep: " + std::to_string(s.lockstep_compared) + " exits compared, " +
            std::to_string(s.lockstep_device_exits) + " of them before a device access";
  text += "; region exits:";
  for (unsigned i = 0; i < kJitExitReasons; ++i)
    text += std::string(" ") + jit::exit_reason_name(i) + " " + std::to_string(s.exits[i]);
  text += "; region chains " + std::to_string(s.chains);
  std::snprintf(more, sizeof more, "; %llu regions optimised (tier-up, %.3f s CPU)",
                static_cast<unsigned long long>(s.regions_optimised), s.optimise_cpu_ns / 1e9);
  text += more;
  return text + "\n";
}

std::string json_string(const std::string& in) {
  std::string out = "\"";
  for (const char c : in) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The numbers of format_stats() as one JSON object (`up --stats=json:FILE`).
std::string stats_json_of(const jit::TierStats& s) {
  const double share =
      s.guest_instructions ? static_cast<double>(s.compiled_instructions) / s.guest_instructions : 0;
  char numbers[2048];
  std::snprintf(
      numbers, sizeof numbers,
      "\"regions_compiled\": %llu, \"regions_refused\": %llu, \"regions_installed\": %llu, "
      "\"regions_reused\": %llu, "
      "\"compile_ms_p50\": %.3f, \"compile_ms_p99\": %.3f, \"compile_s_total\": %.6f, "
      "\"code_cache_bytes\": %llu, \"guest_instructions\": %llu, \"compiled_instructions\": %llu, "
      "\"compiled_share\": %.6f, \"regions_dropped\": %llu, \"modules\": %llu, \"compile_cpu_s\": %.6f, "
      "\"code_cache_limit\": %llu, \"code_cache_flushes\": %llu, \"load_cpu_s\": %.6f, "
      "\"compiled_guest_insns\": %llu",
      static_cast<unsigned long long>(s.regions_compiled), static_cast<unsigned long long>(s.regions_failed),
      static_cast<unsigned long long>(s.regions_installed), static_cast<unsigned long long>(s.regions_reused),
      s.compile_ns_p50 / 1e6, s.compile_ns_p99 / 1e6, s.compile_ns_total / 1e9,
      static_cast<unsigned long long>(s.code_bytes), static_cast<unsigned long long>(s.guest_instructions),
      static_cast<unsigned long long>(s.compiled_instructions), share,
      static_cast<unsigned long long>(s.regions_dropped), static_cast<unsigned long long>(s.batches),
      s.compile_cpu_ns / 1e9, static_cast<unsigned long long>(s.code_cache_limit),
      static_cast<unsigned long long>(s.code_cache_flushes), s.load_cpu_ns / 1e9,
      static_cast<unsigned long long>(s.compiled_guest_insns));
  std::string json = "{\"mode\": " + json_string(s.mode) + ", \"tier\": " + json_string(s.tier) + ", " +
                     numbers + ", \"chains\": " + std::to_string(s.chains) +
                     ", \"regions_optimised\": " + std::to_string(s.regions_optimised) +
                     ", \"optimise_cpu_s\": " + std::to_string(s.optimise_cpu_ns / 1e9) +
                     ", \"last_failure\": " + json_string(s.last_failure) + ", \"exits\": {";
  for (unsigned i = 0; i < kJitExitReasons; ++i)
    json +=
        std::string(i ? ", " : "") + "\"" + jit::exit_reason_name(i) + "\": " + std::to_string(s.exits[i]);
  return json + "}, \"lockstep\": " + (s.lockstep ? "true" : "false") +
         ", \"lockstep_compared\": " + std::to_string(s.lockstep_compared) +
         ", \"lockstep_device_exits\": " + std::to_string(s.lockstep_device_exits) + "}";
}

class JitVm final : public Vm {
 public:
  JitVm(const VmSpec& spec, const base::GuestMemory& memory, VmOps& ops, jit::CpuConfig config,
        std::shared_ptr<StatsBoard> board)
      : m_own_timebase(spec.timebase ? nullptr : std::make_unique<base::Timebase>()),
        m_engine(ops, spec.timebase ? *spec.timebase : *m_own_timebase, spec.vcpu_count, config),
        m_board(std::move(board)) {
    for (const auto& region : memory.regions()) m_engine.add_ram(region);
    m_claimed.assign(spec.vcpu_count, false);
    std::lock_guard<std::mutex> lock(m_board->mutex);
    m_board->live = &m_engine;
    m_board->any = true;
  }
  ~JitVm() override {
    std::lock_guard<std::mutex> lock(m_board->mutex);
    if (m_board->live == &m_engine) {
      m_board->last = m_engine.tier_stats();
      m_board->live = nullptr;
    }
  }

  // Loads the LLVM tier for auto/llvm: the first moment a process maps libLLVM.
  AccelResult<void> set_tier(const jit::TierOptions& options) {
    auto set = m_engine.set_tier(options);
    if (!set.ok()) return base::fail(AccelError("jit: " + set.error()));
    return {};
  }
  jit::TierStats tier_stats() const { return m_engine.tier_stats(); }

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

  void note_memory_written(uint64_t gpa, uint64_t len) override { m_engine.invalidate_range(gpa, len); }

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
  std::shared_ptr<StatsBoard> m_board;
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
    auto tier = tier_options(spec.accel_options);
    if (!tier.ok()) return base::fail(std::move(tier).error());
    auto vm = std::make_unique<JitVm>(spec, memory, ops, *config, m_board);
    if (auto set = vm->set_tier(*tier); !set.ok()) return base::fail(std::move(set).error());
    return std::unique_ptr<Vm>(std::move(vm));
  }

  std::string stats_text() const override {
    std::lock_guard<std::mutex> lock(m_board->mutex);
    if (!m_board->any) return {};
    return format_stats(m_board->live ? m_board->live->tier_stats() : m_board->last);
  }
  std::string stats_json() const override {
    std::lock_guard<std::mutex> lock(m_board->mutex);
    if (!m_board->any) return {};
    return stats_json_of(m_board->live ? m_board->live->tier_stats() : m_board->last);
  }

 private:
  std::shared_ptr<StatsBoard> m_board = std::make_shared<StatsBoard>();
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
