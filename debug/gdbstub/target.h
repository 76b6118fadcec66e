// What the gdb stub debugs: a stopped-or-running machine seen as threads (vCPUs, numbered from 0
// here; gdb's thread ids are these + 1). vmm implements it over the running machine; tests use a
// fake. Calls come from the stub's own thread; stop notifications from any thread.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "accel/accelerator.h"
#include "base/result.h"

namespace gdbstub {

struct StopEvent {
  enum class Reason { kBreakpoint, kStep, kInterrupt, kWatchpoint } reason = Reason::kInterrupt;
  unsigned thread = 0;
  uint64_t data_address = 0;  // kWatchpoint: where the access touched a watchpoint
  uint64_t pc = 0;            // kBreakpoint: where it stopped (says a Z0 from a Z1 breakpoint)
};

struct Watchpoint {
  uint64_t address = 0, length = 0;
  bool read = false, write = false;  // gdb's watch (write), rwatch (read), awatch (both)
  auto operator<=>(const Watchpoint&) const = default;
};

class Target {
 public:
  virtual ~Target() = default;
  virtual unsigned thread_count() const = 0;
  // All-stop: parks every vCPU with its state; returns once they are parked. Idempotent.
  virtual base::ErrorOr<void> stop() = 0;
  // Lets every vCPU continue with the current breakpoints; `step_thread` (or -1) single-steps that
  // one. A later stop is reported through the listener.
  virtual base::ErrorOr<void> resume(int step_thread) = 0;
  virtual bool stopped() const = 0;
  // Which register set (and target description) the vCPUs have.
  enum class Arch { kRiscv64, kX86_64 };
  virtual Arch arch() const = 0;
  // Only while stopped. The state's alternative is arch()'s.
  virtual base::ErrorOr<accel::VcpuState> read_registers(unsigned thread) = 0;
  virtual base::ErrorOr<void> write_registers(unsigned thread, const accel::VcpuState& state) = 0;
  // Guest RAM at a virtual address as `thread` translates it now, or at a physical address. All of
  // it or an error (nothing partial); device memory is refused (reads there have side effects).
  virtual base::ErrorOr<void> read_memory(unsigned thread, uint64_t addr, std::span<uint8_t> out,
                                          bool physical) = 0;
  virtual base::ErrorOr<void> write_memory(unsigned thread, uint64_t addr, std::span<const uint8_t> in,
                                           bool physical) = 0;
  // The breakpoint addresses and watchpoints the next resume() applies (each replaces its set).
  // Host-side or debug-register breakpoints: gdb's Z1, and Z0 too where the target plants none.
  virtual void set_breakpoints(std::vector<uint64_t> addresses) = 0;
  // Software breakpoints (gdb's Z0) on a target that plants the architecture's breakpoint
  // instruction in guest RAM (x86_64: int3): inserted and removed at once, at a virtual address as
  // `thread` translates it. An address that is not guest RAM is an error (nothing is written).
  virtual bool software_breakpoints() const { return false; }
  virtual base::ErrorOr<void> insert_sw_breakpoint(unsigned thread, uint64_t addr) {
    (void)thread;
    (void)addr;
    return base::fail(base::Error("this target has no software breakpoints"));
  }
  virtual base::ErrorOr<void> remove_sw_breakpoint(unsigned thread, uint64_t addr) {
    (void)thread;
    (void)addr;
    return {};
  }
  virtual void set_watchpoints(std::vector<Watchpoint> watchpoints) = 0;
  // Who hears about a stop the target made itself (breakpoint, step). Set before resume().
  virtual void set_stop_listener(std::function<void(const StopEvent&)> listener) = 0;
  // gdb's `kill`: the machine stops for good (the lifecycle's forced stop).
  virtual void kill() = 0;
  // gdb went away: debug settings cleared, the machine runs on.
  virtual void detach() = 0;
};

}  // namespace gdbstub
