#include "hw/pci/vfio_pci.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/device_model.h"
#include "hw/pci/models.h"
#include "passthrough/vfio.h"
#include "security/thread_role.h"

VML_CONSUMES("device-type:vfio-pci");
VML_CONSUMES("devices[].passthrough");
VML_CONSUMES("devices[].host");
VML_CONSUMES("passthrough.*");  // opened by backends/factory for this model

namespace hw::pci {
namespace {

constexpr uint8_t kCapMsi = 0x05;
constexpr uint16_t kMsi64Bit = 0x80, kMsiEnable = 0x01;
// Offsets inside our MSI capability (64-bit layout): control, address low/high, data.
constexpr uint16_t kMsiControl = 2, kMsiAddressLow = 4, kMsiAddressHigh = 8, kMsiData = 12;

// One BAR of the host function, trapped: every guest access is a pread/pwrite of the VFIO region.
class VfioBar : public Device {
 public:
  VfioBar(std::string name, std::shared_ptr<passthrough::VfioDevice> device, unsigned index)
      : m_name(std::move(name)), m_device(std::move(device)), m_index(index) {}
  std::string_view name() const override { return m_name; }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    // Outside the host region (our BAR is rounded up to a power of two) or refused: all-ones, as
    // a read of nothing on a PCI bus.
    if (!m_device->read(m_index, offset, data)) std::memset(data.data(), 0xff, data.size());
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    (void)m_device->write(m_index, offset, data);  // outside the region: dropped, as on a bus
  }

 private:
  std::string m_name;
  std::shared_ptr<passthrough::VfioDevice> m_device;
  unsigned m_index;
};

// The host function's expansion ROM, read-only: reads go to VFIO's ROM region (outside it: all-ones),
// writes are dropped, as a ROM's are.
class VfioRom : public Device {
 public:
  VfioRom(std::string name, std::shared_ptr<passthrough::VfioDevice> device)
      : m_name(std::move(name)), m_device(std::move(device)) {}
  std::string_view name() const override { return m_name; }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    if (!m_device->read(passthrough::kVfioRomRegion, offset, data))
      std::memset(data.data(), 0xff, data.size());
  }
  void write(uint64_t, std::span<const uint8_t>) override {}

 private:
  std::string m_name;
  std::shared_ptr<passthrough::VfioDevice> m_device;
};

uint32_t host_config(const passthrough::VfioDevice& device, uint16_t offset, unsigned size) {
  uint8_t bytes[4] = {0xff, 0xff, 0xff, 0xff};
  if (!device.read(passthrough::kVfioConfigRegion, offset, std::span<uint8_t>(bytes, size))) return ~0u;
  uint32_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= static_cast<uint32_t>(bytes[i]) << (8 * i);
  return value;
}

uint64_t bar_size(uint64_t region_size, bool io) {
  uint64_t size = io ? 4 : 16;  // PciFunction's smallest BARs
  while (size < region_size) size <<= 1;
  return size;
}

}  // namespace

VfioPciFunction::VfioPciFunction(std::string name, const FunctionIds& ids,
                                 std::shared_ptr<passthrough::VfioDevice> device,
                                 std::shared_ptr<MsiSink> msi)
    : PciFunction(std::move(name), ids), m_device(std::move(device)), m_msi(std::move(msi)) {}

