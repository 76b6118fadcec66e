// The gdb stub's view of the running machine (gdbstub::Target over vmm::Controller): stopping and
// continuing go through the controller's pause/resume, so the guest clock stops with the vCPUs and
// `vmlaunch ps` shows the machine paused while gdb holds it; registers, debug settings and address
// translation go to the machine's vCPUs; memory to its guest RAM. The controller tells it about each
// machine it builds (a guest reset builds a new one: the breakpoints carry over) and when the
// machine is gone. Thread-safe: the stub's thread, vCPU threads (debug stops) and the controller.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "debug/gdbstub/sw_breakpoints.h"
#include "debug/gdbstub/target.h"
#include "hw/machine.h"

namespace vmm {

class Controller;

class DebugLink final : public gdbstub::Target {
 public:
  // `wait`: the first machine is held at reset (paused before any instruction) until gdb continues.
  DebugLink(Controller& controller, bool wait) : m_controller(controller), m_wait(wait) {}

  // A machine was built and is about to run (state Running): applies the breakpoints to its vCPUs,
  // and holds the first one at reset when asked to. Errors when the machine offers no debugger access.
  base::ErrorOr<void> machine_built(hw::Machine& machine);
  // The machine stopped running and is about to be destroyed.
  void machine_gone();
  // A vCPU's run() returned a debug stop (vCPU thread): pause everything and tell the stub.
  void on_debug_exit(unsigned vcpu, const accel::ExitDebug& exit);

  unsigned thread_count() const override;
  base::ErrorOr<void> stop() override;
  base::ErrorOr<void> resume(int step_thread) override;
  bool stopped() const override;
  Arch arch() const override;
  base::ErrorOr<accel::VcpuState> read_registers(unsigned thread) override;
  base::ErrorOr<void> write_registers(unsigned thread, const accel::VcpuState& state) override;
  base::ErrorOr<void> read_memory(unsigned thread, uint64_t addr, std::span<uint8_t> out,
                                  bool physical) override;
  base::ErrorOr<void> write_memory(unsigned thread, uint64_t addr, std::span<const uint8_t> in,
                                   bool physical) override;
  void set_breakpoints(std::vector<uint64_t> addresses) override;
  // x86_64: gdb's Z0 plants int3 in guest RAM (riscv64 keeps host-side breakpoints in jit).
  bool software_breakpoints() const override;
  base::ErrorOr<void> insert_sw_breakpoint(unsigned thread, uint64_t addr) override;
  base::ErrorOr<void> remove_sw_breakpoint(unsigned thread, uint64_t addr) override;
  // Around a snapshot (Controller::snapshot): the planted int3s out of guest RAM, then back, so a
  // snapshot never holds the debugger's bytes.
  void lift_sw_breakpoints();
  void replant_sw_breakpoints();
  void set_watchpoints(std::vector<gdbstub::Watchpoint> watchpoints) override;
  void set_stop_listener(std::function<void(const gdbstub::StopEvent&)> listener) override;
  void kill() override;
  void detach() override;

 private:
  base::ErrorOr<void> stop_locked();
  base::ErrorOr<void> apply_debug_locked(int step_thread);
  base::ErrorOr<accel::Vcpu*> stopped_vcpu_locked(unsigned thread) const;
  // One page (or less) of guest RAM at `addr`, translated for `thread` unless physical.
  struct RamPiece {
    std::span<uint8_t> host;
    uint64_t gpa = 0;
  };
  base::ErrorOr<RamPiece> ram_locked(unsigned thread, uint64_t addr, uint64_t len, bool physical);
  base::ErrorOr<std::vector<std::pair<RamPiece, size_t>>> pieces_locked(unsigned thread, uint64_t addr,
                                                                        size_t size, bool physical);

  class PlantMemory;  // SoftwareBreakpoints::Memory over this machine's RAM and a vCPU's translation

  Controller& m_controller;
  const bool m_wait;
  mutable std::mutex m_lock;
  std::optional<hw::Machine::DebugAccess> m_access;  // of the machine that runs now
  unsigned m_threads = 0;
  Arch m_arch = Arch::kRiscv64;
  bool m_stopped = false, m_first = true;
  bool m_interrupt_pending = false;  // stop() came between two machines
  std::vector<uint64_t> m_breakpoints;
  std::vector<gdbstub::Watchpoint> m_watchpoints;
  gdbstub::SoftwareBreakpoints m_sw_breakpoints;
  std::mutex m_listener_lock;
  std::function<void(const gdbstub::StopEvent&)> m_listener;
};

}  // namespace vmm
