// The accelerator interface, shared by `kvm` and `jit` (after cloud-hypervisor's hypervisor crate):
//   Accelerator::create_vm -> Vm::{map_memory, create_vcpu, set_irq_line} -> Vcpu::run() -> VcpuExit.
// Device accesses do not come back as exits: the vCPU hands them to the injected VmOps while it runs,
// so the exit type stays tiny and both accelerators route MMIO and port I/O the same way.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/guest_memory.h"
#include "base/result.h"
#include "base/timebase.h"

namespace accel {

struct AccelError {
  std::string message;
  AccelError() = default;
  AccelError(std::string msg) : message(std::move(msg)) {}
};

template <typename T>
using AccelResult = base::Result<T, AccelError>;

// How guest device accesses reach hw/. Called on vCPU threads, concurrently.
// Return false when nothing claims the address; the accelerator then applies its architecture's
// rule (x86 PIO reads as all-ones, RISC-V raises an access fault).
class VmOps {
 public:
  virtual ~VmOps() = default;
  virtual bool mmio_read(uint64_t addr, std::span<uint8_t> data) = 0;
  virtual bool mmio_write(uint64_t addr, std::span<const uint8_t> data) = 0;
  virtual bool pio_read(uint16_t port, std::span<uint8_t> data) = 0;
  virtual bool pio_write(uint16_t port, std::span<const uint8_t> data) = 0;
  // x86 with VmSpec::X86Irqchip::Split: a vCPU's LAPIC took an EOI for `vector`, which the routes of
  // Vm::set_ioapic_routes mark as a level-triggered IOAPIC interrupt; the machine's IOAPIC clears
  // the remote IRR of the pins using it. Called on vCPU threads. Default: nothing to tell.
  virtual void ioapic_eoi(uint8_t vector) { (void)vector; }
};

// Why Vcpu::run() returned.
struct ExitHalt {};    // the vCPU halted with interrupts off: nothing will wake it
struct ExitShutdown {  // guest asked to power off (syscon, ACPI, exit port, HTIF)
  int exit_code = 0;   // what `vmlaunch up` exits with (HTIF tests report through it)
};
struct ExitReset {};        // guest asked to reboot
struct ExitInterrupted {};  // Vcpu::kick() from another thread
struct ExitDebug {          // a debug stop the vCPU's debug control asked for (Vcpu::set_debug)
  uint64_t pc = 0;
  enum class Reason { kBreakpoint, kStep, kWatchpoint } reason = Reason::kBreakpoint;
  uint64_t data_address = 0;  // kWatchpoint: where the access overlapped a watchpoint
  bool write = false;         // kWatchpoint: the access was a store
};
using VcpuExit = std::variant<ExitHalt, ExitShutdown, ExitReset, ExitInterrupted, ExitDebug>;

// Register state at power-on, per architecture. The machine builder fills it from the boot config.
struct X86BootState {
  enum class Mode { Pvh32, Linux64 } mode = Mode::Pvh32;
  uint64_t rip = 0;
  uint64_t rsi = 0;  // Linux: boot_params; PVH: unused
  uint64_t rbx = 0;  // PVH: hvm_start_info
  uint64_t rsp = 0;
  uint64_t cr3 = 0;  // Linux64: identity page tables the builder placed in guest RAM
  uint64_t gdt_base = 0;
};
struct RiscvBootState {
  uint64_t pc = 0;
  uint64_t a0 = 0;  // hart id
  uint64_t a1 = 0;  // device tree address
  uint64_t a2 = 0;  // fw_dynamic info, when used
};
using BootState = std::variant<X86BootState, RiscvBootState>;

// The complete architectural state of a riscv64 hart, for debuggers (and snapshots later). CSRs are
// the stored ones; derived views (sstatus, sie, sip) are computed by whoever shows them. `mip` is
// the software-writable pending bits: device lines belong to the devices' own state.
struct RiscvVcpuState {
  uint64_t x[32] = {};  // x[0] reads as zero and ignores writes
  uint64_t pc = 0;
  uint64_t f[32] = {};  // NaN-boxed single values in the low half
  uint32_t fflags = 0, frm = 0;
  uint8_t priv = 3;  // 0 U, 1 S, 3 M
  uint64_t instret = 0, cycle = 0;
  uint64_t mstatus = 0, medeleg = 0, mideleg = 0, mie = 0, mip = 0;
  uint64_t mtvec = 0, stvec = 0, mepc = 0, sepc = 0, mcause = 0, scause = 0;
  uint64_t mtval = 0, stval = 0, mscratch = 0, sscratch = 0, satp = 0;
  uint64_t mcounteren = 0, scounteren = 0, mcountinhibit = 0;
  uint64_t menvcfg = 0, senvcfg = 0, stimecmp = ~0ull;
  uint8_t pmpcfg[16] = {};
  uint64_t pmpaddr[16] = {};
  bool reservation_valid = false;  // an LR's reservation (dropped by set_state)
  // Debug triggers (Sdtrig): tselect and each trigger's tdata1/tdata2, as the guest's CSRs hold them
  // (tdata1 0 reads back as a disabled trigger; a debugger may set dmode and action 1).
  static constexpr unsigned kTriggers = 2;
  uint64_t tselect = 0;
  uint64_t tdata1[kTriggers] = {};
  uint64_t tdata2[kTriggers] = {};
};
// The complete state of an x86_64 vCPU as the kvm accelerator keeps it. Registers a debugger shows
// are named fields; the rest (FPU/SSE/AVX state, LAPIC register page, pending events) are byte
// strings in the layout of the accelerator that saved them (KVM's uapi structs): a snapshot records
// its accelerator and refuses another, so nothing else ever reads them.
struct X86Segment {
  uint64_t base = 0;
  uint32_t limit = 0;
  uint16_t selector = 0;
  uint8_t type = 0, present = 0, dpl = 0, db = 0, s = 0, l = 0, g = 0, avl = 0, unusable = 0;
};
struct X86VcpuState {
  // rax rbx rcx rdx rsi rdi rsp rbp r8..r15 (KVM's kvm_regs order)
  uint64_t gpr[16] = {};
  uint64_t rip = 0, rflags = 2;
  X86Segment cs, ds, es, fs, gs, ss, tr, ldt;
  uint64_t gdt_base = 0, idt_base = 0;
  uint16_t gdt_limit = 0, idt_limit = 0;
  uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, efer = 0, apic_base = 0;
  uint64_t interrupt_bitmap[4] = {};  // an external interrupt KVM has accepted but not injected
  uint64_t xcr0 = 1;
  uint64_t dr[4] = {}, dr6 = 0xffff0ff0, dr7 = 0x400;
  uint32_t mp_state = 0;                            // KVM_MP_STATE_*
  std::vector<std::pair<uint32_t, uint64_t>> msrs;  // index, value
  std::vector<uint8_t> xsave;   // the XSAVE area (kvm_xsave, or the larger KVM_GET_XSAVE2 one)
  std::vector<uint8_t> lapic;   // the 1 KiB LAPIC register page (kvm_lapic_state)
  std::vector<uint8_t> events;  // pending exception/interrupt/NMI/SMI (kvm_vcpu_events)
  uint32_t tsc_khz = 0;         // the guest's TSC rate (KVM_GET_TSC_KHZ); 0: unknown, not checked
};
using VcpuState = std::variant<RiscvVcpuState, X86VcpuState>;

// What a debugger asks of a vCPU. Breakpoints are instruction addresses as the guest fetches them
// (virtual once paging is on).
struct VcpuDebug {
  bool single_step = false;           // run() returns ExitDebug{kStep} after one instruction
  std::vector<uint64_t> breakpoints;  // run() returns ExitDebug{kBreakpoint} before executing one
  // run() returns ExitDebug{kWatchpoint} at an instruction whose load (read) or store (write)
  // touches [address, address+length), virtual as the guest accessed it: on riscv64 (jit) before
  // the access, the pc at that instruction (gdb treats riscv watchpoints as non-steppable and steps
  // over it itself; the instruction at the resume pc runs without its watch stopping it).
  struct Watchpoint {
    uint64_t address = 0, length = 0;
    bool read = false, write = false;
  };
  std::vector<Watchpoint> watchpoints;
  // Where the debugger planted the architecture's breakpoint instruction in guest RAM (x86_64:
  // int3; kvm only). run() returns ExitDebug{kBreakpoint} with the pc (and the vCPU's instruction
  // pointer) at the planted address when the guest executes one; the guest's own int3s elsewhere
  // raise #BP in the guest as without a debugger.
  std::vector<uint64_t> sw_breakpoints;
};

class Vcpu {
 public:
  virtual ~Vcpu() = default;
  virtual AccelResult<void> set_boot_state(const BootState& state) = 0;
  // Runs until an exit. Call from the vCPU's own thread only.
  virtual AccelResult<VcpuExit> run() = 0;
  // Makes a concurrent run() return ExitInterrupted soon. Safe from any thread.
  virtual void kick() = 0;
  // Guest instructions this vCPU has retired, for query-stats; may lag a running vCPU by a few
  // thousand instructions. Safe from any thread. nullopt where the accelerator does not count them
  // (kvm: that would take the host's performance counters).
  virtual std::optional<uint64_t> instructions_retired() const { return std::nullopt; }

