#include "hw/pci/vfio_pci.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
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

constexpr uint8_t kCapMsi = 0x05, kCapVendor = 0x09;
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

  // The host's MSI-X capability, if any and usable: its table and PBA must lie inside BARs VFIO
  // gives us, and VFIO must offer MSI-X vectors (the guest's config space is ours, so a host
  // capability that does not fit is simply not offered).
  if (fn->m_msi && device->irq_count(passthrough::kVfioIrqMsix) > 0) {
    uint8_t config[256];
    std::memset(config, 0xff, sizeof config);
    std::array<uint64_t, 6> sizes{};
    for (unsigned i = 0; i < passthrough::kVfioBarCount; ++i) sizes[i] = device->region(i).size;
    if (device->read(passthrough::kVfioConfigRegion, 0, config)) {
      MsixFound found = find_msix(config, sizes);
      if (found.layout) {
        fn->m_msix_layout = *found.layout;
        fn->m_msix = std::make_shared<MsixTable>(found.layout->vectors);
      } else if (!found.problem.empty()) {
        std::fprintf(stderr, "vmlaunch: %s: the host's MSI-X is not offered: %s\n", name.c_str(),
                     found.problem.c_str());
      }
    }
  }

  for (unsigned i = 0; i < passthrough::kVfioBarCount; ++i) {
    const passthrough::VfioRegion& region = device->region(i);
    if (region.size == 0) continue;
    uint32_t bar = host_config(*device, static_cast<uint16_t>(kBar0 + 4 * i), 4);
    bool io = bar & 1;
    bool is64 = !io && ((bar >> 1) & 3) == 2;
    if (is64 && i == passthrough::kVfioBarCount - 1) break;  // a malformed BAR5: skip it
    std::shared_ptr<Device> decoder = std::make_shared<VfioBar>(name + ".bar" + std::to_string(i), device, i);
    if (fn->m_msix && (fn->m_msix_layout.table_bar == i || fn->m_msix_layout.pba_bar == i)) {
      // The table and PBA are ours; the rest of the BAR is the host's (trapped, each access a
      // pread/pwrite). A table write re-programs that vector's delivery.
      const MsixLayout& l = fn->m_msix_layout;
      std::weak_ptr<VfioPciFunction> weak = fn;
      decoder = std::make_shared<MsixBarWindow>(
          name + ".bar" + std::to_string(i) + ".msix", decoder, fn->m_msix,
          l.table_bar == i ? std::optional<uint64_t>(l.table_offset) : std::nullopt,
          l.pba_bar == i ? std::optional<uint64_t>(l.pba_offset) : std::nullopt, [weak](unsigned vector) {
            if (auto self = weak.lock()) self->update_msix(vector);
          });
    }
    fn->define_bar(i, bar_size(region.size, io),
                   io     ? BarKind::Io
                   : is64 ? BarKind::Memory64
                          : BarKind::Memory32,
                   std::move(decoder), !io && (bar & 8));
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
    if (fn->m_msi_event < 0) return base::fail(base::Error("vfio-pci: eventfd failed"));
  }

  // Vendor-specific capabilities (id 9), copied read-only: drivers find device structures
  // through them (virtio-pci's common, notify, ISR and device config areas in its BARs, whose
  // layout is the host's, as ours is).
  {
    uint8_t config[256];
    if (device->read(passthrough::kVfioConfigRegion, 0, config) && (config[kStatus] & kStatusCapabilities)) {
      // Our list starts at 0x40 with MSI (16 bytes, aligned) and ends with MSI-X (12): what does
      // not fit in between is left out.
      unsigned next = 0x40 + (fn->m_msi_cap ? 16 : 0);
      const unsigned end = 256 - (fn->m_msix ? 12 : 0);
      unsigned at = config[kCapabilityPointer] & 0xfc;
      for (unsigned steps = 0; at >= 0x40 && at + 3 <= 256 && steps < 48; ++steps) {
        const unsigned length = config[at + 2];  // includes the id and next bytes
        if (config[at] == kCapVendor && length >= 3 && at + length <= 256 && next + length <= end) {
          fn->add_capability(kCapVendor, std::span<const uint8_t>(config + at + 2, length - 2));
          next = (next + length + 3) & ~3u;
        }
        at = config[at + 1] & 0xfc;
      }
    }
  }

  if (fn->m_msix) {
    // Control (table size; enable and function mask writable), table and PBA offset/BIR as the
    // host has them (our BARs have the host's layout).
    const MsixLayout& l = fn->m_msix_layout;
    const uint16_t control = static_cast<uint16_t>(l.vectors - 1);
    const uint32_t table = l.table_offset | l.table_bar, pba = l.pba_offset | l.pba_bar;
    const uint8_t body[10] = {static_cast<uint8_t>(control),     static_cast<uint8_t>(control >> 8),
                              static_cast<uint8_t>(table),       static_cast<uint8_t>(table >> 8),
                              static_cast<uint8_t>(table >> 16), static_cast<uint8_t>(table >> 24),
                              static_cast<uint8_t>(pba),         static_cast<uint8_t>(pba >> 8),
                              static_cast<uint8_t>(pba >> 16),   static_cast<uint8_t>(pba >> 24)};
    const uint8_t writable[10] = {0, static_cast<uint8_t>((kMsixEnable | kMsixFunctionMask) >> 8)};
    fn->m_msix_cap = fn->add_capability(kCapMsix, body, writable);
    // The eventfds now, before the VMM is confined; VFIO gets them when the guest enables MSI-X.
    const unsigned count = std::min(l.vectors, device->irq_count(passthrough::kVfioIrqMsix));
    for (unsigned v = 0; v < count; ++v) {
      int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (fd < 0) return base::fail(base::Error("vfio-pci: eventfd failed"));
      fn->m_msix_events.push_back(fd);
    }
    fn->m_msix_irqfd.assign(count, 0);
  }

  if (fn->m_msi_event >= 0 || !fn->m_msix_events.empty()) {
    fn->m_stop_event = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fn->m_stop_event < 0) return base::fail(base::Error("vfio-pci: eventfd failed"));
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
  // The MSI-X table must stay ours (a kernel may let us map it: VFIO_REGION_INFO_CAP_MSIX_MAPPABLE).
  if (m_msix && (index == m_msix_layout.table_bar || index == m_msix_layout.pba_bar)) return;
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
  for (size_t v = 0; v < m_msix_irqfd.size(); ++v)
    if (m_msix_irqfd[v]) m_msi->unbind_eventfd(m_msix_events[v]);
  if (m_msix_enabled) (void)m_device->set_irq_eventfds(passthrough::kVfioIrqMsix, {});
  disable_intx_locked();
  m_device->unmap_all_dma();
  (void)m_device->reset();
  if (m_msi_event >= 0) ::close(m_msi_event);
  if (m_stop_event >= 0) ::close(m_stop_event);
  for (int fd : m_msix_events) ::close(fd);
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
  // MSI-X: only the control word's enable and function mask are writable.
  const unsigned msix_control = m_msix_cap + kMsiControl;
  if (m_msix_cap && offset < msix_control + 2 && end > msix_control) update_msix(std::nullopt);
}

