// Machine: a built virtual machine (memory, devices, vCPUs) ready to run in the foreground.
//
//   launcher: graph = resolve(config); accel = select(graph);
//             machine = hw::build_machine(graph, context);  // dispatches on graph machine type
//             outcome = machine->run();                      // one thread per vCPU until poweroff
//
// Machine types register a factory under their graph name ("riscv64/virt", "x86_64/microvm",
// "x86_64/pc") with HW_REGISTER_MACHINE in their own .cpp (the library needs alwayslink = True so
// the registration is linked in). hw/ never sees concrete backends or accelerators: the launcher
// injects them through MachineContext.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accel/accelerator.h"
#include "backends/block.h"
#include "backends/chardev.h"
#include "backends/fs.h"
#include "backends/net.h"
#include "backends/rng.h"
#include "base/guest_memory.h"
#include "base/result.h"
#include "hw/address_space.h"
#include "hw/device_state.h"
#include "hw/stats.h"

namespace graph {
struct Device;
struct Graph;
}  // namespace graph

namespace passthrough {
class VfioDevice;
}

namespace hw::usb {
class UsbDevice;
}

namespace hw {

// Named backends from the graph's `backends:` section, created by the launcher (backends'
// factory) and looked up by the machine builder when it wires a device. A null result means
// "no such backend"; the builder reports it as an error naming the device.
class BackendSource {
 public:
  virtual ~BackendSource() = default;
  virtual std::shared_ptr<backends::CharBackend> chardev(std::string_view name) = 0;
  virtual std::shared_ptr<backends::BlockBackend> block(std::string_view name) { return nullptr; }
  virtual std::shared_ptr<backends::NetBackend> net(std::string_view name) { return nullptr; }
  virtual std::shared_ptr<backends::RngBackend> rng(std::string_view name) { return nullptr; }
  // The host kernel's entropy, for devices that draw from it without an rng backend of their own
  // (vmgenid): the launcher's choice, so hw/ opens nothing and calls no getrandom itself.
  virtual std::shared_ptr<backends::RngBackend> host_entropy() { return nullptr; }
  virtual std::shared_ptr<backends::FsBackend> fs(std::string_view name) { return nullptr; }
  // A passthrough entry's host device, opened (VFIO container, group, device) before the machine is built.
  virtual std::shared_ptr<passthrough::VfioDevice> vfio(std::string_view name) { return nullptr; }
  // A usb-host passthrough entry's host device, opened (libusb) before the machine is built.
  virtual std::shared_ptr<hw::usb::UsbDevice> usb_host(std::string_view name) { return nullptr; }
};

// Why a machine stopped, and what `vmlaunch up` exits with.
struct RunOutcome {
  enum class Kind { PowerOff, Reset, Quit, Error, Panic };
  Kind kind = Kind::PowerOff;
  int exit_code = 0;    // PowerOff: the guest's status (HTIF tests, exit devices); 0 for syscon
  std::string message;  // Error: what went wrong
};

// The one place power requests meet: syscon, HTIF, exit ports, vCPU exits and the console's
// Ctrl-a x all call in here. The first request wins; it wakes Machine::run() and kicks every vCPU.
// Thread-safe.
class PowerController {
 public:
  void power_off(int exit_code = 0) { request({RunOutcome::Kind::PowerOff, exit_code, {}}); }
  void reset() { request({RunOutcome::Kind::Reset, 0, {}}); }
  void quit() { request({RunOutcome::Kind::Quit, 0, {}}); }
  void fail(std::string message) { request({RunOutcome::Kind::Error, 1, std::move(message)}); }
  // The guest said it panicked (pvpanic) and the machine's owner did not take it (on_guest_panic).
  void panic() { request({RunOutcome::Kind::Panic, 0, {}}); }

  void request(RunOutcome outcome);
  bool stopping() const { return m_stopping.load(std::memory_order_acquire); }
  // Blocks until a request arrives and returns the first one.
  RunOutcome wait();
  // Called (from the requesting thread) once, on the first request: the machine kicks its vCPUs.
  void set_on_stop(std::function<void()> on_stop);

 private:
  std::mutex m_lock;
  std::condition_variable m_changed;
  std::atomic<bool> m_stopping{false};
  RunOutcome m_outcome;
  std::function<void()> m_on_stop;
};

// Routes guest device accesses to the MMIO and port-I/O address spaces: the VmOps every machine
// hands its accelerator.
class Bus : public accel::VmOps {
 public:
  AddressSpace& mmio() { return m_mmio; }
  AddressSpace& pio() { return m_pio; }
  // Each access is counted for the vCPU making it (query-stats), when a vCPU thread makes it.
  bool mmio_read(uint64_t addr, std::span<uint8_t> data) override {
    count(&VcpuCounters::mmio_reads);
    return m_mmio.read(addr, data);
  }
  bool mmio_write(uint64_t addr, std::span<const uint8_t> data) override {
    count(&VcpuCounters::mmio_writes);
    return m_mmio.write(addr, data);
  }
  bool pio_read(uint16_t port, std::span<uint8_t> data) override {
    count(&VcpuCounters::pio_reads);
    return m_pio.read(port, data);
  }
  bool pio_write(uint16_t port, std::span<const uint8_t> data) override {
    count(&VcpuCounters::pio_writes);
    return m_pio.write(port, data);
  }