  // Register state and debug control. Only while this vCPU is outside run() or its Vm is paused
  // (Vm::pause). Accelerators without them keep these defaults.
  virtual AccelResult<VcpuState> get_state() {
    return base::fail(AccelError("this accelerator cannot read vCPU state yet"));
  }
  virtual AccelResult<void> set_state(const VcpuState& state) {
    (void)state;
    return base::fail(AccelError("this accelerator cannot write vCPU state yet"));
  }
  // Replaces the debug settings; an empty VcpuDebug turns debugging off (full speed again). A run()
  // that resumes at a breakpoint address executes that instruction first (a debugger continuing
  // from a breakpoint is not stopped by it again).
  virtual AccelResult<void> set_debug(const VcpuDebug& debug) {
    (void)debug;
    return base::fail(AccelError("this accelerator has no debug control yet"));
  }
  // The guest-physical address of guest-virtual `gva` under the vCPU's current translation for a
  // data access (no accessed/dirty bits set, no permission checks, no fault raised); an error when
  // nothing maps it.
  virtual AccelResult<uint64_t> translate(uint64_t gva) {
    (void)gva;
    return base::fail(AccelError("this accelerator cannot translate guest addresses yet"));
  }
};

// What the machine asks of the VM as a whole.
struct VmSpec {
  std::string arch;  // "x86_64", "riscv64"
  unsigned vcpu_count = 1;
  std::string cpu_model;                  // "host", "rv64gc", ...
  std::vector<std::string> cpu_features;  // "+x2apic", "-cx16"
  struct Topology {
    unsigned sockets = 1, cores = 1, threads = 1;
  } topology;
  // x86_64: where the interrupt controllers live.
  enum class X86Irqchip {
    Full,   // PIC pair, IOAPIC, PIT and LAPICs in the accelerator (KVM's in-kernel irqchip): `pc`
    Split,  // only the LAPICs in the accelerator; the machine emulates the IOAPIC (an MMIO device),
            // sends its interrupts with Vm::signal_msi and tells the accelerator its level-triggered
            // routes (Vm::set_ioapic_routes); no PIC, no PIT: `microvm` (QEMU's kernel-irqchip=split)
  } x86_irqchip = X86Irqchip::Full;
  // riscv64: the mtime counter shared with the CLINT device (the `time` CSR and stimecmp read it).
  // Owned by the machine; outlives the Vm. Unused on x86_64.
  const base::Timebase* timebase = nullptr;
  // Settings from the config's accel entry for the chosen accelerator (`{type: jit, tier: llvm}`
  // gives {"tier", "llvm"}), already validated against the schema; the accelerator interprets
  // them and refuses names it does not know.
  std::vector<std::pair<std::string, std::string>> accel_options;
};

// x86: the APIC id of vCPU `index` under `topology`: socket | core | thread, each field as wide as
// the next power of two (what CPUID leaf 0xB describes), so ids have gaps when cores or threads are
// not powers of two. The kvm accelerator numbers vCPUs by it; machines write it into MP/ACPI tables.
inline uint32_t x86_apic_id(const VmSpec::Topology& topology, unsigned index) {
  auto bits = [](unsigned count) {
    unsigned b = 0;
    while ((1u << b) < count) ++b;
    return b;
  };
  const unsigned threads = topology.threads ? topology.threads : 1,
                 cores = topology.cores ? topology.cores : 1;
  const unsigned thread = index % threads, core = (index / threads) % cores,
                 socket = index / (threads * cores);
  return (socket << (bits(threads) + bits(cores))) | (core << bits(threads)) | thread;
}

class Vm {
 public:
  virtual ~Vm() = default;
  // Makes a RAM region of `memory` visible to the guest. The region outlives the Vm.
  virtual AccelResult<void> map_memory(const base::GuestMemory::Region& region) = 0;
  virtual AccelResult<std::unique_ptr<Vcpu>> create_vcpu(unsigned index) = 0;
  // Parks every vCPU where it is (state intact) within `timeout`, and lets them continue. A paused
  // vCPU's run() does not return on its own; resume before stopping. Safe from any thread.
  // Accelerators that cannot park keep these defaults.
  virtual AccelResult<void> pause(std::chrono::milliseconds timeout) {
    (void)timeout;
    return base::fail(AccelError("this accelerator cannot pause vCPUs yet"));
  }
  virtual AccelResult<void> resume() {
    return base::fail(AccelError("this accelerator cannot pause vCPUs yet"));
  }
  // Snapshots: the state the accelerator keeps for the VM as a whole rather than per vCPU (kvm: the
  // guest clock and the in-kernel PIC pair, IOAPIC and PIT), as bytes only the same accelerator reads
  // back. Saved with every vCPU paused; loaded into a fresh Vm before its vCPUs run, with the guest
  // clock stepped forward by `ns_away` (the time the snapshot spent on disk). Default: nothing to
  // save (the jit's clock is the machine's timebase).
  virtual AccelResult<std::vector<uint8_t>> save_vm_state() { return std::vector<uint8_t>{}; }
  virtual AccelResult<void> load_vm_state(std::span<const uint8_t> bytes, uint64_t ns_away) {
    (void)ns_away;
    if (bytes.empty()) return {};
    return base::fail(AccelError("this accelerator keeps no VM state to load"));
  }
  // Someone outside the guest (a debugger) wrote guest RAM at [gpa, gpa+len): the accelerator drops
  // what it cached of the old bytes (decoded or translated code). Safe from any thread.
  virtual void note_memory_written(uint64_t gpa, uint64_t len) {
    (void)gpa;
    (void)len;
  }
  // Drives an interrupt line of the accelerator's interrupt controller: for kvm a GSI of the
  // in-kernel IOAPIC/PIC; for jit a hart's interrupt-pending input (line = hart * 64 + mip bit).
  virtual AccelResult<void> set_irq_line(uint32_t line, bool level) = 0;
  // Delivers one message-signalled interrupt (PCI MSI/MSI-X: the memory write of `data` to
  // `address` a device would make). Safe from any thread. Accelerators without an MSI-capable
  // interrupt controller keep this default; machines then must not advertise MSI/MSI-X.
  virtual AccelResult<void> signal_msi(uint64_t address, uint32_t data) {
    return base::fail(AccelError("MSI is not supported by this accelerator"));
  }
  // An eventfd the accelerator turns into the MSI (address, data) by itself each time it is
  // signalled, with no VMM thread in between (KVM irqfd: a passed-through device's interrupt goes
  // from the host's handler straight into the guest). Called again for the same eventfd, it re-aims
  // it at the new message. Safe from any thread. Default: unsupported; the caller then reads the
  // eventfd and calls signal_msi itself.
  virtual AccelResult<void> set_msi_eventfd(int eventfd, uint64_t address, uint32_t data) {
    (void)eventfd;
    (void)address;
    (void)data;
    return base::fail(AccelError("MSI eventfds are not supported by this accelerator"));
  }
  virtual AccelResult<void> remove_msi_eventfd(int eventfd) {
    (void)eventfd;
    return base::fail(AccelError("MSI eventfds are not supported by this accelerator"));
  }
  // A level-triggered line driven by an eventfd pair with no VMM thread in between (KVM irqfd with
  // resample: a passed-through device's INTx). Each signal of `trigger` asserts line `line` (a GSI
  // of the in-kernel IOAPIC); the guest's EOI of it deasserts the line and signals `resample`, on
  // which the source re-arms (VFIO unmasks the host INTx). Safe from any thread. Default:
  // unsupported; the caller then offers no such interrupt.
  virtual AccelResult<void> set_level_eventfd(uint32_t line, int trigger, int resample) {
    (void)line;
    (void)trigger;
    (void)resample;
    return base::fail(AccelError("level-triggered eventfds are not supported by this accelerator"));
  }
  virtual AccelResult<void> remove_level_eventfd(uint32_t line, int trigger) {
    (void)line;
    (void)trigger;
    return base::fail(AccelError("level-triggered eventfds are not supported by this accelerator"));
  }
  // Device memory the guest reaches without exits (a passed-through BAR mmapped from VFIO): `size`
  // bytes at `host`, page-aligned, appear at guest-physical `gpa` until unmapped. Returns an id for
  // unmap_device_memory. Fails when the range overlaps other memory (the caller keeps trapping).
  // Safe from any thread; the mapping must outlive its use. Default: unsupported.
  virtual AccelResult<uint32_t> map_device_memory(uint64_t gpa, void* host, uint64_t size) {
    (void)gpa;
    (void)host;
    (void)size;
    return base::fail(AccelError("device memory mappings are not supported by this accelerator"));
  }
  virtual AccelResult<void> unmap_device_memory(uint32_t id) {
    (void)id;
    return base::fail(AccelError("device memory mappings are not supported by this accelerator"));
  }
  // x86 with X86Irqchip::Split: the message each IOAPIC pin currently sends, for the pins whose EOI
  // the machine needs (level-triggered ones). Replaces the previous set. The accelerator reports
  // LAPIC EOIs of these vectors through VmOps::ioapic_eoi; pins not listed get no EOI report.
  // Delivery itself stays with signal_msi. Default: a no-op, for accelerators without such EOIs.
  struct IoapicRoute {
    uint32_t pin = 0;  // < 24
    uint64_t address = 0;
    uint32_t data = 0;
  };
  virtual AccelResult<void> set_ioapic_routes(std::span<const IoapicRoute> routes) {
    (void)routes;
    return {};
  }
};

// Whether an accelerator can run here, and if not, why (shown by `vmlaunch accel` and `plan`).
struct Availability {
  bool usable = false;
  std::string detail;  // "KVM API 12 on /dev/kvm" or "/dev/kvm: No such file or directory"
};

class Accelerator {
 public:
  virtual ~Accelerator() = default;
  virtual std::string_view name() const = 0;
  virtual std::vector<std::string> guest_arches() const = 0;
  virtual Availability probe() const = 0;
  // `ops` and `memory` outlive the Vm.
  virtual AccelResult<std::unique_ptr<Vm>> create_vm(const VmSpec& spec, const base::GuestMemory& memory,
                                                     VmOps& ops) = 0;
  // What its VMs did, for `vmlaunch up --stats` (lines for stderr; empty when it counts nothing).
  // Valid while a VM runs and after it is gone.
  virtual std::string stats_text() const { return {}; }
  // The same numbers as one JSON object's text, for `up --stats=json:FILE` (empty: nothing counted).
  virtual std::string stats_json() const { return {}; }
};

}  // namespace accel