base::ErrorOr<std::shared_ptr<VfioPciFunction>> VfioPciFunction::create(
    std::string name, std::shared_ptr<passthrough::VfioDevice> device, const base::GuestMemory& memory,
    std::shared_ptr<MsiSink> msi, std::shared_ptr<IrqLine> intx, std::shared_ptr<DirectMapper> direct) {
  if (!device) return base::fail(base::Error("no VFIO device"));
  if (auto reset = device->reset(); !reset.ok()) return base::fail(reset.error());
  FunctionIds ids;
  ids.vendor = static_cast<uint16_t>(host_config(*device, kVendorId, 2));
  ids.device = static_cast<uint16_t>(host_config(*device, kDeviceId, 2));
  ids.revision = static_cast<uint8_t>(host_config(*device, kRevision, 1));
  ids.class_code = host_config(*device, kRevision, 4) >> 8;
  ids.subsystem_vendor = static_cast<uint16_t>(host_config(*device, kSubsystemVendorId, 2));
  ids.subsystem = static_cast<uint16_t>(host_config(*device, kSubsystemId, 2));
  if (ids.vendor == 0xffff)
    return base::fail(base::Error(device->bdf() + ": config space reads as all-ones"));
  if ((host_config(*device, kHeaderType, 1) & 0x7f) != 0)
    return base::fail(base::Error(device->bdf() + " is a bridge; only endpoints can be passed through"));
  std::shared_ptr<VfioPciFunction> fn(new VfioPciFunction(name, ids, device, std::move(msi)));
  // VMLAUNCH_VFIO_TRAP_BARS=1 keeps every BAR trapped: for measuring one path against the other.
  const char* trap = std::getenv("VMLAUNCH_VFIO_TRAP_BARS");
  if (!trap || std::string_view(trap) != "1") fn->m_direct = std::move(direct);

  for (unsigned i = 0; i < passthrough::kVfioBarCount; ++i) {
    const passthrough::VfioRegion& region = device->region(i);
    if (region.size == 0) continue;
    uint32_t bar = host_config(*device, static_cast<uint16_t>(kBar0 + 4 * i), 4);
    bool io = bar & 1;
    bool is64 = !io && ((bar >> 1) & 3) == 2;
    if (is64 && i == passthrough::kVfioBarCount - 1) break;  // a malformed BAR5: skip it
    fn->define_bar(i, bar_size(region.size, io),
                   io     ? BarKind::Io
                   : is64 ? BarKind::Memory64
                          : BarKind::Memory32,
                   std::make_shared<VfioBar>(name + ".bar" + std::to_string(i), device, i), !io && (bar & 8));
    if (is64) ++i;
  }

  // The ROM, where the host function has one VFIO can read.
  if (const passthrough::VfioRegion& rom = device->region(passthrough::kVfioRomRegion);
      rom.size != 0 && rom.size <= (1ull << 31) && rom.readable) {
    uint64_t size = 2048;
    while (size < rom.size) size <<= 1;
    fn->define_rom(size, std::make_shared<VfioRom>(name + ".rom", device));
  }

  // Guest RAM at I/O address = guest-physical address.
  for (const base::GuestMemory::Region& r : memory.regions())
    if (auto mapped = device->map_dma(r.guest_base, r.host, r.size); !mapped.ok()) {
      device->unmap_all_dma();
      return base::fail(mapped.error());
    }

  // INTx from the start, as on the host after reset, when the function has a pin and the machine
  // can drive the line from eventfds.
  if (intx && device->irq_count(passthrough::kVfioIrqIntx) > 0 &&
      host_config(*device, kInterruptPin, 1) != 0) {
    fn->m_intx = std::move(intx);
    fn->m_intx_event = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fn->m_intx_resample = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fn->m_intx_event < 0 || fn->m_intx_resample < 0)
      return base::fail(base::Error("vfio-pci: eventfd failed"));
    if (!fn->enable_intx_locked()) {
      // Not this machine (a split irqchip): no INTx, as before; MSI still works.
      ::close(fn->m_intx_event);
      ::close(fn->m_intx_resample);
      fn->m_intx_event = fn->m_intx_resample = -1;
    }
  }

  if (fn->m_msi && device->irq_count(passthrough::kVfioIrqMsi) > 0) {
    // control (64-bit, one vector), address low/high, data, reserved.
    const uint8_t body[12] = {kMsi64Bit, 0};
    const uint8_t writable[12] = {kMsiEnable, 0, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    fn->m_msi_cap = fn->add_capability(kCapMsi, body, writable);
    fn->m_msi_event = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fn->m_stop_event = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fn->m_msi_event < 0 || fn->m_stop_event < 0)
      return base::fail(base::Error("vfio-pci: eventfd failed"));
    VfioPciFunction* self = fn.get();
    fn->m_forwarder = std::thread([self] {
      security::ThreadRole role(security::Role::DeviceIo);
      self->forward_msi();
    });
  }
  return fn;
}

