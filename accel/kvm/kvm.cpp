#include "accel/kvm/kvm.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

namespace accel::kvm {
namespace {

// x86 architectural constants for the boot states.
constexpr uint64_t kCr0Pe = 1u << 0, kCr0Et = 1u << 4, kCr0Pg = 1u << 31;
constexpr uint64_t kCr4Pae = 1u << 5;
constexpr uint64_t kEferLme = 1u << 8, kEferLma = 1u << 10;
constexpr uint16_t kBootCs = 0x10, kBootDs = 0x18;  // Linux's __BOOT_CS / __BOOT_DS; PVH uses the same
// Where KVM's Intel backend keeps its real-mode TSS and identity map: just below the 4 GiB BIOS area,
// clear of the IOAPIC/LAPIC and of every machine's RAM.
constexpr uint64_t kTssAddress = 0xfffbd000;
constexpr uint64_t kIdentityMapAddress = 0xfffbc000;

// The uapi headers declare these variable-length structs with __DECLARE_FLEX_ARRAY, which C++
// compilers size differently from C (12 bytes instead of 8 for kvm_cpuid2), and the ioctl numbers
// encode the size. So the headers and request numbers are spelled out here with the C layout.
struct Cpuid2Header {
  uint32_t nent;
  uint32_t padding;
};  // followed by nent kvm_cpuid_entry2
struct MsrsHeader {
  uint32_t nmsrs;
  uint32_t pad;
};  // followed by nmsrs kvm_msr_entry
struct MsrListHeader {
  uint32_t nmsrs;
};  // followed by nmsrs uint32_t indices
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
// kvm_xsave ends in a flexible array too; its fixed part is the 4 KiB legacy area.
struct Xsave4k {
  uint32_t region[1024];
};
constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave4k);
constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave4k);
constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, Xsave4k);
struct IrqRoutingHeader {
  uint32_t nr;
  uint32_t flags;
};  // followed by nr kvm_irq_routing_entry
constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);
static_assert(sizeof(Cpuid2Header) == 8 && sizeof(MsrsHeader) == 8 && sizeof(MsrListHeader) == 4);
static_assert(sizeof(kvm_irq_routing_entry) % 8 == 0);

// Split irqchip: the IOAPIC pins whose GSIs KVM reserves for userspace IOAPIC routes (the 82093AA's 24).
constexpr uint32_t kIoapicPins = 24;

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// One GSI routing entry that delivers an MSI (both the split irqchip's IOAPIC pins and irqfd MSIs).
kvm_irq_routing_entry msi_route(uint32_t gsi, uint64_t address, uint32_t data) {
  kvm_irq_routing_entry entry{};
  entry.gsi = gsi;
  entry.type = KVM_IRQ_ROUTING_MSI;
  entry.u.msi.address_lo = static_cast<uint32_t>(address);
  entry.u.msi.address_hi = static_cast<uint32_t>(address >> 32);
  entry.u.msi.data = data;
  return entry;
}

// The signal kick() sends: its handler does nothing, its only job is to make KVM_RUN return EINTR.
int kick_signal() {
  return SIGRTMIN + 2;
}
void install_kick_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must come back with EINTR
    sigaction(kick_signal(), &action, nullptr);
  });
}

