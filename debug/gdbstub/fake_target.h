// A Target for tests: two harts, 64 KiB of RAM at 0x80000000 that virtual addresses reach at
// 0xffffffc000000000 (a kernel-style linear map), and a record of what the stub asked for.
#pragma once

#include <cstring>
#include <vector>

#include "debug/gdbstub/target.h"

namespace gdbstub::testing {

class FakeTarget : public Target {
 public:
  static constexpr uint64_t kRamBase = 0x80000000, kVirtBase = 0xffffffc000000000ull, kRamSize = 0x10000;
  unsigned threads = 2;
  bool is_stopped = false;
  std::vector<accel::RiscvVcpuState> regs = std::vector<accel::RiscvVcpuState>(2);
  // x86: an x86_64 target instead (its registers in x86_regs).
  bool x86 = false;
  std::vector<accel::X86VcpuState> x86_regs = std::vector<accel::X86VcpuState>(2);
  std::vector<uint8_t> ram = std::vector<uint8_t>(kRamSize);
  std::vector<uint64_t> breakpoints;
  std::vector<Watchpoint> watchpoints;
  int last_step = -2, resumes = 0, stops = 0;
  bool killed = false, detached = false;
  std::function<void(const StopEvent&)> listener;

  unsigned thread_count() const override { return threads; }
  base::ErrorOr<void> stop() override {
    ++stops;
    is_stopped = true;
    return {};
  }
  base::ErrorOr<void> resume(int step_thread) override {
    last_step = step_thread;
    ++resumes;
    is_stopped = false;
    return {};
  }
  bool stopped() const override { return is_stopped; }
  Arch arch() const override { return x86 ? Arch::kX86_64 : Arch::kRiscv64; }
  base::ErrorOr<accel::VcpuState> read_registers(unsigned thread) override {
    if (thread >= regs.size() || !is_stopped) return base::fail(base::Error("no"));
    if (x86) return accel::VcpuState{x86_regs[thread]};
    return accel::VcpuState{regs[thread]};
  }
  base::ErrorOr<void> write_registers(unsigned thread, const accel::VcpuState& state) override {
    if (thread >= regs.size() || !is_stopped) return base::fail(base::Error("no"));
    if (x86)
      x86_regs[thread] = std::get<accel::X86VcpuState>(state);
    else
      regs[thread] = std::get<accel::RiscvVcpuState>(state);
    return {};
  }
  uint8_t* at(uint64_t addr, size_t len, bool physical) {
    const uint64_t base = physical ? kRamBase : kVirtBase;
    if (addr < base || addr - base > kRamSize || len > kRamSize - (addr - base)) return nullptr;
    return ram.data() + (addr - base);
  }
  base::ErrorOr<void> read_memory(unsigned, uint64_t addr, std::span<uint8_t> out, bool physical) override {
    uint8_t* p = at(addr, out.size(), physical);
    if (!p) return base::fail(base::Error("unmapped"));
    std::memcpy(out.data(), p, out.size());
    return {};
  }
  base::ErrorOr<void> write_memory(unsigned, uint64_t addr, std::span<const uint8_t> in,
                                   bool physical) override {
    uint8_t* p = at(addr, in.size(), physical);
    if (!p) return base::fail(base::Error("unmapped"));
    std::memcpy(p, in.data(), in.size());
    return {};
  }
  void set_breakpoints(std::vector<uint64_t> addresses) override { breakpoints = std::move(addresses); }
  // plants: Z0 goes to insert/remove_sw_breakpoint (as on x86_64), planted where RAM is.
  bool plants = false;
  std::vector<uint64_t> planted;
  bool software_breakpoints() const override { return plants; }
  base::ErrorOr<void> insert_sw_breakpoint(unsigned, uint64_t addr) override {
    if (!at(addr, 1, false)) return base::fail(base::Error("not guest RAM"));
    planted.push_back(addr);
    return {};
  }
  base::ErrorOr<void> remove_sw_breakpoint(unsigned, uint64_t addr) override {
    std::erase(planted, addr);
    return {};
  }
  void set_watchpoints(std::vector<Watchpoint> w) override { watchpoints = std::move(w); }
  void set_stop_listener(std::function<void(const StopEvent&)> l) override { listener = std::move(l); }
  void kill() override { killed = true; }
  void detach() override {
    detached = true;
    is_stopped = false;
  }
};

}  // namespace gdbstub::testing