void VfioPciFunction::forward_command() {
  // The decode, bus-master and INTx-disable bits reach the host function: it DMAs and sends MSIs
  // only with bus mastering on, and VFIO masks the host INTx while INTx disable is set. The rest
  // (SERR, parity...) stays ours.
  uint16_t mask = kCommandIo | kCommandMemory | kCommandBusMaster | kCommandIntxDisable;
  uint16_t host = static_cast<uint16_t>(host_config(*m_device, kCommand, 2));
  uint16_t command = static_cast<uint16_t>((host & ~mask) | (read_raw(kCommand, 2) & mask));
  uint8_t bytes[2] = {static_cast<uint8_t>(command), static_cast<uint8_t>(command >> 8)};
  (void)m_device->write(passthrough::kVfioConfigRegion, kCommand, bytes);
}

void VfioPciFunction::bar_moved(unsigned index, std::optional<uint64_t> address) {
  if (!m_direct || index >= m_direct_ids.size()) return;
  const passthrough::VfioRegion& region = m_device->region(index);
  if (!region.mapped) return;
  if (m_direct_ids[index]) m_direct->unmap(*m_direct_ids[index]);
  m_direct_ids[index].reset();
  // The guest's address: a BAR is aligned to its size, at least the region's whole pages; anything
  // else (or a range the accelerator refuses: over RAM) stays trapped.
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  if (address && *address % page == 0 && *address + region.size > *address) {
    // The host function decodes memory before the slot exists: VFIO refuses accesses to the mmap
    // of a function that does not (SIGBUS, which KVM_RUN would report as EFAULT), and another vCPU
    // may touch the BAR as soon as the slot is there. (Turning decoding off, the slot goes first.)
    forward_command();
    m_direct_ids[index] = m_direct->map(*address, region.mapped, region.size);
  }
}

VfioPciFunction::~VfioPciFunction() {
  if (m_direct)
    for (std::optional<uint32_t>& id : m_direct_ids)
      if (id) m_direct->unmap(*id);
  if (m_forwarder.joinable()) {
    const uint64_t one = 1;
    // Only fails when the counter would overflow: a stop is pending then anyway.
    (void)!::write(m_stop_event, &one, sizeof one);
    m_forwarder.join();
  }
  if (m_msi_irqfd.load()) m_msi->unbind_eventfd(m_msi_event);
  if (m_msi_enabled) (void)m_device->set_irq_eventfds(passthrough::kVfioIrqMsi, {});
  disable_intx_locked();
  m_device->unmap_all_dma();
  (void)m_device->reset();
  if (m_msi_event >= 0) ::close(m_msi_event);
  if (m_stop_event >= 0) ::close(m_stop_event);
  if (m_intx_event >= 0) ::close(m_intx_event);
  if (m_intx_resample >= 0) ::close(m_intx_resample);
}

bool VfioPciFunction::enable_intx_locked() {
  if (m_intx_event < 0 || m_intx_enabled) return m_intx_enabled;
  // The line first: a host INTx that fires before it is bound stays in the eventfd, and KVM
  // delivers a pending one when it binds.
  if (!m_intx->bind_eventfds(m_intx_event, m_intx_resample)) return false;
  const int fds[1] = {m_intx_event};
  auto trigger = m_device->set_irq_eventfds(passthrough::kVfioIrqIntx, fds);
  auto unmask = trigger.ok() ? m_device->set_irq_unmask_eventfd(passthrough::kVfioIrqIntx, m_intx_resample)
                             : base::ErrorOr<void>(base::fail(trigger.error()));
  if (!unmask.ok()) {
    std::fprintf(stderr, "vmlaunch: %s: INTx: %s\n", name().c_str(), unmask.error().message.c_str());
    if (trigger.ok()) (void)m_device->set_irq_eventfds(passthrough::kVfioIrqIntx, {});
    m_intx->unbind_eventfds(m_intx_event);
    return false;
  }
  m_intx_enabled = true;
  return true;
}

void VfioPciFunction::disable_intx_locked() {
  if (!m_intx_enabled) return;
  // VFIO first: nothing signals the eventfd once it is unbound. Unbinding drops the line if the
  // guest had not EOIed it yet.
  (void)m_device->set_irq_eventfds(passthrough::kVfioIrqIntx, {});
  m_intx->unbind_eventfds(m_intx_event);
  m_intx_enabled = false;
}