// VMLAUNCH_KVM_TRACE=1 logs every I/O, MMIO and debug exit and the irqchip setup to stderr (bring-up).
bool trace_exits() {
  static const bool enabled = [] {
    const char* value = std::getenv("VMLAUNCH_KVM_TRACE");
    return value && *value && *value != '0';
  }();
  return enabled;
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : m_fd(fd) {}
  Fd(Fd&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
  Fd& operator=(Fd&& other) noexcept {
    std::swap(m_fd, other.m_fd);
    return *this;
  }
  ~Fd() {
    if (m_fd >= 0) ::close(m_fd);
  }
  int get() const { return m_fd; }

 private:
  int m_fd = -1;
};

class KvmVcpu;

class KvmVm final : public Vm {
 public:
  KvmVm(Fd kvm, Fd vm, size_t run_size, CpuidTable cpuid, const VmSpec& spec, VmOps& ops)
      : m_kvm(std::move(kvm)),
        m_vm(std::move(vm)),
        m_run_size(run_size),
        m_cpuid(std::move(cpuid)),
        m_spec(spec),
        m_ops(ops) {}

  AccelResult<void> map_memory(const base::GuestMemory::Region& region) override {
    kvm_userspace_memory_region slot{};
    slot.slot = m_next_slot;
    slot.guest_phys_addr = region.guest_base;
    slot.memory_size = region.size;
    slot.userspace_addr = reinterpret_cast<uint64_t>(region.host);
    // Safety: the region's host mapping is owned by GuestMemory, which outlives this Vm (contract).
    if (::ioctl(m_vm.get(), KVM_SET_USER_MEMORY_REGION, &slot) < 0)
      return base::fail(AccelError(errno_text("KVM_SET_USER_MEMORY_REGION")));
    ++m_next_slot;
    return {};
  }

  AccelResult<std::unique_ptr<Vcpu>> create_vcpu(unsigned index) override;

  // Pausing: every vCPU inside run() is kicked out of KVM_RUN and parks in park_while_paused() with its
  // state where KVM keeps it; the guest's kvmclock is saved once they all are, and put back before
  // they continue, so the guest sees no time pass (as QEMU's stop/cont does).
  AccelResult<void> pause(std::chrono::milliseconds timeout) override;
  AccelResult<void> resume() override;
  AccelResult<std::vector<uint8_t>> save_vm_state() override;
  AccelResult<void> load_vm_state(std::span<const uint8_t> bytes, uint64_t ns_away) override;
  // The MSRs a vCPU's state carries: the architectural ones Linux and firmware set up, kvmclock's,
  // each only if this KVM saves it (KVM_GET_MSR_INDEX_LIST) and reads it back. Found once.
  AccelResult<std::vector<uint32_t>> state_msrs(int vcpu_fd);
  // Bytes of the XSAVE area KVM_GET_XSAVE2 writes (4096 without dynamic features such as AMX).
  size_t xsave_size();
  // Whether KVM scales a vCPU's TSC to another rate (KVM_CAP_TSC_CONTROL).
  bool tsc_control();
  // Called by KvmVcpu: its run() starts or ends (the vCPUs a pause waits for), and the parking spot.
  void vcpu_created(KvmVcpu* vcpu);
  void vcpu_destroyed(KvmVcpu* vcpu);
  void enter_run();
  void leave_run();
  // Parks while a pause is requested; returns false at once, unparked, when the vCPU has an I/O
  // exit to complete first (io_pending).
  bool park_while_paused(bool io_pending);
  bool pause_requested() {
    std::lock_guard guard(m_park_lock);
    return m_pause_requested;
  }

  bool split() const { return m_spec.x86_irqchip == VmSpec::X86Irqchip::Split; }

  // Full irqchip: creates the PIC pair, IOAPIC and PIT on first use, which is after the machine has
  // mapped its RAM. Order matters for launch latency: once the irqchip exists, every
  // KVM_SET_USER_MEMORY_REGION waits for an SRCU grace period (5-10 ms measured here, against
  // 0.05 ms before). Safe from any thread; a no-op in split mode (enabled with the VM).
  AccelResult<void> ensure_irqchip() {
    if (split() || m_irqchip_ready.load(std::memory_order_acquire)) return {};
    std::lock_guard guard(m_irqchip_lock);
    if (m_irqchip_ready.load(std::memory_order_relaxed)) return {};
    // Safety: no arguments; creates the PIC pair, IOAPIC and the LAPICs of vCPUs created later.
    if (::ioctl(m_vm.get(), KVM_CREATE_IRQCHIP, 0) < 0)
      return base::fail(AccelError(errno_text("KVM_CREATE_IRQCHIP")));
    kvm_pit_config pit{};
    pit.flags = KVM_PIT_SPEAKER_DUMMY;  // port 0x61 reads as a speaker that is never there
    // Safety: plain struct argument.
    if (::ioctl(m_vm.get(), KVM_CREATE_PIT2, &pit) < 0)
      return base::fail(AccelError(errno_text("KVM_CREATE_PIT2")));
    if (trace_exits()) std::fprintf(stderr, "kvm: in-kernel irqchip (PIC, IOAPIC, LAPICs) and PIT created\n");
    m_irqchip_ready.store(true, std::memory_order_release);
    return {};
  }

  AccelResult<void> set_irq_line(uint32_t line, bool level) override {
    if (split())
      return base::fail(AccelError("KVM_IRQ_LINE: the split irqchip has no in-kernel IOAPIC (line " +
                                   std::to_string(line) + ")"));
    TRY(ensure_irqchip());
    kvm_irq_level irq{};
    irq.irq = line;
    irq.level = level ? 1 : 0;
    // Safety: plain struct argument; the in-kernel irqchip validates the GSI.
    if (::ioctl(m_vm.get(), KVM_IRQ_LINE, &irq) < 0)
      return base::fail(AccelError(errno_text(("KVM_IRQ_LINE " + std::to_string(line)).c_str())));
    return {};
  }

  AccelResult<void> signal_msi(uint64_t address, uint32_t data) override {
    TRY(ensure_irqchip());
    kvm_msi msi{};
    msi.address_lo = static_cast<uint32_t>(address);
    msi.address_hi = static_cast<uint32_t>(address >> 32);
    msi.data = data;
    // Safety: plain struct argument; the in-kernel irqchip (created with the VM) decodes the message.
    int delivered = ::ioctl(m_vm.get(), KVM_SIGNAL_MSI, &msi);
    if (delivered < 0) return base::fail(AccelError(errno_text("KVM_SIGNAL_MSI")));
    return {};  // 0 = the guest's LAPICs blocked it: the guest's own choice, not an error
  }

  // Split irqchip: one MSI route per level-triggered pin, GSI = pin (below the reserved kIoapicPins).
  // KVM does not deliver through these (the machine's IOAPIC calls signal_msi); it scans them
  // (kvm_scan_ioapic_routes) for level-triggered vectors aimed at each vCPU, and a LAPIC EOI of such
  // a vector exits with KVM_EXIT_IOAPIC_EOI, which run() hands to VmOps::ioapic_eoi.
  AccelResult<void> set_ioapic_routes(std::span<const IoapicRoute> routes) override {
    if (!split()) return base::fail(AccelError("IOAPIC routes are only set with the split irqchip"));
    std::vector<uint64_t> buffer(
        (sizeof(IrqRoutingHeader) + kIoapicPins * sizeof(kvm_irq_routing_entry)) / 8 + 1);
    auto* header = reinterpret_cast<IrqRoutingHeader*>(buffer.data());
    auto* entries = reinterpret_cast<kvm_irq_routing_entry*>(reinterpret_cast<uint8_t*>(buffer.data()) +
                                                             sizeof(IrqRoutingHeader));
    uint32_t count = 0;
    for (const IoapicRoute& route : routes) {
      if (route.pin >= kIoapicPins || count == kIoapicPins)
        return base::fail(
            AccelError("IOAPIC route for pin " + std::to_string(route.pin) + " is out of range"));
      entries[count++] = msi_route(route.pin, route.address, route.data);
    }
    header->nr = count;
    header->flags = 0;
    // Safety: buffer (8-byte aligned) holds the header and nr entries, the C layout of kvm_irq_routing.
    if (::ioctl(m_vm.get(), kSetGsiRouting, header) < 0)
      return base::fail(AccelError(errno_text("KVM_SET_GSI_ROUTING")));
    return {};
  }

  // Full irqchip only (pc): the GSI routing table is replaced as a whole, so it carries KVM's
  // default routes (GSI 0-15 to the PICs and the IOAPIC, 16-23 to the IOAPIC) followed by one MSI
  // route per eventfd, GSI 24 up; KVM_IRQFD binds the eventfd to its GSI. (With the split irqchip
  // the table holds the IOAPIC's routes instead, and the caller forwards the eventfd itself.)
  AccelResult<void> set_msi_eventfd(int eventfd, uint64_t address, uint32_t data) override {
    if (split()) return base::fail(AccelError("MSI eventfds need the full in-kernel irqchip"));
    TRY(ensure_irqchip());
    std::lock_guard guard(m_msi_routes_lock);
    auto it = m_msi_routes.find(eventfd);
    bool is_new = it == m_msi_routes.end();
    if (is_new) {
      // The lowest free GSI above the IOAPIC's: a guest toggling MSI does not use them up.
      uint32_t gsi = kIoapicPins;
      for (bool taken = true; taken; ++gsi) {
        taken = false;
        for (const auto& [fd, route] : m_msi_routes) taken |= route.gsi == gsi;
        if (!taken) break;
      }
      it = m_msi_routes.emplace(eventfd, MsiRoute{gsi, 0, 0}).first;
    }
    it->second.address = address;
    it->second.data = data;
    if (auto routed = write_routes_locked(); !routed.ok()) {
      if (is_new) m_msi_routes.erase(it);
      return routed;
    }
    if (is_new) {
      kvm_irqfd irqfd{};
      irqfd.fd = static_cast<uint32_t>(eventfd);
      irqfd.gsi = it->second.gsi;
      // Safety: plain struct argument; KVM takes its own reference to the eventfd.
      if (::ioctl(m_vm.get(), KVM_IRQFD, &irqfd) < 0) {
        AccelError error(errno_text("KVM_IRQFD"));
        m_msi_routes.erase(it);
        (void)write_routes_locked();
        return base::fail(error);
      }
    }
    if (trace_exits())
      std::fprintf(stderr, "kvm: irqfd %d -> gsi %u -> MSI address 0x%llx data 0x%x\n", eventfd,
                   it->second.gsi, (unsigned long long)address, data);
    return {};
  }

  AccelResult<void> remove_msi_eventfd(int eventfd) override {
    std::lock_guard guard(m_msi_routes_lock);
    auto it = m_msi_routes.find(eventfd);
    if (it == m_msi_routes.end()) return {};
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(eventfd);
    irqfd.gsi = it->second.gsi;
    irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
    // Safety: plain struct argument.
    int unbound = ::ioctl(m_vm.get(), KVM_IRQFD, &irqfd);
    m_msi_routes.erase(it);
    TRY(write_routes_locked());
    if (unbound < 0) return base::fail(AccelError(errno_text("KVM_IRQFD (deassign)")));
    return {};
  }

  // Full irqchip only: with the split one the IOAPIC is ours, and KVM cannot see its EOIs.
  AccelResult<void> set_level_eventfd(uint32_t line, int trigger, int resample) override {
    if (split()) return base::fail(AccelError("level-triggered eventfds need the full in-kernel irqchip"));
    if (line >= kIoapicPins)
      return base::fail(AccelError("GSI " + std::to_string(line) + " is no IOAPIC pin"));
    TRY(ensure_irqchip());
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(trigger);
    irqfd.gsi = line;
    irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
    irqfd.resamplefd = static_cast<uint32_t>(resample);
    // Safety: plain struct argument; KVM takes its own references to both eventfds.
    if (::ioctl(m_vm.get(), KVM_IRQFD, &irqfd) < 0)
      return base::fail(AccelError(errno_text("KVM_IRQFD (resample)")));
    if (trace_exits())
      std::fprintf(stderr, "kvm: irqfd %d -> gsi %u, level, resample %d\n", trigger, line, resample);
    return {};
  }

  AccelResult<void> remove_level_eventfd(uint32_t line, int trigger) override {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(trigger);
    irqfd.gsi = line;
    irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
    // Safety: plain struct argument. Deassigning also drops the line KVM asserted for it.
    if (::ioctl(m_vm.get(), KVM_IRQFD, &irqfd) < 0)
      return base::fail(AccelError(errno_text("KVM_IRQFD (deassign)")));
    return {};
  }

  // Slots after RAM's, reused once freed; guarded, since vCPU threads move BARs.
  AccelResult<uint32_t> map_device_memory(uint64_t gpa, void* host, uint64_t size) override {
    std::lock_guard guard(m_device_slots_lock);
    uint32_t id = m_next_slot;
    if (!m_free_slots.empty()) id = m_free_slots.back();
    kvm_userspace_memory_region slot{};
    slot.slot = id;
    slot.guest_phys_addr = gpa;
    slot.memory_size = size;
    slot.userspace_addr = reinterpret_cast<uint64_t>(host);
    // Safety: the caller keeps the mapping until unmap_device_memory (contract).
    if (::ioctl(m_vm.get(), KVM_SET_USER_MEMORY_REGION, &slot) < 0)
      return base::fail(AccelError(errno_text("KVM_SET_USER_MEMORY_REGION")));
    if (id == m_next_slot)
      ++m_next_slot;
    else
      m_free_slots.pop_back();
    if (trace_exits())
      std::fprintf(stderr, "kvm: slot %u: device memory at 0x%llx, 0x%llx bytes\n", id,
                   (unsigned long long)gpa, (unsigned long long)size);
    return id;
  }

  AccelResult<void> unmap_device_memory(uint32_t id) override {
    std::lock_guard guard(m_device_slots_lock);
    kvm_userspace_memory_region slot{};
    slot.slot = id;  // size 0 deletes it
    // Safety: plain struct argument.
    if (::ioctl(m_vm.get(), KVM_SET_USER_MEMORY_REGION, &slot) < 0)
      return base::fail(AccelError(errno_text("KVM_SET_USER_MEMORY_REGION (delete)")));
    m_free_slots.push_back(id);
    if (trace_exits()) std::fprintf(stderr, "kvm: slot %u: removed\n", id);
    return {};
  }

  int kvm_fd() const { return m_kvm.get(); }
  int vm_fd() const { return m_vm.get(); }
  size_t run_size() const { return m_run_size; }
  const CpuidTable& cpuid() const { return m_cpuid; }
  const VmSpec& spec() const { return m_spec; }
  VmOps& ops() { return m_ops; }

 private:
  Fd m_kvm;
  Fd m_vm;
  size_t m_run_size;
  CpuidTable m_cpuid;
  VmSpec m_spec;
  VmOps& m_ops;
  uint32_t m_next_slot = 0;
  std::mutex m_device_slots_lock;
  std::vector<uint32_t> m_free_slots;  // device memory slots given back
  struct MsiRoute {
    uint32_t gsi;
    uint64_t address;
    uint32_t data;
  };
  std::mutex m_msi_routes_lock;
  std::map<int, MsiRoute> m_msi_routes;  // by eventfd

  AccelResult<void> write_routes_locked() {
    constexpr uint32_t kPicPins = 16;
    const size_t count = kPicPins + kIoapicPins + m_msi_routes.size();
    std::vector<uint64_t> buffer((sizeof(IrqRoutingHeader) + count * sizeof(kvm_irq_routing_entry)) / 8 + 1);
    auto* header = reinterpret_cast<IrqRoutingHeader*>(buffer.data());
    auto* entries = reinterpret_cast<kvm_irq_routing_entry*>(reinterpret_cast<uint8_t*>(buffer.data()) +
                                                             sizeof(IrqRoutingHeader));
    uint32_t n = 0;
    for (uint32_t gsi = 0; gsi < kPicPins; ++gsi) {
      kvm_irq_routing_entry& e = entries[n++];
      e = {};
      e.gsi = gsi;
      e.type = KVM_IRQ_ROUTING_IRQCHIP;
      e.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      e.u.irqchip.pin = gsi % 8;
    }
    for (uint32_t gsi = 0; gsi < kIoapicPins; ++gsi) {
      kvm_irq_routing_entry& e = entries[n++];
      e = {};
      e.gsi = gsi;
      e.type = KVM_IRQ_ROUTING_IRQCHIP;
      e.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
      e.u.irqchip.pin = gsi;
    }
    for (const auto& [fd, route] : m_msi_routes)
      entries[n++] = msi_route(route.gsi, route.address, route.data);
    header->nr = n;
    header->flags = 0;
    // Safety: buffer (8-byte aligned) holds the header and n entries, the C layout of kvm_irq_routing.
    if (::ioctl(m_vm.get(), kSetGsiRouting, header) < 0)
      return base::fail(AccelError(errno_text("KVM_SET_GSI_ROUTING")));
    return {};
  }
  std::mutex m_irqchip_lock;
  std::atomic<bool> m_irqchip_ready{false};
  std::mutex m_park_lock;  // guards everything below
  std::condition_variable m_park_changed;
  std::vector<KvmVcpu*> m_vcpus;
  bool m_pause_requested = false;
  unsigned m_running = 0, m_parked = 0;
  kvm_clock_data m_clock{};
  bool m_clock_saved = false;
  std::mutex m_state_lock;  // the two below
  std::optional<std::vector<uint32_t>> m_state_msrs;
  size_t m_xsave_size = 0;
  int m_tsc_control = -1;  // unknown until asked
};

class KvmVcpu final : public Vcpu {
 public:
  KvmVcpu(KvmVm& vm, unsigned index, Fd fd, kvm_run* run)
      : m_vm(vm), m_index(index), m_fd(std::move(fd)), m_run(run) {}
  ~KvmVcpu() override {
    m_vm.vcpu_destroyed(this);
    // Safety: m_run was mmapped by create_vcpu with exactly run_size bytes.
    ::munmap(m_run, m_vm.run_size());
  }

  AccelResult<void> configure();
  AccelResult<void> set_boot_state(const BootState& state) override;
  AccelResult<VcpuExit> run() override;
  void kick() override;
  AccelResult<VcpuState> get_state() override;
  AccelResult<void> set_state(const VcpuState& state) override;
  AccelResult<void> set_debug(const VcpuDebug& debug) override;
  AccelResult<uint64_t> translate(uint64_t gva) override;

 private:
  ExitDebug debug_exit() const;
  // A #BP exit at one of m_debug.sw_breakpoints: the stop, with rip at the int3 (KVM leaves it
  // there; moved back where the exit reports the address after it). nullopt: not ours.
  AccelResult<std::optional<ExitDebug>> planted_breakpoint();
  // The guest's own int3 (not ours): its #BP goes to the guest, as without a debugger.
  AccelResult<void> reinject_breakpoint();
  // An I/O or MMIO exit's result goes into the guest's registers at the next KVM_RUN: a vCPU that
  // parks right after one first completes it (KVM_RUN with immediate_exit), so its saved state is
  // the instruction's end, not its middle.
  AccelResult<void> complete_pending_io();
  AccelResult<void> set_msrs();
  AccelResult<void> set_lapic_lints();
  AccelResult<void> handle_io();
  void handle_mmio();

  KvmVm& m_vm;
  unsigned m_index;
  Fd m_fd;
  kvm_run* m_run;
  std::atomic<bool> m_has_thread{false};
  std::atomic<pthread_t> m_thread{};
  bool m_warned_io = false;
  bool m_io_pending = false;  // the last KVM_RUN ended in an I/O or MMIO exit (vCPU thread only)
  // set_debug's debug registers 0..3: which are watchpoints (the rest are breakpoints).
  VcpuDebug m_debug;
  bool m_debug_slot_is_watch[4] = {};
  kvm_guest_debug m_guest_debug{};  // what KVM_SET_GUEST_DEBUG was last given
};

AccelResult<std::unique_ptr<Vcpu>> KvmVm::create_vcpu(unsigned index) {
  if (index >= m_spec.vcpu_count)
    return base::fail(AccelError("vCPU " + std::to_string(index) + " is beyond cpu.count " +
                                 std::to_string(m_spec.vcpu_count)));
  TRY(ensure_irqchip());  // the LAPIC is created with the vCPU only if the irqchip exists
  // Here, on the thread that builds the machine, rather than on the vCPU's first run: vCPU threads
  // run under a seccomp list without rt_sigaction (security/allow/vcpu.cpp).
  install_kick_handler();
  CpuTopology topology{m_spec.topology.sockets, m_spec.topology.cores, m_spec.topology.threads};
  // Safety: KVM_CREATE_VCPU takes the vCPU id (the APIC id) by value and returns a new fd.
  int fd = ::ioctl(m_vm.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(apic_id(topology, index)));
  if (fd < 0) return base::fail(AccelError(errno_text("KVM_CREATE_VCPU")));
  Fd vcpu_fd(fd);
  // Safety: the kernel's kvm_run page(s) for this vCPU; size from KVM_GET_VCPU_MMAP_SIZE, shared.
  void* run = ::mmap(nullptr, m_run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd.get(), 0);
  if (run == MAP_FAILED) return base::fail(AccelError(errno_text("mmap of kvm_run")));
  auto vcpu = std::make_unique<KvmVcpu>(*this, index, std::move(vcpu_fd), static_cast<kvm_run*>(run));
  vcpu_created(vcpu.get());
  TRY(vcpu->configure());
  return std::unique_ptr<Vcpu>(std::move(vcpu));
}

void KvmVm::vcpu_created(KvmVcpu* vcpu) {
  std::lock_guard guard(m_park_lock);
  m_vcpus.push_back(vcpu);
}

void KvmVm::vcpu_destroyed(KvmVcpu* vcpu) {
  std::lock_guard guard(m_park_lock);
  m_vcpus.erase(std::remove(m_vcpus.begin(), m_vcpus.end(), vcpu), m_vcpus.end());
}

void KvmVm::enter_run() {
  std::lock_guard guard(m_park_lock);
  ++m_running;
}

void KvmVm::leave_run() {
  {
    std::lock_guard guard(m_park_lock);
    --m_running;
  }
  m_park_changed.notify_all();  // a pause waiting for this vCPU need not any more
}

bool KvmVm::park_while_paused(bool io_pending) {
  std::unique_lock lock(m_park_lock);
  if (!m_pause_requested) return true;
  if (io_pending) return false;  // the caller completes it first, then parks
  ++m_parked;
  m_park_changed.notify_all();
  m_park_changed.wait(lock, [this] { return !m_pause_requested; });
  --m_parked;
  return true;
}

AccelResult<void> KvmVm::pause(std::chrono::milliseconds timeout) {
  std::unique_lock lock(m_park_lock);
  if (m_pause_requested) return {};
  m_pause_requested = true;
  for (KvmVcpu* vcpu : m_vcpus) vcpu->kick();
  if (!m_park_changed.wait_for(lock, timeout, [this] { return m_parked >= m_running; })) {
    m_pause_requested = false;  // cancel: the vCPUs that did park continue
    lock.unlock();
    m_park_changed.notify_all();
    return base::fail(
        AccelError("kvm: a vCPU did not park within " + std::to_string(timeout.count()) + " ms"));
  }
  // Safety: KVM_GET_CLOCK fills a kvm_clock_data.
  m_clock = {};
  m_clock_saved = ::ioctl(m_vm.get(), KVM_GET_CLOCK, &m_clock) == 0;
  return {};
}

AccelResult<void> KvmVm::resume() {
  std::unique_lock lock(m_park_lock);
  if (!m_pause_requested) return {};
  if (m_clock_saved) {
    kvm_clock_data clock{};
    clock.clock = m_clock.clock;  // flags 0: exactly this value, the time the guest had at pause
    // Safety: KVM_SET_CLOCK reads a kvm_clock_data. A failure leaves the clock running through the
    // pause, which the guest survives (it only sees time jump).
    if (::ioctl(m_vm.get(), KVM_SET_CLOCK, &clock) < 0 && trace_exits())
      std::fprintf(stderr, "kvm: KVM_SET_CLOCK: %s\n", std::strerror(errno));
  }
  m_clock_saved = false;
  m_pause_requested = false;
  lock.unlock();
  m_park_changed.notify_all();
  return {};
}

AccelResult<void> KvmVcpu::configure() {
  const VmSpec& spec = m_vm.spec();
  CpuidTable table = m_vm.cpuid();
  apply_topology(table, {spec.topology.sockets, spec.topology.cores, spec.topology.threads}, m_index);
  std::vector<uint8_t> buffer(sizeof(Cpuid2Header) + table.size() * sizeof(kvm_cpuid_entry2));
  auto* cpuid = reinterpret_cast<Cpuid2Header*>(buffer.data());
  auto* entries = reinterpret_cast<kvm_cpuid_entry2*>(buffer.data() + sizeof(Cpuid2Header));
  cpuid->nent = static_cast<uint32_t>(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    kvm_cpuid_entry2& e = entries[i];
    e = {};
    e.function = table[i].function;
    e.index = table[i].index;
    e.flags = table[i].flags;
    e.eax = table[i].eax;
    e.ebx = table[i].ebx;
    e.ecx = table[i].ecx;
    e.edx = table[i].edx;
  }
  // Safety: buffer holds the header plus nent entries.
  if (::ioctl(m_fd.get(), kSetCpuid2, cpuid) < 0) return base::fail(AccelError(errno_text("KVM_SET_CPUID2")));
  TRY(set_msrs());
  TRY(set_lapic_lints());
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;  // x87 and SSE state as after FNINIT: what a cold CPU and Linux expect
  fpu.mxcsr = 0x1f80;
  if (::ioctl(m_fd.get(), KVM_SET_FPU, &fpu) < 0) return base::fail(AccelError(errno_text("KVM_SET_FPU")));
  return {};
}

AccelResult<void> KvmVcpu::set_msrs() {
  // What a freshly reset CPU plus firmware leaves for Linux (as Firecracker and cloud-hypervisor do):
  // fast strings on, MTRRs enabled with write-back default, syscall MSRs cleared.
  struct Msr {
    uint32_t index;
    uint64_t value;
  };
  const Msr wanted[] = {
      {0x1a0, 1},               // IA32_MISC_ENABLE: fast string operations
      {0x2ff, (1u << 11) | 6},  // IA32_MTRR_DEF_TYPE: enabled, default write-back
      {0x174, 0},
      {0x175, 0},
      {0x176, 0},  // SYSENTER_CS/ESP/EIP
      {0xc0000081, 0},
      {0xc0000082, 0},  // STAR, LSTAR
      {0xc0000083, 0},
      {0xc0000084, 0},  // CSTAR, SYSCALL_MASK
      {0xc0000102, 0},  // KERNEL_GS_BASE
      {0x10, 0},        // TSC
  };
  // Only MSRs this KVM saves and restores; anything else would fail KVM_SET_MSRS as a whole.
  std::vector<uint8_t> list_buffer(sizeof(MsrListHeader) + 1024 * sizeof(uint32_t));
  auto* list = reinterpret_cast<MsrListHeader*>(list_buffer.data());
  auto* indices = reinterpret_cast<uint32_t*>(list_buffer.data() + sizeof(MsrListHeader));
  list->nmsrs = 1024;
  // Safety: room for 1024 indices, as nmsrs says.
  if (::ioctl(m_vm.kvm_fd(), kGetMsrIndexList, list) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_MSR_INDEX_LIST")));
  auto known = [&](uint32_t index) {
    for (uint32_t i = 0; i < list->nmsrs; ++i)
      if (indices[i] == index) return true;
    return index == 0x1a0 || index == 0x2ff;  // emulated MSRs KVM lists elsewhere
  };
  std::vector<uint8_t> buffer(sizeof(MsrsHeader) + std::size(wanted) * sizeof(kvm_msr_entry));
  auto* msrs = reinterpret_cast<MsrsHeader*>(buffer.data());
  auto* entries = reinterpret_cast<kvm_msr_entry*>(buffer.data() + sizeof(MsrsHeader));
  uint32_t count = 0;
  for (const Msr& msr : wanted) {
    if (!known(msr.index)) continue;
    entries[count] = {};
    entries[count].index = msr.index;
    entries[count].data = msr.value;
    ++count;
  }
  msrs->nmsrs = count;
  // Safety: buffer holds nmsrs entries. KVM returns how many it set; stop at the first it refused.
  int set = ::ioctl(m_fd.get(), kSetMsrs, msrs);
  if (set < 0) return base::fail(AccelError(errno_text("KVM_SET_MSRS")));
  if (static_cast<uint32_t>(set) != count) {
    char text[96];
    std::snprintf(text, sizeof text, "KVM_SET_MSRS refused MSR 0x%x", entries[set].index);
    return base::fail(AccelError(text));
  }
  return {};
}

AccelResult<void> KvmVcpu::set_lapic_lints() {
  // LINT0 as ExtINT (the 8259 PIC's output) and LINT1 as NMI, the wiring of every PC; firmware would
  // do this, and Linux relies on it for the PIC-mode boot and the timer check.
  kvm_lapic_state lapic{};
  // Safety: kvm_lapic_state is the 1 KiB register page; we patch two 32-bit registers in it.
  if (::ioctl(m_fd.get(), KVM_GET_LAPIC, &lapic) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_LAPIC")));
  auto set_lvt = [&](size_t offset, uint32_t mode) {
    uint32_t value;
    std::memcpy(&value, lapic.regs + offset, 4);
    value = (value & ~0x700u & ~(1u << 16)) | (mode << 8);
    std::memcpy(lapic.regs + offset, &value, 4);
  };
  set_lvt(0x350, 7);  // ExtINT
  set_lvt(0x360, 4);  // NMI
  if (::ioctl(m_fd.get(), KVM_SET_LAPIC, &lapic) < 0)
    return base::fail(AccelError(errno_text("KVM_SET_LAPIC")));
  return {};
}

AccelResult<void> KvmVcpu::set_boot_state(const BootState& any_state) {
  const auto* state = std::get_if<X86BootState>(&any_state);
  if (!state) return base::fail(AccelError("kvm runs x86_64 guests; got a non-x86 boot state"));
  kvm_sregs sregs{};
  if (::ioctl(m_fd.get(), KVM_GET_SREGS, &sregs) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_SREGS")));
  const bool long_mode = state->mode == X86BootState::Mode::Linux64;

  kvm_segment code{};
  code.base = 0;
  code.limit = 0xffffffff;
  code.selector = kBootCs;
  code.type = 0xb;  // execute/read, accessed
  code.present = 1;
  code.s = 1;
  code.g = 1;
  code.l = long_mode ? 1 : 0;
  code.db = long_mode ? 0 : 1;
  kvm_segment data = code;
  data.selector = kBootDs;
  data.type = 0x3;  // read/write, accessed
  data.l = 0;
  data.db = 1;
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.gdt.base = state->gdt_base;
  sregs.gdt.limit = 4 * 8 - 1;  // null, null, code, data (the layout hw/x86 writes)
  sregs.idt.base = 0;
  sregs.idt.limit = 0;
  if (long_mode) {
    sregs.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
    sregs.cr3 = state->cr3;
    sregs.cr4 = kCr4Pae;
    sregs.efer = kEferLme | kEferLma;
  } else {
    sregs.cr0 = kCr0Pe | kCr0Et;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
  }
  if (::ioctl(m_fd.get(), KVM_SET_SREGS, &sregs) < 0)
    return base::fail(AccelError(errno_text("KVM_SET_SREGS")));

  kvm_regs regs{};
  regs.rflags = 2;  // reserved bit 1; interrupts off
  regs.rip = state->rip;
  regs.rsi = state->rsi;
  regs.rbx = state->rbx;
  regs.rsp = state->rsp;
  if (::ioctl(m_fd.get(), KVM_SET_REGS, &regs) < 0) return base::fail(AccelError(errno_text("KVM_SET_REGS")));
  return {};
}

void KvmVcpu::kick() {
  // immediate_exit covers a kick that lands before KVM_RUN is entered; the signal covers one that
  // lands while the guest runs. Safety: kvm_run is shared with the kernel; a byte store is atomic.
  __atomic_store_n(&m_run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (m_has_thread.load(std::memory_order_acquire)) pthread_kill(m_thread.load(), kick_signal());
}

AccelResult<void> KvmVcpu::handle_io() {
  const auto& io = m_run->io;
  if (trace_exits())
    std::fprintf(stderr, "kvm: vcpu %u io %s port 0x%x size %u count %u\n", m_index,
                 io.direction == KVM_EXIT_IO_OUT ? "out" : "in", io.port, io.size, io.count);
  // Safety: data_offset/size/count come from the kernel; check they stay inside the kvm_run mapping.
  uint64_t bytes = uint64_t{io.size} * io.count;
  if (io.size == 0 || io.size > 8 || io.data_offset + bytes > m_vm.run_size())
    return base::fail(AccelError("KVM_EXIT_IO with an impossible data range"));
  uint8_t* data = reinterpret_cast<uint8_t*>(m_run) + io.data_offset;
  for (uint32_t i = 0; i < io.count; ++i) {
    std::span<uint8_t> chunk(data + uint64_t{i} * io.size, io.size);
    if (io.direction == KVM_EXIT_IO_OUT) {
      m_vm.ops().pio_write(io.port, chunk);
    } else if (!m_vm.ops().pio_read(io.port, chunk)) {
      std::memset(chunk.data(), 0xff, chunk.size());  // x86: nothing decodes the port, the bus floats high
    }
  }
  return {};
}

void KvmVcpu::handle_mmio() {
  auto& mmio = m_run->mmio;
  if (trace_exits())
    std::fprintf(stderr, "kvm: vcpu %u mmio %s 0x%llx len %u\n", m_index, mmio.is_write ? "write" : "read",
                 (unsigned long long)mmio.phys_addr, mmio.len);
  size_t len = std::min<size_t>(mmio.len, sizeof mmio.data);
  if (mmio.is_write) {
    m_vm.ops().mmio_write(mmio.phys_addr, std::span<const uint8_t>(mmio.data, len));
  } else if (!m_vm.ops().mmio_read(mmio.phys_addr, std::span<uint8_t>(mmio.data, len))) {
    std::memset(mmio.data, 0xff, len);
  }
}

AccelResult<VcpuExit> KvmVcpu::run() {
  if (!m_has_thread.load(std::memory_order_relaxed)) {
    install_kick_handler();
    m_thread.store(pthread_self());
    m_has_thread.store(true, std::memory_order_release);
  }
  m_vm.enter_run();
  struct LeaveRun {
    KvmVm& vm;
    ~LeaveRun() { vm.leave_run(); }
  } leave{m_vm};
  for (;;) {
    if (!m_vm.park_while_paused(m_io_pending)) {
      TRY(complete_pending_io());
      continue;
    }
    // Safety: KVM_RUN on our vCPU fd; the kernel fills m_run before returning.
    int rc = ::ioctl(m_fd.get(), KVM_RUN, 0);
    m_io_pending = rc == 0 && (m_run->exit_reason == KVM_EXIT_IO || m_run->exit_reason == KVM_EXIT_MMIO);
    if (rc < 0) {
      if (errno == EINTR) {
        __atomic_store_n(&m_run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (m_vm.pause_requested()) continue;  // a pause's kick: park at the top of the loop
        return VcpuExit{ExitInterrupted{}};
      }
      if (errno == EAGAIN) continue;
      return base::fail(AccelError(errno_text("KVM_RUN")));
    }
    switch (m_run->exit_reason) {
      case KVM_EXIT_IO:
        TRY(handle_io());
        continue;
      case KVM_EXIT_MMIO:
        handle_mmio();
        continue;
      case KVM_EXIT_HLT:
        return VcpuExit{ExitHalt{}};
      case KVM_EXIT_SHUTDOWN:
        // A triple fault: real PCs reset (and so does QEMU), which is also how Linux's reboot=t reboots.
        return VcpuExit{ExitReset{}};
      case KVM_EXIT_SYSTEM_EVENT:
        switch (m_run->system_event.type) {
          case KVM_SYSTEM_EVENT_SHUTDOWN:
            return VcpuExit{ExitShutdown{0}};
          case KVM_SYSTEM_EVENT_RESET:
            return VcpuExit{ExitReset{}};
          default:
            return base::fail(AccelError("guest crashed (KVM system event " +
                                         std::to_string(m_run->system_event.type) + ")"));
        }
      case KVM_EXIT_INTR:
        if (m_vm.pause_requested()) continue;
        return VcpuExit{ExitInterrupted{}};
      case KVM_EXIT_DEBUG:
        if (trace_exits())
          std::fprintf(stderr, "kvm: vcpu %u debug exit: exception %u pc 0x%llx dr6 0x%llx\n", m_index,
                       m_run->debug.arch.exception, (unsigned long long)m_run->debug.arch.pc,
                       (unsigned long long)m_run->debug.arch.dr6);
        if (m_run->debug.arch.exception == 3) {  // #BP: an int3 of the debugger's, or the guest's own
          if (auto planted = TRY(planted_breakpoint())) return VcpuExit{*planted};
          TRY(reinject_breakpoint());
          continue;
        }
        return VcpuExit{debug_exit()};
      case KVM_EXIT_IOAPIC_EOI:
        // Split irqchip: a level-triggered IOAPIC vector (per set_ioapic_routes) was EOIed.
        if (trace_exits())
          std::fprintf(stderr, "kvm: vcpu %u ioapic eoi vector 0x%x\n", m_index, m_run->eoi.vector);
        m_vm.ops().ioapic_eoi(m_run->eoi.vector);
        continue;
      case KVM_EXIT_IRQ_WINDOW_OPEN:
        continue;
      case KVM_EXIT_FAIL_ENTRY: {
        char text[128];
        std::snprintf(text, sizeof text, "KVM could not enter the guest (hardware reason 0x%llx)",
                      (unsigned long long)m_run->fail_entry.hardware_entry_failure_reason);
        return base::fail(AccelError(text));
      }
      case KVM_EXIT_INTERNAL_ERROR: {
        kvm_regs regs{};
        ::ioctl(m_fd.get(), KVM_GET_REGS, &regs);
        char text[128];
        std::snprintf(text, sizeof text, "KVM internal error (suberror %u) at rip 0x%llx",
                      m_run->internal.suberror, (unsigned long long)regs.rip);
        return base::fail(AccelError(text));
      }
      default:
        return base::fail(AccelError("unexpected KVM exit reason " + std::to_string(m_run->exit_reason)));
    }
  }
}

AccelResult<void> KvmVcpu::complete_pending_io() {
  // Bounded: a rep string I/O instruction may need a few more exits before it completes.
  for (int round = 0; m_io_pending && round < 4096; ++round) {
    __atomic_store_n(&m_run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    // Safety: KVM_RUN on our vCPU fd; with immediate_exit it finishes the pending exit's
    // instruction and returns EINTR without entering the guest (or exits again for more I/O).
    int rc = ::ioctl(m_fd.get(), KVM_RUN, 0);
    __atomic_store_n(&m_run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    if (rc < 0) {
      if (errno == EINTR || errno == EAGAIN)
        m_io_pending = false;
      else
        return base::fail(AccelError(errno_text("KVM_RUN (completing I/O)")));
    } else if (m_run->exit_reason == KVM_EXIT_IO) {
      TRY(handle_io());
    } else if (m_run->exit_reason == KVM_EXIT_MMIO) {
      handle_mmio();
    } else {
      return base::fail(AccelError("KVM_RUN (completing I/O): unexpected exit reason " +
                                   std::to_string(m_run->exit_reason)));
    }
  }
  m_io_pending = false;
  return {};
}

namespace {

// The MSRs a vCPU's saved state holds, where this KVM has them. FS/GS base, EFER and the APIC base
// travel in the segment registers and sregs. TSC_DEADLINE last: it is only meaningful once the
// LAPIC (set before the MSRs) is in TSC-deadline mode.
constexpr uint32_t kStateMsrs[] = {
    0x10,                                                                        // TSC
    0x3b,                                                                        // TSC_ADJUST
    0x48,                                                                        // SPEC_CTRL
    0x174,      0x175,      0x176,                                               // SYSENTER_CS/ESP/EIP
    0x17a,                                                                       // MCG_STATUS
    0x1a0,                                                                       // MISC_ENABLE
    0x200,      0x201,      0x202,      0x203,      0x204, 0x205, 0x206, 0x207,  // MTRR physbase/mask 0-3
    0x208,      0x209,      0x20a,      0x20b,      0x20c, 0x20d, 0x20e, 0x20f,  // MTRR 4-7
    0x250,      0x258,      0x259,                                               // fixed MTRRs 64K, 16K
    0x268,      0x269,      0x26a,      0x26b,      0x26c, 0x26d, 0x26e, 0x26f,  // fixed MTRRs 4K
    0x277,                                                                       // PAT
    0x2ff,                                                                       // MTRR_DEF_TYPE
    0xda0,                                                                       // XSS
    0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,  // STAR, LSTAR, CSTAR, SYSCALL_MASK
    0xc0000102,                                      // KERNEL_GS_BASE
    0xc0000103,                                      // TSC_AUX
    0x11,       0x12,                                // kvmclock (old): wall clock, system time
    0x4b564d00, 0x4b564d01,                          // kvmclock: wall clock, system time
    0x4b564d02, 0x4b564d03, 0x4b564d04, 0x4b564d05,  // async PF, steal time, PV EOI, poll control
    0x4b564d06,                                      // async PF interrupt
    0x6e0,                                           // TSC_DEADLINE
};
// Handled by KVM for every guest though not always in KVM_GET_MSR_INDEX_LIST (as set_msrs assumes).
bool always_emulated(uint32_t index) {
  return index == 0x1a0 || index == 0x277 || index == 0x2ff || (index >= 0x200 && index <= 0x20f) ||
         index == 0x250 || index == 0x258 || index == 0x259 || (index >= 0x268 && index <= 0x26f);
}

kvm_segment to_kvm(const X86Segment& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}
X86Segment from_kvm(const kvm_segment& k) {
  X86Segment s;
  s.base = k.base;
  s.limit = k.limit;
  s.selector = k.selector;
  s.type = k.type;
  s.present = k.present;
  s.dpl = k.dpl;
  s.db = k.db;
  s.s = k.s;
  s.l = k.l;
  s.g = k.g;
  s.avl = k.avl;
  s.unusable = k.unusable;
  return s;
}

template <typename T>
std::vector<uint8_t> bytes_of(const T& value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  return std::vector<uint8_t>(p, p + sizeof(T));
}
template <typename T>
AccelResult<T> from_bytes(const std::vector<uint8_t>& bytes, const char* what) {
  T value{};
  if (bytes.size() != sizeof(T))
    return base::fail(AccelError(std::string(what) + ": " + std::to_string(bytes.size()) +
                                 " bytes saved, this KVM's layout has " + std::to_string(sizeof(T))));
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

}  // namespace

size_t KvmVm::xsave_size() {
  std::lock_guard guard(m_state_lock);
  if (m_xsave_size == 0) {
    // Safety: KVM_CHECK_EXTENSION takes the capability by value; 0 means the cap is unknown.
    int size = ::ioctl(m_vm.get(), KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    m_xsave_size = size > static_cast<int>(sizeof(Xsave4k)) ? static_cast<size_t>(size) : sizeof(Xsave4k);
  }
  return m_xsave_size;
}

bool KvmVm::tsc_control() {
  std::lock_guard guard(m_state_lock);
  // Safety: KVM_CHECK_EXTENSION takes the capability by value; 0 means the cap is absent.
  if (m_tsc_control < 0) m_tsc_control = ::ioctl(m_vm.get(), KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) > 0 ? 1 : 0;
  return m_tsc_control == 1;
}

AccelResult<std::vector<uint32_t>> KvmVm::state_msrs(int vcpu_fd) {
  std::lock_guard guard(m_state_lock);
  if (m_state_msrs) return *m_state_msrs;
  std::vector<uint8_t> list_buffer(sizeof(MsrListHeader) + 1024 * sizeof(uint32_t));
  auto* list = reinterpret_cast<MsrListHeader*>(list_buffer.data());
  auto* indices = reinterpret_cast<uint32_t*>(list_buffer.data() + sizeof(MsrListHeader));
  list->nmsrs = 1024;
  // Safety: room for 1024 indices, as nmsrs says.
  if (::ioctl(m_kvm.get(), kGetMsrIndexList, list) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_MSR_INDEX_LIST")));
  std::vector<uint32_t> chosen;
  for (uint32_t index : kStateMsrs)
    if (always_emulated(index) || std::find(indices, indices + list->nmsrs, index) != indices + list->nmsrs)
      chosen.push_back(index);
  // Listed is not always readable (a feature the guest's CPUID lacks): KVM_GET_MSRS stops at the
  // first it refuses, which is dropped, until all are read.
  std::vector<uint8_t> buffer(sizeof(MsrsHeader) + chosen.size() * sizeof(kvm_msr_entry));
  for (;;) {
    auto* msrs = reinterpret_cast<MsrsHeader*>(buffer.data());
    auto* entries = reinterpret_cast<kvm_msr_entry*>(buffer.data() + sizeof(MsrsHeader));
    msrs->nmsrs = static_cast<uint32_t>(chosen.size());
    for (size_t i = 0; i < chosen.size(); ++i) entries[i] = {chosen[i], 0, 0};
    // Safety: buffer holds nmsrs entries.
    int read = ::ioctl(vcpu_fd, kGetMsrs, msrs);
    if (read < 0) return base::fail(AccelError(errno_text("KVM_GET_MSRS")));
    if (static_cast<size_t>(read) >= chosen.size()) break;
    chosen.erase(chosen.begin() + read);
  }
  m_state_msrs = chosen;
  return chosen;
}

// Hardware breakpoints and watchpoints use the debug registers (KVM_GUESTDBG_USE_HW_BP): they share
// DR0..DR3, so four of them in all. DR7 enables each one globally; an instruction breakpoint is R/W
// 00 with length 00, a write watch 01, an access watch 11 (x86 has no read-only data breakpoint:
// gdb's rwatch also stops at writes). Software breakpoints are int3s the debugger planted in guest
// RAM (KVM_GUESTDBG_USE_SW_BP: every #BP exits to us; those not at a planted address go back).
AccelResult<void> KvmVcpu::set_debug(const VcpuDebug& debug) {
  const size_t slots = debug.breakpoints.size() + debug.watchpoints.size();
  if (slots > 4)
    return base::fail(AccelError("x86 has 4 debug registers: " + std::to_string(debug.breakpoints.size()) +
                                 " breakpoints and " + std::to_string(debug.watchpoints.size()) +
                                 " watchpoints do not fit"));
  kvm_guest_debug dbg{};
  uint64_t dr7 = 0x600;  // GE and the reserved bit 10, as QEMU sets them
  unsigned slot = 0;
  bool is_watch[4] = {};
  for (uint64_t address : debug.breakpoints) {
    dbg.arch.debugreg[slot] = address;
    dr7 |= 2ull << (2 * slot);
    ++slot;
  }
  for (const VcpuDebug::Watchpoint& w : debug.watchpoints) {
    uint64_t len_bits = 0;
    switch (w.length) {
      case 1:
        len_bits = 0;
        break;
      case 2:
        len_bits = 1;
        break;
      case 4:
        len_bits = 3;
        break;
      case 8:
        len_bits = 2;
        break;
      default:
        return base::fail(
            AccelError("an x86 watchpoint covers 1, 2, 4 or 8 bytes, not " + std::to_string(w.length)));
    }
    if (w.address % w.length)
      return base::fail(AccelError("an x86 watchpoint must be aligned to its length"));
    const uint64_t rw = w.read ? 3 : 1;
    dbg.arch.debugreg[slot] = w.address;
    dr7 |= (2ull << (2 * slot)) | (rw << (16 + 4 * slot)) | (len_bits << (18 + 4 * slot));
    is_watch[slot] = true;
    ++slot;
  }
  dbg.arch.debugreg[7] = dr7;
  if (debug.single_step || slots || !debug.sw_breakpoints.empty()) {
    dbg.control = KVM_GUESTDBG_ENABLE;
    if (slots) dbg.control |= KVM_GUESTDBG_USE_HW_BP;
    if (!debug.sw_breakpoints.empty()) dbg.control |= KVM_GUESTDBG_USE_SW_BP;
    // A step stays in the code stepped: no interrupt handler is entered on the way (where the
    // kernel knows BLOCKIRQ, 5.16 on; older ones refuse it and step into pending interrupts).
    if (debug.single_step) dbg.control |= KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ;
  }
  // Safety: KVM_SET_GUEST_DEBUG reads one kvm_guest_debug; the vCPU is outside KVM_RUN.
  int rc = ::ioctl(m_fd.get(), KVM_SET_GUEST_DEBUG, &dbg);
  if (rc < 0 && errno == EINVAL && (dbg.control & KVM_GUESTDBG_BLOCKIRQ)) {
    dbg.control &= ~KVM_GUESTDBG_BLOCKIRQ;
    rc = ::ioctl(m_fd.get(), KVM_SET_GUEST_DEBUG, &dbg);
  }
  if (rc < 0) return base::fail(AccelError(errno_text("KVM_SET_GUEST_DEBUG")));
  m_guest_debug = dbg;
  // Continuing from a breakpoint runs its instruction first: RF suppresses instruction breakpoints
  // for one instruction, as a debugger's IRET would.
  if (!debug.breakpoints.empty()) {
    kvm_regs regs{};
    // Safety: plain struct in and out; the vCPU is outside KVM_RUN.
    if (::ioctl(m_fd.get(), KVM_GET_REGS, &regs) < 0)
      return base::fail(AccelError(errno_text("KVM_GET_REGS")));
    if (std::find(debug.breakpoints.begin(), debug.breakpoints.end(), regs.rip) != debug.breakpoints.end()) {
      regs.rflags |= 1u << 16;
      if (::ioctl(m_fd.get(), KVM_SET_REGS, &regs) < 0)
        return base::fail(AccelError(errno_text("KVM_SET_REGS")));
    }
  }
  m_debug = debug;
  std::copy(std::begin(is_watch), std::end(is_watch), m_debug_slot_is_watch);
  return {};
}

// What a KVM_EXIT_DEBUG means, from DR6 as the #DB left it: BS (bit 14) a single step, B0..B3 the
// debug register that matched.
ExitDebug KvmVcpu::debug_exit() const {
  const auto& arch = m_run->debug.arch;
  ExitDebug exit;
  exit.pc = arch.pc;
  if (arch.exception == 1 && (arch.dr6 & (1u << 14))) {
    exit.reason = ExitDebug::Reason::kStep;
    return exit;
  }
  for (unsigned slot = 0; slot < 4; ++slot) {
    if (arch.exception != 1 || !(arch.dr6 & (1u << slot)) || !m_debug_slot_is_watch[slot]) continue;
    const size_t watch = slot - m_debug.breakpoints.size();
    if (watch >= m_debug.watchpoints.size()) break;
    exit.reason = ExitDebug::Reason::kWatchpoint;
    exit.data_address = m_debug.watchpoints[watch].address;
    exit.write = m_debug.watchpoints[watch].write;
    return exit;
  }
  exit.reason = m_debug.single_step && m_debug.breakpoints.empty() ? ExitDebug::Reason::kStep
                                                                   : ExitDebug::Reason::kBreakpoint;
  return exit;
}

AccelResult<std::optional<ExitDebug>> KvmVcpu::planted_breakpoint() {
  const uint64_t pc = m_run->debug.arch.pc;
  const auto& planted = m_debug.sw_breakpoints;
  auto ours = [&](uint64_t at) { return std::find(planted.begin(), planted.end(), at) != planted.end(); };
  ExitDebug exit;
  exit.reason = ExitDebug::Reason::kBreakpoint;
  if (ours(pc)) {
    exit.pc = pc;
    return std::optional<ExitDebug>(exit);
  }
  // The address after the int3 (a trap reported after the instruction): rip goes back to it, so
  // the debugger sees the breakpoint address and continuing runs the original instruction.
  if (pc == 0 || !ours(pc - 1)) return std::optional<ExitDebug>();
  kvm_regs regs{};
  // Safety: plain struct in and out; this vCPU's own thread, outside KVM_RUN.
  if (::ioctl(m_fd.get(), KVM_GET_REGS, &regs) < 0) return base::fail(AccelError(errno_text("KVM_GET_REGS")));
  regs.rip -= 1;
  if (::ioctl(m_fd.get(), KVM_SET_REGS, &regs) < 0) return base::fail(AccelError(errno_text("KVM_SET_REGS")));
  exit.pc = pc - 1;
  return std::optional<ExitDebug>(exit);
}

AccelResult<void> KvmVcpu::reinject_breakpoint() {
  // KVM queues the #BP as the software exception it was (the guest's handler sees rip after the
  // int3), as QEMU passes a #BP that is not its own back.
  kvm_guest_debug dbg = m_guest_debug;
  dbg.control |= KVM_GUESTDBG_INJECT_BP;
  // Safety: KVM_SET_GUEST_DEBUG reads one kvm_guest_debug; this vCPU's own thread, outside KVM_RUN.
  if (::ioctl(m_fd.get(), KVM_SET_GUEST_DEBUG, &dbg) < 0)
    return base::fail(AccelError(errno_text("KVM_SET_GUEST_DEBUG (passing the guest's #BP back)")));
  return {};
}

AccelResult<uint64_t> KvmVcpu::translate(uint64_t gva) {
  // KVM walks the guest's page tables in whatever paging mode the vCPU is in (none, 32-bit, PAE,
  // 4- or 5-level), without setting accessed bits.
  kvm_translation tr{};
  tr.linear_address = gva;
  // Safety: KVM_TRANSLATE fills the struct it is given; the vCPU is outside KVM_RUN.
  if (::ioctl(m_fd.get(), KVM_TRANSLATE, &tr) < 0) return base::fail(AccelError(errno_text("KVM_TRANSLATE")));
  if (!tr.valid) {
    char text[80];
    std::snprintf(text, sizeof text, "guest virtual address 0x%llx is not mapped", (unsigned long long)gva);
    return base::fail(AccelError(text));
  }
  return static_cast<uint64_t>(tr.physical_address);
}

AccelResult<VcpuState> KvmVcpu::get_state() {
  X86VcpuState s;
  kvm_regs regs{};
  // Safety: each GET ioctl fills the struct its request number names; the vCPU is outside KVM_RUN.
  if (::ioctl(m_fd.get(), KVM_GET_REGS, &regs) < 0) return base::fail(AccelError(errno_text("KVM_GET_REGS")));
  const uint64_t gpr[16] = {regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi, regs.rsp, regs.rbp,
                            regs.r8,  regs.r9,  regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15};
  std::copy(std::begin(gpr), std::end(gpr), s.gpr);
  s.rip = regs.rip;
  s.rflags = regs.rflags;

  kvm_sregs sregs{};
  if (::ioctl(m_fd.get(), KVM_GET_SREGS, &sregs) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_SREGS")));
  s.cs = from_kvm(sregs.cs);
  s.ds = from_kvm(sregs.ds);
  s.es = from_kvm(sregs.es);
  s.fs = from_kvm(sregs.fs);
  s.gs = from_kvm(sregs.gs);
  s.ss = from_kvm(sregs.ss);
  s.tr = from_kvm(sregs.tr);
  s.ldt = from_kvm(sregs.ldt);
  s.gdt_base = sregs.gdt.base;
  s.gdt_limit = sregs.gdt.limit;
  s.idt_base = sregs.idt.base;
  s.idt_limit = sregs.idt.limit;
  s.cr0 = sregs.cr0;
  s.cr2 = sregs.cr2;
  s.cr3 = sregs.cr3;
  s.cr4 = sregs.cr4;
  s.cr8 = sregs.cr8;
  s.efer = sregs.efer;
  s.apic_base = sregs.apic_base;
  for (int i = 0; i < 4; ++i) s.interrupt_bitmap[i] = sregs.interrupt_bitmap[i];

  const size_t xsave_size = m_vm.xsave_size();
  std::vector<uint8_t> xsave(xsave_size);
  // Safety: the buffer holds xsave_size bytes, what KVM_GET_XSAVE2 writes (KVM_GET_XSAVE: 4 KiB).
  if (::ioctl(m_fd.get(), xsave_size > sizeof(Xsave4k) ? kGetXsave2 : kGetXsave, xsave.data()) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_XSAVE")));
  s.xsave = std::move(xsave);

  kvm_xcrs xcrs{};
  if (::ioctl(m_fd.get(), KVM_GET_XCRS, &xcrs) < 0) return base::fail(AccelError(errno_text("KVM_GET_XCRS")));
  for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; ++i)
    if (xcrs.xcrs[i].xcr == 0) s.xcr0 = xcrs.xcrs[i].value;

  kvm_mp_state mp{};
  if (::ioctl(m_fd.get(), KVM_GET_MP_STATE, &mp) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_MP_STATE")));
  s.mp_state = mp.mp_state;

  kvm_lapic_state lapic{};
  if (::ioctl(m_fd.get(), KVM_GET_LAPIC, &lapic) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_LAPIC")));
  s.lapic = bytes_of(lapic);

  kvm_vcpu_events events{};
  if (::ioctl(m_fd.get(), KVM_GET_VCPU_EVENTS, &events) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_VCPU_EVENTS")));
  s.events = bytes_of(events);

  kvm_debugregs debug{};
  if (::ioctl(m_fd.get(), KVM_GET_DEBUGREGS, &debug) < 0)
    return base::fail(AccelError(errno_text("KVM_GET_DEBUGREGS")));
  std::copy(std::begin(debug.db), std::end(debug.db), s.dr);
  s.dr6 = debug.dr6;
  s.dr7 = debug.dr7;

  const std::vector<uint32_t> wanted = TRY(m_vm.state_msrs(m_fd.get()));
  std::vector<uint8_t> buffer(sizeof(MsrsHeader) + wanted.size() * sizeof(kvm_msr_entry));
  auto* msrs = reinterpret_cast<MsrsHeader*>(buffer.data());
  auto* entries = reinterpret_cast<kvm_msr_entry*>(buffer.data() + sizeof(MsrsHeader));
  msrs->nmsrs = static_cast<uint32_t>(wanted.size());
  for (size_t i = 0; i < wanted.size(); ++i) entries[i] = {wanted[i], 0, 0};
  // Safety: buffer holds nmsrs entries.
  int read = ::ioctl(m_fd.get(), kGetMsrs, msrs);
  if (read < 0) return base::fail(AccelError(errno_text("KVM_GET_MSRS")));
  if (static_cast<size_t>(read) != wanted.size()) {
    char text[96];
    std::snprintf(text, sizeof text, "KVM_GET_MSRS could not read MSR 0x%x", entries[read].index);
    return base::fail(AccelError(text));
  }
  for (size_t i = 0; i < wanted.size(); ++i) s.msrs.emplace_back(entries[i].index, entries[i].data);

  // Safety: KVM_GET_TSC_KHZ takes no argument and returns the rate (kHz) or -1.
  int khz = ::ioctl(m_fd.get(), KVM_GET_TSC_KHZ, 0);
  if (khz < 0) return base::fail(AccelError(errno_text("KVM_GET_TSC_KHZ")));
  s.tsc_khz = static_cast<uint32_t>(khz);
  return VcpuState{std::move(s)};
}

AccelResult<void> KvmVcpu::set_state(const VcpuState& any_state) {
  const auto* s = std::get_if<X86VcpuState>(&any_state);
  if (!s) return base::fail(AccelError("kvm runs x86_64 guests; got a non-x86 vCPU state"));
  // QEMU's order (kvm_arch_put_registers): registers, FPU/XSAVE, XCRs, sregs, then the LAPIC, the
  // MSRs (TSC_DEADLINE needs the LAPIC's mode), the run state, pending events and debug registers.
  kvm_regs regs{};
  __u64* gpr[16] = {&regs.rax, &regs.rbx, &regs.rcx, &regs.rdx, &regs.rsi, &regs.rdi, &regs.rsp, &regs.rbp,
                    &regs.r8,  &regs.r9,  &regs.r10, &regs.r11, &regs.r12, &regs.r13, &regs.r14, &regs.r15};
  for (int i = 0; i < 16; ++i) *gpr[i] = s->gpr[i];
  regs.rip = s->rip;
  regs.rflags = s->rflags;
  // Safety: each SET ioctl reads the struct its request number names; the vCPU is outside KVM_RUN.
  if (::ioctl(m_fd.get(), KVM_SET_REGS, &regs) < 0) return base::fail(AccelError(errno_text("KVM_SET_REGS")));

  if (!s->xsave.empty()) {
    const size_t size = m_vm.xsave_size();
    if (s->xsave.size() > size)
      return base::fail(AccelError("the saved XSAVE area has " + std::to_string(s->xsave.size()) +
                                   " bytes, this KVM takes " + std::to_string(size)));
    std::vector<uint8_t> xsave(size, 0);
    std::copy(s->xsave.begin(), s->xsave.end(), xsave.begin());
    // Safety: the buffer holds at least the XSAVE2 size KVM reads.
    if (::ioctl(m_fd.get(), kSetXsave, xsave.data()) < 0)
      return base::fail(AccelError(errno_text("KVM_SET_XSAVE")));
  }
  kvm_xcrs xcrs{};
  xcrs.nr_xcrs = 1;
  xcrs.xcrs[0].xcr = 0;
  xcrs.xcrs[0].value = s->xcr0;
  if (::ioctl(m_fd.get(), KVM_SET_XCRS, &xcrs) < 0) return base::fail(AccelError(errno_text("KVM_SET_XCRS")));

  kvm_sregs sregs{};
  sregs.cs = to_kvm(s->cs);
  sregs.ds = to_kvm(s->ds);
  sregs.es = to_kvm(s->es);
  sregs.fs = to_kvm(s->fs);
  sregs.gs = to_kvm(s->gs);
  sregs.ss = to_kvm(s->ss);
  sregs.tr = to_kvm(s->tr);
  sregs.ldt = to_kvm(s->ldt);
  sregs.gdt.base = s->gdt_base;
  sregs.gdt.limit = s->gdt_limit;
  sregs.idt.base = s->idt_base;
  sregs.idt.limit = s->idt_limit;
  sregs.cr0 = s->cr0;
  sregs.cr2 = s->cr2;
  sregs.cr3 = s->cr3;
  sregs.cr4 = s->cr4;
  sregs.cr8 = s->cr8;
  sregs.efer = s->efer;
  sregs.apic_base = s->apic_base;
  for (int i = 0; i < 4; ++i) sregs.interrupt_bitmap[i] = s->interrupt_bitmap[i];
  if (::ioctl(m_fd.get(), KVM_SET_SREGS, &sregs) < 0)
    return base::fail(AccelError(errno_text("KVM_SET_SREGS")));

  // The TSC's rate before its value (KVM_SET_MSRS below): the guest's clocks were calibrated to the
  // saved rate.
  if (s->tsc_khz != 0) {
    // Safety: KVM_GET_TSC_KHZ takes no argument and returns the rate (kHz) or -1.
    int here = ::ioctl(m_fd.get(), KVM_GET_TSC_KHZ, 0);
    if (here < 0) return base::fail(AccelError(errno_text("KVM_GET_TSC_KHZ")));
    const auto host_khz = static_cast<uint32_t>(here);
    switch (tsc_action(s->tsc_khz, host_khz, m_vm.tsc_control())) {
      case TscAction::kKeep:
        break;
      case TscAction::kRefuse:
        return base::fail(AccelError(tsc_refusal(s->tsc_khz, host_khz, "KVM cannot scale it here: no KVM_CAP_TSC_CONTROL")));
      case TscAction::kSet:
        // Safety: KVM_SET_TSC_KHZ takes the rate by value; the vCPU is outside KVM_RUN.
        if (::ioctl(m_fd.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(s->tsc_khz)) < 0)
          return base::fail(AccelError(tsc_refusal(s->tsc_khz, host_khz, errno_text("KVM_SET_TSC_KHZ"))));
        break;
    }
  }

  if (!s->lapic.empty()) {
    kvm_lapic_state lapic = TRY(from_bytes<kvm_lapic_state>(s->lapic, "the LAPIC state"));
    if (::ioctl(m_fd.get(), KVM_SET_LAPIC, &lapic) < 0)
      return base::fail(AccelError(errno_text("KVM_SET_LAPIC")));
  }

  std::vector<uint8_t> buffer(sizeof(MsrsHeader) + s->msrs.size() * sizeof(kvm_msr_entry));
  auto* msrs = reinterpret_cast<MsrsHeader*>(buffer.data());
  auto* entries = reinterpret_cast<kvm_msr_entry*>(buffer.data() + sizeof(MsrsHeader));
  msrs->nmsrs = static_cast<uint32_t>(s->msrs.size());
  for (size_t i = 0; i < s->msrs.size(); ++i) entries[i] = {s->msrs[i].first, 0, s->msrs[i].second};
  // Safety: buffer holds nmsrs entries. KVM returns how many it set, stopping at the first refused.
  int set = ::ioctl(m_fd.get(), kSetMsrs, msrs);
  if (set < 0) return base::fail(AccelError(errno_text("KVM_SET_MSRS")));
  if (static_cast<size_t>(set) != s->msrs.size()) {
    char text[96];
    std::snprintf(text, sizeof text, "KVM_SET_MSRS refused MSR 0x%x", entries[set].index);
    return base::fail(AccelError(text));
  }

  kvm_mp_state mp{};
  mp.mp_state = s->mp_state;
  if (::ioctl(m_fd.get(), KVM_SET_MP_STATE, &mp) < 0)
    return base::fail(AccelError(errno_text("KVM_SET_MP_STATE")));

  if (!s->events.empty()) {
    kvm_vcpu_events events = TRY(from_bytes<kvm_vcpu_events>(s->events, "the pending events"));
    // What KVM_GET_VCPU_EVENTS leaves out of flags yet always fills: set them too, as QEMU does.
    events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
    if (::ioctl(m_fd.get(), KVM_SET_VCPU_EVENTS, &events) < 0)
      return base::fail(AccelError(errno_text("KVM_SET_VCPU_EVENTS")));
  }

  kvm_debugregs debug{};
  std::copy(std::begin(s->dr), std::end(s->dr), debug.db);
  debug.dr6 = s->dr6;
  debug.dr7 = s->dr7;
  if (::ioctl(m_fd.get(), KVM_SET_DEBUGREGS, &debug) < 0)
    return base::fail(AccelError(errno_text("KVM_SET_DEBUGREGS")));
  return {};
}

// What the guest's CPUID says about the CPU: vendor, family/model/stepping, and the feature words a
// guest may have acted on (leaves 1, 7, 0xD, 0x80000001/7/8), so a snapshot resumes only on a CPU
// whose features the guest would not miss. Leaves that describe the host rather than the features
// (cache sizes, APIC ids, frequencies) are left out.
struct CpuFeatureWord {
  uint32_t function, index;
  CpuidReg reg;
  const char* name;
};
constexpr CpuFeatureWord kFeatureWords[] = {
    {1, 0, CpuidReg::Ecx, "ecx"},          {1, 0, CpuidReg::Edx, "edx"},
    {7, 0, CpuidReg::Ebx, "ebx"},          {7, 0, CpuidReg::Ecx, "ecx"},
    {7, 0, CpuidReg::Edx, "edx"},          {7, 1, CpuidReg::Eax, "eax"},
    {0xd, 0, CpuidReg::Eax, "eax"},        {0xd, 0, CpuidReg::Edx, "edx"},
    {0xd, 1, CpuidReg::Eax, "eax"},        {0x80000001, 0, CpuidReg::Ecx, "ecx"},
    {0x80000001, 0, CpuidReg::Edx, "edx"}, {0x80000007, 0, CpuidReg::Edx, "edx"},
    {0x80000008, 0, CpuidReg::Ebx, "ebx"},
};
constexpr size_t kFeatureWordCount = std::size(kFeatureWords);
struct CpuIdentity {
  char vendor[12] = {};
  uint32_t signature = 0;  // leaf 1 eax
  uint32_t words[16] = {};
};
static_assert(kFeatureWordCount <= 16);
CpuIdentity cpu_identity(const CpuidTable& table) {
  CpuIdentity id;
  auto value = [](const CpuidEntry& e, CpuidReg reg) {
    switch (reg) {
      case CpuidReg::Eax:
        return e.eax;
      case CpuidReg::Ebx:
        return e.ebx;
      case CpuidReg::Ecx:
        return e.ecx;
      case CpuidReg::Edx:
        return e.edx;
    }
    return 0u;
  };
  for (const CpuidEntry& e : table) {
    if (e.function == 0 && e.index == 0) {
      std::memcpy(id.vendor, &e.ebx, 4);
      std::memcpy(id.vendor + 4, &e.edx, 4);
      std::memcpy(id.vendor + 8, &e.ecx, 4);
    }
    if (e.function == 1 && e.index == 0) id.signature = e.eax;
    for (size_t i = 0; i < kFeatureWordCount; ++i)
      if (e.function == kFeatureWords[i].function && e.index == kFeatureWords[i].index)
        id.words[i] = value(e, kFeatureWords[i].reg);
  }
  return id;
}
// Empty when `saved` and `here` agree, else what differs.
std::string identity_difference(const CpuIdentity& saved, const CpuIdentity& here) {
  char text[160];
  auto cpu = [](const CpuIdentity& id) {
    char t[48];
    std::snprintf(t, sizeof t, "%.12s 0x%x", id.vendor, id.signature);
    return std::string(t);
  };
  if (std::memcmp(saved.vendor, here.vendor, sizeof here.vendor) != 0 || saved.signature != here.signature)
    return "vendor and family/model/stepping " + cpu(saved) + ", here " + cpu(here);
  for (size_t i = 0; i < kFeatureWordCount; ++i)
    if (saved.words[i] != here.words[i]) {
      std::snprintf(text, sizeof text, "CPUID leaf 0x%x.%u %s 0x%08x, here 0x%08x", kFeatureWords[i].function,
                    kFeatureWords[i].index, kFeatureWords[i].name, saved.words[i], here.words[i]);
      return text;
    }
  return "";
}

// The VM's own state: version, the guest's CPU identity, the guest clock, and with the full irqchip the PIC
// pair, IOAPIC and PIT as KVM's structs. With the split irqchip the IOAPIC is the machine's device (saved
// there).
constexpr uint32_t kVmStateVersion = 1;

AccelResult<std::vector<uint8_t>> KvmVm::save_vm_state() {
  std::vector<uint8_t> out;
  auto put = [&](const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    out.insert(out.end(), p, p + size);
  };
  put(&kVmStateVersion, 4);
  const CpuIdentity cpu = cpu_identity(m_cpuid);
  put(&cpu, sizeof cpu);
  uint64_t clock = 0;
  {
    std::lock_guard guard(m_park_lock);
    if (m_clock_saved) clock = m_clock.clock;  // what the guest saw when it was paused
  }
  if (clock == 0) {
    kvm_clock_data now{};
    // Safety: KVM_GET_CLOCK fills a kvm_clock_data.
    if (::ioctl(m_vm.get(), KVM_GET_CLOCK, &now) < 0)
      return base::fail(AccelError(errno_text("KVM_GET_CLOCK")));
    clock = now.clock;
  }
  put(&clock, 8);
  const uint8_t full = split() ? 0 : 1;
  put(&full, 1);
  if (full) {
    TRY(ensure_irqchip());
    for (uint32_t chip : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC}) {
      kvm_irqchip state{};
      state.chip_id = chip;
      // Safety: KVM_GET_IRQCHIP fills the chip's part of the union.
      if (::ioctl(m_vm.get(), KVM_GET_IRQCHIP, &state) < 0)
        return base::fail(AccelError(errno_text("KVM_GET_IRQCHIP")));
      put(&state, sizeof state);
    }
    kvm_pit_state2 pit{};
    // Safety: KVM_GET_PIT2 fills a kvm_pit_state2.
    if (::ioctl(m_vm.get(), KVM_GET_PIT2, &pit) < 0)
      return base::fail(AccelError(errno_text("KVM_GET_PIT2")));
    put(&pit, sizeof pit);
  }
  return out;
}

AccelResult<void> KvmVm::load_vm_state(std::span<const uint8_t> bytes, uint64_t ns_away) {
  size_t at = 0;
  auto get = [&](void* data, size_t size) {
    if (bytes.size() - at < size) return false;
    std::memcpy(data, bytes.data() + at, size);
    at += size;
    return true;
  };
  const AccelError short_state("the saved KVM VM state is short or not of this irqchip");
  uint32_t version = 0;
  uint64_t clock = 0;
  uint8_t full = 0;
  if (!get(&version, 4)) return base::fail(short_state);
  if (version != kVmStateVersion)
    return base::fail(AccelError("KVM VM state version " + std::to_string(version) +
                                 ", this vmlaunch reads " + std::to_string(kVmStateVersion)));
  CpuIdentity saved{};
  if (!get(&saved, sizeof saved)) return base::fail(short_state);
  if (std::string differs = identity_difference(saved, cpu_identity(m_cpuid)); !differs.empty())
    return base::fail(AccelError("the snapshot's guest saw another CPU (" + differs + ")"));
  if (!get(&clock, 8) || !get(&full, 1)) return base::fail(short_state);
  if ((full != 0) == split()) return base::fail(AccelError("the snapshot's VM has another irqchip"));
  if (full) {
    TRY(ensure_irqchip());
    for (uint32_t chip : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC}) {
      kvm_irqchip state{};
      if (!get(&state, sizeof state) || state.chip_id != chip) return base::fail(short_state);
      // Safety: KVM_SET_IRQCHIP reads the chip's part of the union.
      if (::ioctl(m_vm.get(), KVM_SET_IRQCHIP, &state) < 0)
        return base::fail(AccelError(errno_text("KVM_SET_IRQCHIP")));
    }
    kvm_pit_state2 pit{};
    if (!get(&pit, sizeof pit)) return base::fail(short_state);
    // Safety: KVM_SET_PIT2 reads a kvm_pit_state2.
    if (::ioctl(m_vm.get(), KVM_SET_PIT2, &pit) < 0)
      return base::fail(AccelError(errno_text("KVM_SET_PIT2")));
  }
  if (at != bytes.size()) return base::fail(AccelError("the saved KVM VM state has unexpected bytes"));
  // The guest's clock where it stopped, stepped forward by the time the snapshot spent on disk.
  kvm_clock_data data{};
  data.clock = clock + ns_away;
  // Safety: KVM_SET_CLOCK reads a kvm_clock_data (flags 0: exactly this value).
  if (::ioctl(m_vm.get(), KVM_SET_CLOCK, &data) < 0)
    return base::fail(AccelError(errno_text("KVM_SET_CLOCK")));
  return {};
}

}  // namespace

TscAction tsc_action(uint32_t saved_khz, uint32_t host_khz, bool tsc_control) {
  if (saved_khz == 0 || saved_khz == host_khz) return TscAction::kKeep;
  const uint64_t apart = saved_khz > host_khz ? saved_khz - host_khz : host_khz - saved_khz;
  if (apart * 1000000 <= uint64_t{host_khz} * kTscTolerancePpm) return TscAction::kSet;
  return tsc_control ? TscAction::kSet : TscAction::kRefuse;
}

std::string tsc_refusal(uint32_t saved_khz, uint32_t host_khz, const std::string& why) {
  return "the snapshot's guest TSC runs at " + std::to_string(saved_khz) + " kHz, this host's at " +
         std::to_string(host_khz) + " kHz (" + why +
         "); restore it on a host with the same TSC rate";
}

AccelResult<int> open_kvm(const std::string& device_path) {
  // Safety: plain open; the fd is returned to the caller, who owns it.
  int fd = ::open(device_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    if (error == ENOENT)
      return base::fail(AccelError(device_path + ": No such file or directory (is the kvm module loaded? "
                                                 "is hardware virtualization enabled in the firmware?)"));
    if (error == EACCES || error == EPERM)
      return base::fail(AccelError(device_path + ": Permission denied (add yourself to the \"kvm\" group: "
                                                 "sudo usermod -aG kvm $USER, then log in again)"));
    return base::fail(AccelError(device_path + ": " + std::strerror(error)));
  }
  // Safety: KVM_GET_API_VERSION takes no argument.
  int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version != kApiVersion) {
    int error = errno;
    ::close(fd);
    if (version < 0)
      return base::fail(AccelError(device_path + ": KVM_GET_API_VERSION failed: " + std::strerror(error) +
                                   " (not a KVM device?)"));
    return base::fail(AccelError(device_path + " speaks KVM API " + std::to_string(version) +
                                 ", vmlaunch needs " + std::to_string(kApiVersion)));
  }
  return fd;
}

AccelResult<CpuidTable> supported_cpuid(int kvm_fd) {
  for (uint32_t capacity = 128; capacity <= 4096; capacity *= 2) {
    std::vector<uint8_t> buffer(sizeof(Cpuid2Header) + capacity * sizeof(kvm_cpuid_entry2));
    auto* cpuid = reinterpret_cast<Cpuid2Header*>(buffer.data());
    auto* entries = reinterpret_cast<const kvm_cpuid_entry2*>(buffer.data() + sizeof(Cpuid2Header));
    cpuid->nent = capacity;
    // Safety: buffer holds nent entries; E2BIG means try a larger one.
    if (::ioctl(kvm_fd, kGetSupportedCpuid, cpuid) < 0) {
      if (errno == E2BIG) continue;
      return base::fail(AccelError(errno_text("KVM_GET_SUPPORTED_CPUID")));
    }
    CpuidTable table;
    for (uint32_t i = 0; i < cpuid->nent; ++i) {
      const kvm_cpuid_entry2& e = entries[i];
      table.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
    }
    return table;
  }
  return base::fail(AccelError("KVM_GET_SUPPORTED_CPUID: more than 4096 entries"));
}

KvmAccelerator::~KvmAccelerator() {
  if (m_system_fd >= 0) ::close(m_system_fd);
}

Availability KvmAccelerator::probe() const {
  auto fd = open_kvm(m_device_path);
  if (!fd.ok()) return {false, fd.error().message};
  ::close(fd.value());
  return {true, "KVM API " + std::to_string(kApiVersion) + " on " + m_device_path};
}

AccelResult<std::unique_ptr<Vm>> KvmAccelerator::create_vm(const VmSpec& spec,
                                                           const base::GuestMemory& memory, VmOps& ops) {
  (void)memory;  // regions arrive through map_memory
  if (spec.arch != "x86_64")
    return base::fail(AccelError("kvm runs x86_64 guests on this host, not " + spec.arch));
  if (!spec.cpu_model.empty() && spec.cpu_model != "host" && spec.cpu_model != "max")
    return base::fail(
        AccelError("cpu model \"" + spec.cpu_model + "\" is not available with kvm (use \"host\")"));
  if (spec.vcpu_count == 0) return base::fail(AccelError("cpu.count must be at least 1"));
  const auto& t = spec.topology;
  if (uint64_t{t.sockets} * t.cores * t.threads < spec.vcpu_count)
    return base::fail(AccelError("topology sockets*cores*threads is smaller than cpu.count"));

  Fd kvm;
  {
    std::lock_guard guard(m_system_lock);
    if (m_system_fd < 0) m_system_fd = TRY(open_kvm(m_device_path));
    // Safety: duplicates a descriptor we own; the VM keeps its own copy.
    int copy = ::fcntl(m_system_fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return base::fail(AccelError(errno_text("dup /dev/kvm")));
    kvm = Fd(copy);
  }
  // The feature edits are checked first: a bad edit is a config error, worth reporting before
  // anything is created.
  CpuidTable supported = TRY(supported_cpuid(kvm.get()));
  // As QEMU: the guest learns it runs on KVM (kvm-clock, paravirt features); "-hypervisor" hides it.
  add_hypervisor_leaves(supported);
  CpuidTable table = supported;
  auto edited = apply_cpu_features(table, supported, spec.cpu_features);
  if (!edited.ok()) return base::fail(AccelError(edited.error().message));

  // Safety: KVM_CREATE_VM with machine type 0 (the default) returns a new VM fd.
  int vm_fd = ::ioctl(kvm.get(), KVM_CREATE_VM, 0);
  if (vm_fd < 0) return base::fail(AccelError(errno_text("KVM_CREATE_VM")));
  Fd vm(vm_fd);
  int run_size = ::ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < static_cast<int>(sizeof(kvm_run)))
    return base::fail(AccelError(errno_text("KVM_GET_VCPU_MMAP_SIZE")));
  // Safety: addresses by value, both in the 4 GiB hole no machine maps RAM into.
  if (::ioctl(vm.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(kTssAddress)) < 0)
    return base::fail(AccelError(errno_text("KVM_SET_TSS_ADDR")));
  uint64_t identity = kIdentityMapAddress;
  if (::ioctl(vm.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0 && errno != EINVAL && errno != ENOTTY)
    return base::fail(AccelError(errno_text("KVM_SET_IDENTITY_MAP_ADDR")));
  if (spec.x86_irqchip == VmSpec::X86Irqchip::Split) {
    // LAPICs in the kernel, IOAPIC in the machine, no PIC or PIT (as QEMU's microvm and Cloud
    // Hypervisor run). Besides needing no legacy devices, it keeps launch and exit cheap: the full
    // irqchip makes each later memory slot wait for an SRCU grace period and its io-bus
    // unregistering costs 7-26 ms when the VM fd closes; split create..close is ~0.5 ms here.
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_SPLIT_IRQCHIP;
    cap.args[0] = kIoapicPins;
    // Safety: plain struct argument; must come before any vCPU exists.
    if (::ioctl(vm.get(), KVM_ENABLE_CAP, &cap) < 0)
      return base::fail(AccelError(errno_text("KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP)")));
    if (trace_exits())
      std::fprintf(stderr, "kvm: split irqchip (LAPICs in the kernel, %u IOAPIC pins in userspace)\n",
                   kIoapicPins);
  }
  // The full irqchip comes later: KvmVm::ensure_irqchip, after the RAM slots.

  return std::unique_ptr<Vm>(std::make_unique<KvmVm>(
      std::move(kvm), std::move(vm), static_cast<size_t>(run_size), std::move(table), spec, ops));
}

}  // namespace accel::kvm