 private:
  static void count(std::atomic<uint64_t> VcpuCounters::*counter) {
    if (VcpuCounters* c = t_vcpu_counters) (c->*counter).fetch_add(1, std::memory_order_relaxed);
  }
  AddressSpace m_mmio;
  AddressSpace m_pio;
};

class Machine {
 public:
  virtual ~Machine() = default;
  // Starts one thread per vCPU, blocks until the guest powers off or resets, the user quits, or a
  // vCPU fails; then stops every vCPU, joins the threads and returns why. Call once.
  virtual RunOutcome run() = 0;
  // For stop requests from outside (signals, the console's Ctrl-a x).
  virtual PowerController& power() = 0;
  // Freezes the running guest: vCPUs parked with their state, the guest clock stopped; resume()
  // continues as if no time had passed. Call from any thread while run() runs; resume before a stop.
  virtual base::ErrorOr<void> pause() { return base::fail(base::Error("this machine cannot pause yet")); }
  virtual base::ErrorOr<void> resume() { return base::fail(base::Error("this machine cannot pause yet")); }
  // Presses the guest's power button (held briefly, then released): the guest decides what to do,
  // usually a clean shutdown. Errors when the machine has none.
  virtual base::ErrorOr<void> press_power_button() {
    return base::fail(base::Error("this machine has no guest power button yet"));
  }
  // What a debugger reaches (the gdb stub, through vmm): the Vm, the vCPUs by index and guest RAM.
  // Valid while the machine exists; nullopt for machine types that do not offer it yet.
  struct DebugAccess {
    accel::Vm* vm = nullptr;
    std::vector<accel::Vcpu*> vcpus;
    const base::GuestMemory* memory = nullptr;
  };
  virtual std::optional<DebugAccess> debug_access() { return std::nullopt; }

  // What a snapshot saves and restores (snapshot/): every part of the machine by the graph's device
  // id, the vCPUs, guest RAM and the guest clock. `state` null: the part has state it cannot save
  // (the snapshot refuses, naming it). Valid while the machine exists; nullopt for machine types
  // that cannot be snapshotted yet.
  struct SnapshotPart {
    std::string id;      // the graph's device id ("serial0"); "htif" for the HTIF window
    std::string driver;  // the catalogue driver ("ns16550")
    DeviceState* state = nullptr;
  };
  struct SnapshotAccess {
    std::vector<SnapshotPart> parts;
    accel::Vm* vm = nullptr;
    std::vector<accel::Vcpu*> vcpus;
    base::GuestMemory* memory = nullptr;
    base::Timebase* timebase = nullptr;  // riscv64: mtime (null where the accelerator keeps the clock)
  };
  virtual std::optional<SnapshotAccess> snapshot_access() { return std::nullopt; }
};

// Called on a vCPU's thread when its run() returned a debug stop (Vcpu::set_debug); the vCPU runs
// again when it returns, so whoever wants it to stay stopped pauses the machine first.
using DebugExitHook = std::function<void(unsigned vcpu, const accel::ExitDebug& exit)>;

// Runs vCPUs on their own threads and turns their exits into power requests. Shared by all
// machine types so their run() is the same few lines.
//   ExitShutdown -> power_off(code), ExitReset -> reset(), an accelerator error -> fail();
//   ExitInterrupted / ExitDebug -> run again unless stopping; ExitHalt of every vCPU -> fail().
//   ExitDebug -> `on_debug` (if set) on that vCPU's thread, then run again unless stopping.
// `stats`, when given, receives each vCPU's counters (see hw/stats.h).
RunOutcome run_vcpus(std::vector<std::unique_ptr<accel::Vcpu>>& vcpus, PowerController& power,
                     const DebugExitHook& on_debug = {}, StatsRegistry* stats = nullptr);

// A machine builder's error about one device of the graph: "device <id> (<driver>): <message>".
base::Error device_error(const graph::Device& device, const std::string& message);

// What the launcher hands a machine builder.
struct MachineContext {
  accel::Accelerator* accelerator = nullptr;
  BackendSource* backends = nullptr;
  // Written to by the machine for diagnostics it wants the user to see (stderr if null).
  std::function<void(std::string_view)> log;
  // Called on the vCPU thread when the guest reports a panic (pvpanic). Returns true when the owner
  // has dealt with it (e.g. will pause the machine); false, or no hook, stops the machine with
  // RunOutcome::Kind::Panic. Must not block on the machine.
  std::function<bool()> on_guest_panic;
  // Where the machine and its devices keep the counters query-stats reports; may be null.
  StatsRegistry* stats = nullptr;
  // A vCPU stopped for the debugger (see DebugExitHook); null when nobody debugs.
  DebugExitHook on_debug_exit;
};

using MachineFactory = std::function<base::ErrorOr<std::unique_ptr<Machine>>(const graph::Graph& graph,
                                                                             MachineContext& context)>;

// Registers a machine type; returns true so it can initialise a static. A second registration of
// the same type is a programming error and aborts.
bool register_machine(std::string type, MachineFactory factory);
// The registered machine types, sorted (for errors and `vmlaunch plan`).
std::vector<std::string> machine_types();
// Builds `graph`'s machine type ("<arch>/<type>", e.g. "riscv64/virt"); an unknown type is an error listing
// the known ones.
base::ErrorOr<std::unique_ptr<Machine>> build_machine(const graph::Graph& graph, MachineContext& context);
// Same, with the type given explicitly (build_machine reads it from the graph).
base::ErrorOr<std::unique_ptr<Machine>> build_machine_of_type(std::string_view type,
                                                              const graph::Graph& graph,
                                                              MachineContext& context);

}  // namespace hw

#define HW_MACHINE_CONCAT_(a, b) a##b
#define HW_MACHINE_CONCAT(a, b) HW_MACHINE_CONCAT_(a, b)
// In a machine's .cpp: HW_REGISTER_MACHINE("riscv64/virt", build_riscv_virt);
#define HW_REGISTER_MACHINE(type, factory)                                                 \
  [[maybe_unused]] static const bool HW_MACHINE_CONCAT(hw_machine_registered_, __LINE__) = \
      ::hw::register_machine((type), (factory))