void VfioPciFunction::config_written(uint16_t offset, unsigned size) {
  const unsigned end = offset + size;
  if (offset < kCommand + 2 && end > kCommand) forward_command();
  // Control (enable), address and data: whatever the guest changed, VFIO and the binding follow.
  const unsigned control = m_msi_cap + kMsiControl;
  if (m_msi_cap && offset < control + 12 && end > control) update_msi();
}

void VfioPciFunction::update_msi() {
  std::lock_guard guard(m_msi_lock);
  bool enable = read_raw(m_msi_cap + kMsiControl, 2) & kMsiEnable;
  uint64_t address = read_raw(m_msi_cap + kMsiAddressLow, 4) |
                     static_cast<uint64_t>(read_raw(m_msi_cap + kMsiAddressHigh, 4)) << 32;
  uint32_t data = read_raw(m_msi_cap + kMsiData, 2);
  if (enable && m_msi_enabled) {
    // Re-aimed while enabled: the binding follows (the forwarder reads the message each time).
    if (m_msi_irqfd.load()) m_msi_irqfd = m_msi->bind_eventfd(m_msi_event, address, data);
    return;
  }
  if (enable == m_msi_enabled) return;
  if (!enable && m_msi_irqfd.load()) {
    m_msi->unbind_eventfd(m_msi_event);
    m_msi_irqfd = false;
  }
  // VFIO has one interrupt type at a time: INTx goes while MSI is on and comes back after.
  if (enable) disable_intx_locked();
  const int fds[1] = {m_msi_event};
  auto done = m_device->set_irq_eventfds(passthrough::kVfioIrqMsi,
                                         enable ? std::span<const int>(fds) : std::span<const int>());
  if (!done.ok()) {
    // The guest's own device stops interrupting; the VMM goes on.
    std::fprintf(stderr, "vmlaunch: %s: MSI %s: %s\n", name().c_str(), enable ? "enable" : "disable",
                 done.error().message.c_str());
    if (!m_msi_enabled) (void)enable_intx_locked();
    return;
  }
  m_msi_enabled = enable;
  if (enable) m_msi_irqfd = m_msi->bind_eventfd(m_msi_event, address, data);
  if (!enable) (void)enable_intx_locked();
}

void VfioPciFunction::forward_msi() {
  pollfd fds[2] = {{m_stop_event, POLLIN, 0}, {m_msi_event, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[0].revents) return;
    uint64_t count = 0;
    if (!(fds[1].revents & POLLIN) || ::read(m_msi_event, &count, sizeof count) != sizeof count) continue;
    if (m_msi_irqfd.load()) continue;  // the accelerator delivered it already
    // The message as the guest programmed it now; a disabled capability sends nothing.
    if (!(read_raw(m_msi_cap + kMsiControl, 2) & kMsiEnable)) continue;
    uint64_t address = read_raw(m_msi_cap + kMsiAddressLow, 4) |
                       static_cast<uint64_t>(read_raw(m_msi_cap + kMsiAddressHigh, 4)) << 32;
    uint32_t data = read_raw(m_msi_cap + kMsiData, 2);
    m_msi_count.fetch_add(1, std::memory_order_relaxed);
    m_msi->signal(address, data);
  }
}

namespace {

base::ErrorOr<std::shared_ptr<Device>> make_vfio_pci(DeviceEnv& env) {
  const graph::BackendRef* ref = env.device.backend("passthrough");
  if (!ref) ref = env.device.backend("host");  // the same, by its other name
  if (!ref) return base::fail(base::Error("no passthrough entry"));
  std::shared_ptr<passthrough::VfioDevice> device = env.backends.vfio(ref->name);
  if (!device) return base::fail(base::Error("passthrough entry \"" + ref->name + "\" was not opened"));
  if (!env.msi)
    return base::fail(
        base::Error("vfio-pci needs a machine with MSI (x86_64 pc); this one has only INTx, "
                    "which vfio-pci does not forward yet"));
  auto fn = TRY(VfioPciFunction::create(env.device.id, std::move(device), env.memory, env.msi,
                                        env.device.irq ? env.irq : nullptr, env.direct));
  TRY(plug_function(env, fn));
  return std::shared_ptr<Device>();
}

}  // namespace

HW_REGISTER_DEVICE_MODEL("vfio-pci", make_vfio_pci);

}  // namespace hw::pci