void VfioPciFunction::update_msix(std::optional<unsigned> changed) {
  std::lock_guard guard(m_msi_lock);
  const uint16_t control = static_cast<uint16_t>(read_raw(m_msix_cap + kMsiControl, 2));
  const bool enable = control & kMsixEnable;
  m_msix->set_control(enable, control & kMsixFunctionMask);
  if (enable != m_msix_enabled) {
    if (!enable) {
      for (unsigned v = 0; v < m_msix_irqfd.size(); ++v)
        if (m_msix_irqfd[v]) m_msi->unbind_eventfd(m_msix_events[v]);
      m_msix_irqfd.assign(m_msix_irqfd.size(), 0);
      (void)m_device->set_irq_eventfds(passthrough::kVfioIrqMsix, {});
      m_msix_enabled = false;
      if (!m_msi_enabled) (void)enable_intx_locked();
      return;
    }
    // VFIO has one interrupt type at a time: INTx goes while MSI-X is on (and MSI must be off, as
    // the spec asks of the guest; VFIO refuses otherwise).
    disable_intx_locked();
    auto done = m_device->set_irq_eventfds(passthrough::kVfioIrqMsix, m_msix_events);
    if (!done.ok()) {
      // The guest's own device stops interrupting; the VMM goes on.
      std::fprintf(stderr, "vmlaunch: %s: MSI-X enable: %s\n", name().c_str(), done.error().message.c_str());
      if (!m_msi_enabled) (void)enable_intx_locked();
      return;
    }
    m_msix_enabled = true;
    changed.reset();  // every vector's binding follows
  }
  if (!m_msix_enabled) return;
  if (changed) {
    bind_msix_vector_locked(*changed);
  } else {
    for (unsigned v = 0; v < m_msix_events.size(); ++v) bind_msix_vector_locked(v);
  }
  // What fired while masked goes out now that it is not (the forwarder set those pending bits).
  for (const auto& [vector, message] : m_msix->take_deliverable())
    m_msi->signal(message.address, message.data);
}

void VfioPciFunction::bind_msix_vector_locked(unsigned vector) {
  if (vector >= m_msix_events.size()) return;  // a table entry VFIO has no vector for
  const int fd = m_msix_events[vector];
  if (m_msix->deliverable(vector)) {
    // Bound (or re-aimed) to the vector's message: a signal left in the eventfd while it was
    // masked is delivered by KVM as it binds. False: the forwarder sends it instead.
    MsixTable::Message m = m_msix->message(vector);
    m_msix_irqfd[vector] = m_msi->bind_eventfd(fd, m.address, m.data);
  } else if (m_msix_irqfd[vector]) {
    // Masked: VFIO still signals the eventfd, and the forwarder turns that into the pending bit.
    m_msi->unbind_eventfd(fd);
    m_msix_irqfd[vector] = 0;
  }
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
    if (!m_msi_enabled && !m_msix_enabled) (void)enable_intx_locked();
    return;
  }
  m_msi_enabled = enable;
  if (enable) m_msi_irqfd = m_msi->bind_eventfd(m_msi_event, address, data);
  if (!enable && !m_msix_enabled) (void)enable_intx_locked();
}

void VfioPciFunction::forward_msi() {
  // The stop eventfd, MSI's (-1 if none: poll skips it), then one a MSI-X vector.
  std::vector<pollfd> fds = {{m_stop_event, POLLIN, 0}, {m_msi_event, POLLIN, 0}};
  for (int fd : m_msix_events) fds.push_back({fd, POLLIN, 0});
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
    if (fds[0].revents) return;
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      // Under the lock, so that a vector the guest unmasks meanwhile either finds its pending bit
      // set or its signal still in the eventfd (which KVM delivers as it binds).
      std::lock_guard guard(m_msi_lock);
      uint64_t count = 0;
      if (::read(fds[i].fd, &count, sizeof count) != sizeof count) continue;  // KVM took it
      // Not bound (masked: the pending bit; or no irqfd on this machine), or read before KVM did.
      if (auto message = m_msix->fire(static_cast<unsigned>(i - 2))) {
        m_msi_count.fetch_add(1, std::memory_order_relaxed);
        m_msi->signal(message->address, message->data);
      }
    }
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
