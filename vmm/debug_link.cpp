#include "vmm/debug_link.h"

#include <algorithm>
#include <variant>

#include "vmm/controller.h"

namespace vmm {

class DebugLink::PlantMemory final : public gdbstub::SoftwareBreakpoints::Memory {
 public:
  PlantMemory(const hw::Machine::DebugAccess& access, accel::Vcpu* vcpu) : m_access(access), m_vcpu(vcpu) {}
  base::ErrorOr<uint64_t> translate(uint64_t va) override {
    if (!m_vcpu) return base::fail(base::Error("no vCPU to translate with"));
    auto pa = m_vcpu->translate(va);
    if (!pa.ok()) return base::fail(base::Error(pa.error().message));
    return pa.value();
  }
  uint8_t* ram(uint64_t gpa) override {
    auto byte = m_access.memory->slice(gpa, 1);
    return byte ? byte->data() : nullptr;
  }
  void written(uint64_t gpa) override { m_access.vm->note_memory_written(gpa, 1); }

 private:
  const hw::Machine::DebugAccess& m_access;
  accel::Vcpu* m_vcpu;
};

base::ErrorOr<void> DebugLink::machine_built(hw::Machine& machine) {
  std::unique_lock guard(m_lock);
  auto access = machine.debug_access();
  if (!access) return base::fail(base::Error("gdb: this machine type does not offer debugger access yet"));
  m_access = std::move(access);
  m_threads = static_cast<unsigned>(m_access->vcpus.size());
  if (m_threads == 0) return base::fail(base::Error("gdb: the machine has no vCPUs"));
  // The register set is the vCPUs' (the stub starts after the first machine, so gdb always sees
  // the right one; a machine rebuilt on reset has the same architecture).
  if (m_first) {
    auto state = m_access->vcpus[0]->get_state();
    if (!state.ok()) return base::fail(base::Error("gdb: " + state.error().message));
    m_arch = std::holds_alternative<accel::X86VcpuState>(state.value()) ? Arch::kX86_64 : Arch::kRiscv64;
  }
  // gdb held the machine when the guest reset (a vCPU's reset raced the pause): the new one is
  // held too, before its first instruction, or gdb would read a machine that runs.
  const bool was_stopped = m_stopped;
  m_stopped = false;
  if (m_arch == Arch::kX86_64) {  // a machine rebuilt on reset: its fresh RAM gets the int3s again
    PlantMemory memory(*m_access, m_access->vcpus[0]);
    m_sw_breakpoints.replant(memory);
  }
  TRY(apply_debug_locked(-1));  // the vCPUs have not run yet
  if (m_wait && m_first) TRY(stop_locked());
  m_first = false;
  if (was_stopped && !m_stopped) {
    // The controller still says Paused (nothing resumed it), so pause the new machine itself.
    if (m_controller.state() == State::Paused) {
      if (auto paused = machine.pause(); !paused.ok())
        return base::fail(base::Error("gdb: holding the machine after a reset: " + paused.error().message));
      m_stopped = true;
    } else {
      TRY(stop_locked());
    }
  }
  if (!m_interrupt_pending) return {};
  // gdb's Ctrl-C came while the guest was being reset (no machine to stop): this one stops now.
  m_interrupt_pending = false;
  TRY(stop_locked());
  guard.unlock();
  std::lock_guard listener(m_listener_lock);
  if (m_listener) m_listener(gdbstub::StopEvent{gdbstub::StopEvent::Reason::kInterrupt, 0});
  return {};
}

void DebugLink::machine_gone() {
  std::lock_guard guard(m_lock);
  m_access.reset();
  m_sw_breakpoints.forget();  // the RAM goes with the machine
  // m_stopped stays: a machine rebuilt after a reset while gdb held this one is held too.
}

void DebugLink::on_debug_exit(unsigned vcpu, const accel::ExitDebug& exit) {
  {
    std::lock_guard guard(m_lock);
    // Already stopped: another vCPU's stop (or an interrupt) won; this one stays parked with it.
    if (m_stopped || !m_access) return;
    if (!stop_locked().ok()) return;  // the machine is stopping: nothing to report
  }
  gdbstub::StopEvent event;
  switch (exit.reason) {
    case accel::ExitDebug::Reason::kStep:
      event.reason = gdbstub::StopEvent::Reason::kStep;
      break;
    case accel::ExitDebug::Reason::kWatchpoint:
      event.reason = gdbstub::StopEvent::Reason::kWatchpoint;
      break;
    case accel::ExitDebug::Reason::kBreakpoint:
      event.reason = gdbstub::StopEvent::Reason::kBreakpoint;
      break;
  }
  event.thread = vcpu;
  event.data_address = exit.data_address;
  event.pc = exit.pc;
  std::lock_guard guard(m_listener_lock);
  if (m_listener) m_listener(event);
}

unsigned DebugLink::thread_count() const {
  std::lock_guard guard(m_lock);
  return m_threads;
}

bool DebugLink::stopped() const {
  std::lock_guard guard(m_lock);
  return m_stopped;
}

base::ErrorOr<void> DebugLink::stop_locked() {
  if (m_stopped) return {};
  if (!m_access) return base::fail(base::Error("no machine is running"));
  TRY(m_controller.pause());
  m_stopped = true;
  return {};
}

base::ErrorOr<void> DebugLink::stop() {
  std::lock_guard guard(m_lock);
  // Between two machines (a guest reset): the next one stops before it runs, and says so then.
  if (!m_access && !m_first) m_interrupt_pending = true;
  return stop_locked();
}

base::ErrorOr<void> DebugLink::apply_debug_locked(int step_thread) {
  for (size_t i = 0; i < m_access->vcpus.size(); ++i) {
    accel::VcpuDebug debug;
    debug.single_step = static_cast<int>(i) == step_thread;
    debug.breakpoints = m_breakpoints;
    debug.sw_breakpoints = m_sw_breakpoints.addresses();
    for (const gdbstub::Watchpoint& w : m_watchpoints)
      debug.watchpoints.push_back({w.address, w.length, w.read, w.write});
    auto set = m_access->vcpus[i]->set_debug(debug);
    if (!set.ok())
      return base::fail(base::Error("gdb: vCPU " + std::to_string(i) + ": " + set.error().message));
  }
  return {};
}

base::ErrorOr<void> DebugLink::resume(int step_thread) {
  std::lock_guard guard(m_lock);
  if (!m_access || !m_stopped) return base::fail(base::Error("the machine is not stopped"));
  TRY(apply_debug_locked(step_thread));
  TRY(m_controller.resume());
  m_stopped = false;
  return {};
}

base::ErrorOr<accel::Vcpu*> DebugLink::stopped_vcpu_locked(unsigned thread) const {
  if (!m_access || !m_stopped) return base::fail(base::Error("the machine is not stopped"));
  // Someone else (`vmlaunch resume`) may have let it run while gdb thought it stopped.
  if (m_controller.state() != State::Paused) return base::fail(base::Error("the machine was resumed"));
  if (thread >= m_access->vcpus.size()) return base::fail(base::Error("no such vCPU"));
  return m_access->vcpus[thread];
}

gdbstub::Target::Arch DebugLink::arch() const {
  std::lock_guard guard(m_lock);
  return m_arch;
}

base::ErrorOr<accel::VcpuState> DebugLink::read_registers(unsigned thread) {
  std::lock_guard guard(m_lock);
  accel::Vcpu* vcpu = TRY(stopped_vcpu_locked(thread));
  auto state = vcpu->get_state();
  if (!state.ok()) return base::fail(base::Error(state.error().message));
  return std::move(state.value());
}

base::ErrorOr<void> DebugLink::write_registers(unsigned thread, const accel::VcpuState& state) {
  std::lock_guard guard(m_lock);
  accel::Vcpu* vcpu = TRY(stopped_vcpu_locked(thread));
  auto set = vcpu->set_state(state);
  if (!set.ok()) return base::fail(base::Error(set.error().message));
  return {};
}

base::ErrorOr<DebugLink::RamPiece> DebugLink::ram_locked(unsigned thread, uint64_t addr, uint64_t len,
                                                         bool physical) {
  accel::Vcpu* vcpu = TRY(stopped_vcpu_locked(thread));
  uint64_t pa = addr;
  if (!physical) {
    auto translated = vcpu->translate(addr);
    if (!translated.ok()) return base::fail(base::Error(translated.error().message));
    pa = translated.value();
  }
  auto host = m_access->memory->slice(pa, len);
  if (!host) return base::fail(base::Error("not guest RAM"));
  return RamPiece{*host, pa};
}

// [addr, addr + size) page by page as pieces of guest RAM, each with its offset in the range.
base::ErrorOr<std::vector<std::pair<DebugLink::RamPiece, size_t>>> DebugLink::pieces_locked(unsigned thread,
                                                                                            uint64_t addr,
                                                                                            size_t size,
                                                                                            bool physical) {
  std::vector<std::pair<RamPiece, size_t>> pieces;
  for (size_t done = 0; done < size;) {
    const uint64_t at = addr + done;
    const size_t len = std::min<uint64_t>(size - done, 4096 - (at & 0xfff));
    pieces.emplace_back(TRY(ram_locked(thread, at, len, physical)), done);
    done += len;
  }
  return pieces;
}

base::ErrorOr<void> DebugLink::read_memory(unsigned thread, uint64_t addr, std::span<uint8_t> out,
                                           bool physical) {
  std::lock_guard guard(m_lock);
  // Translate every page first and copy after, so a failure leaves nothing half read.
  auto pieces = TRY(pieces_locked(thread, addr, out.size(), physical));
  for (auto& [piece, offset] : pieces) {
    std::copy(piece.host.begin(), piece.host.end(), out.begin() + static_cast<ptrdiff_t>(offset));
    // gdb sees the instruction bytes, not the int3s it had planted.
    m_sw_breakpoints.mask(piece.gpa, out.subspan(offset, piece.host.size()));
  }
  return {};
}

base::ErrorOr<void> DebugLink::write_memory(unsigned thread, uint64_t addr, std::span<const uint8_t> in,
                                            bool physical) {
  std::lock_guard guard(m_lock);
  auto pieces = TRY(pieces_locked(thread, addr, in.size(), physical));
  for (auto& [piece, offset] : pieces) {
    std::copy(in.begin() + static_cast<ptrdiff_t>(offset),
              in.begin() + static_cast<ptrdiff_t>(offset + piece.host.size()), piece.host.begin());
    m_sw_breakpoints.rewritten(piece.gpa, piece.host);  // a planted int3 stays; the new byte is its original
    // gdb may patch code: the accelerator drops what it decoded or compiled from the old bytes.
    m_access->vm->note_memory_written(piece.gpa, piece.host.size());
  }
  return {};
}

void DebugLink::set_breakpoints(std::vector<uint64_t> addresses) {
  std::lock_guard guard(m_lock);
  m_breakpoints = std::move(addresses);
}

bool DebugLink::software_breakpoints() const {
  std::lock_guard guard(m_lock);
  return m_arch == Arch::kX86_64;
}

base::ErrorOr<void> DebugLink::insert_sw_breakpoint(unsigned thread, uint64_t addr) {
  std::lock_guard guard(m_lock);
  accel::Vcpu* vcpu = TRY(stopped_vcpu_locked(thread));
  PlantMemory memory(*m_access, vcpu);
  return m_sw_breakpoints.insert(memory, addr);
}

base::ErrorOr<void> DebugLink::remove_sw_breakpoint(unsigned thread, uint64_t addr) {
  std::lock_guard guard(m_lock);
  accel::Vcpu* vcpu = TRY(stopped_vcpu_locked(thread));
  PlantMemory memory(*m_access, vcpu);
  m_sw_breakpoints.remove(memory, addr);
  return {};
}

void DebugLink::lift_sw_breakpoints() {
  std::lock_guard guard(m_lock);
  if (!m_access) return;
  PlantMemory memory(*m_access, nullptr);
  m_sw_breakpoints.lift(memory);
}

void DebugLink::replant_sw_breakpoints() {
  std::lock_guard guard(m_lock);
  if (!m_access) return;
  PlantMemory memory(*m_access, nullptr);
  m_sw_breakpoints.replant(memory);
}

void DebugLink::set_watchpoints(std::vector<gdbstub::Watchpoint> watchpoints) {
  std::lock_guard guard(m_lock);
  m_watchpoints = std::move(watchpoints);
}

void DebugLink::set_stop_listener(std::function<void(const gdbstub::StopEvent&)> listener) {
  std::lock_guard guard(m_listener_lock);
  m_listener = std::move(listener);
}

void DebugLink::kill() {
  {
    std::lock_guard guard(m_lock);
    if (m_access) {
      PlantMemory memory(*m_access, nullptr);
      m_sw_breakpoints.remove_all(memory);
    }
  }
  m_controller.stop("kill");
}

void DebugLink::detach() {
  std::lock_guard guard(m_lock);
  m_interrupt_pending = false;
  m_breakpoints.clear();
  m_watchpoints.clear();
  if (!m_access) {
    m_sw_breakpoints = {};
    return;
  }
  {
    PlantMemory memory(*m_access, nullptr);
    m_sw_breakpoints.remove_all(memory);
  }
  if (!stop_locked().ok()) return;  // the machine is stopping anyway
  (void)apply_debug_locked(-1);     // empty settings: full speed again
  if (m_controller.resume().ok()) m_stopped = false;
}

}  // namespace vmm
