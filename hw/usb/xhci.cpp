#include "hw/usb/xhci.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace hw::usb {
namespace {

// Register block offsets (as qemu-xhci).
constexpr uint64_t kCapLength = 0x40, kOperational = 0x40, kPortBase = 0x440, kRuntime = 0x1000,
                   kDoorbells = 0x2000;
constexpr uint32_t kInterrupterOffset = 0x20;  // interrupter 0 inside the runtime block
constexpr unsigned kErstMaxLog2 = 3;           // up to 8 event ring segments

// USBCMD / USBSTS.
constexpr uint32_t kCmdRun = 1u << 0, kCmdReset = 1u << 1, kCmdInterruptEnable = 1u << 2,
                   kCmdHostErrorEnable = 1u << 3;
constexpr uint32_t kStsHalted = 1u << 0, kStsHostError = 1u << 2, kStsEventInterrupt = 1u << 3,
                   kStsPortChange = 1u << 4, kStsSaveRestoreError = 1u << 10;
// CRCR.
constexpr uint64_t kCrcrCycle = 1, kCrcrStop = 2, kCrcrAbort = 4, kCrcrRunning = 8;
// IMAN / ERDP.
constexpr uint32_t kImanPending = 1, kImanEnable = 2;
constexpr uint64_t kErdpBusy = 8;

// PORTSC.
constexpr uint32_t kPortConnected = 1u << 0, kPortEnabled = 1u << 1, kPortReset = 1u << 4,
                   kPortPower = 1u << 9, kPortLinkWrite = 1u << 16, kPortWarmReset = 1u << 31;
constexpr uint32_t kPortLinkShift = 5, kPortLinkMask = 0xfu << kPortLinkShift, kPortSpeedShift = 10;
constexpr uint32_t kPortConnectChange = 1u << 17, kPortEnableChange = 1u << 18,
                   kPortWarmResetChange = 1u << 19, kPortResetChange = 1u << 21, kPortLinkChange = 1u << 22;
constexpr uint32_t kPortChangeBits = 0x00fe0000;  // CSC PEC WRC OCC PRC PLC CEC (write 1 to clear)
constexpr uint32_t kPortWakeBits = 0x0e000000;    // WCE WDE WOE
constexpr uint32_t kLinkU0 = 0, kLinkU3 = 3, kLinkRxDetect = 5, kLinkPolling = 7, kLinkResume = 15;

// TRB types.
enum : unsigned {
  kTrbNormal = 1,
  kTrbSetup = 2,
  kTrbData = 3,
  kTrbStatus = 4,
  kTrbIsoch = 5,
  kTrbLink = 6,
  kTrbEventData = 7,
  kTrbNoOp = 8,
  kCmdEnableSlot = 9,
  kCmdDisableSlot = 10,
  kCmdAddressDevice = 11,
  kCmdConfigureEndpoint = 12,
  kCmdEvaluateContext = 13,
  kCmdResetEndpoint = 14,
  kCmdStopEndpoint = 15,
  kCmdSetDequeue = 16,
  kCmdResetDevice = 17,
  kCmdNoOp = 23,
  kEventTransfer = 32,
  kEventCommandCompletion = 33,
  kEventPortStatusChange = 34,
};
// TRB control bits.
constexpr uint32_t kTrbCycle = 1u << 0, kTrbToggleCycle = 1u << 1, kTrbShortOk = 1u << 2, kTrbChain = 1u << 4,
                   kTrbIoc = 1u << 5, kTrbImmediate = 1u << 6, kTrbBsr = 1u << 9, kEventData = 1u << 2;

// Completion codes.
enum : unsigned {
  kSuccess = 1,
  kDataBufferError = 2,
  kBabble = 3,
  kTransactionError = 4,
  kTrbError = 5,
  kStall = 6,
  kResourceError = 7,
  kNoSlots = 9,
  kSlotNotEnabled = 11,
  kEndpointNotEnabled = 12,
  kShortPacket = 13,
  kParameterError = 17,
  kContextStateError = 19,
  kStopped = 26,
};

// Endpoint context EP State.
enum : uint8_t { kEpDisabled = 0, kEpRunning = 1, kEpHalted = 2, kEpStopped = 3, kEpError = 4 };
// Slot context Slot State.
enum : unsigned { kSlotEnabled = 0, kSlotDefault = 1, kSlotAddressed = 2, kSlotConfigured = 3 };

constexpr unsigned kContextSize = 32;  // HCCPARAMS1.CSZ = 0
// Bounds on what one guest request may make us walk or buffer.
constexpr unsigned kMaxTrbsPerTd = 1024;       // TRBs, link TRBs included
constexpr size_t kMaxTdBytes = 4u << 20;       // a TD's data
constexpr unsigned kMaxCommandsPerRing = 256;  // per doorbell; the rest on the next one
constexpr unsigned kMaxTdsPerRing = 256;

uint32_t link_state(uint32_t portsc) {
  return (portsc & kPortLinkMask) >> kPortLinkShift;
}
uint32_t with_link_state(uint32_t portsc, uint32_t state) {
  return (portsc & ~kPortLinkMask) | (state << kPortLinkShift);
}

}  // namespace

Xhci::Xhci(std::string name, const base::GuestMemory& memory, InterruptFn interrupt)
    : m_name(std::move(name)), m_memory(memory), m_interrupt(std::move(interrupt)) {
  for (unsigned p = 1; p <= kPorts; ++p) m_ports[p].usb3 = p > kPortsPerProtocol;
  reset_controller();
}

Xhci::~Xhci() {
  // Devices may still complete transfers: they find this object gone through the weak pointer.
  for (unsigned s = 1; s <= kMaxSlots; ++s)
    for (unsigned d = 1; d < 32; ++d)
      if (m_slots[s].endpoints[d].in_flight && m_slots[s].port)
        if (auto& device = m_ports[m_slots[s].port].device) device->cancel(m_slots[s].endpoints[d].address);
}

base::ErrorOr<void> Xhci::attach(unsigned port, std::shared_ptr<UsbDevice> device) {
  if (port < 1 || port > kPortsPerProtocol)
    return base::fail(base::Error("xHCI port " + std::to_string(port) + " out of range (1-" +
                                  std::to_string(kPortsPerProtocol) + ")"));
  const unsigned index = device->speed() == Speed::Super ? port + kPortsPerProtocol : port;
  std::lock_guard guard(m_lock);
  if (m_ports[port].device || m_ports[port + kPortsPerProtocol].device)
    return base::fail(base::Error("xHCI port " + std::to_string(port) + " is taken"));
  m_ports[index].device = device;
  std::weak_ptr<Xhci> self = weak_from_this();
  device->set_presence_listener([self, index](bool present) {
    if (auto xhci = self.lock()) xhci->device_presence(index, present);
  });
  m_ports[index].present = true;
  reset_port(index, false);  // connect state
  m_ports[index].portsc &= ~kPortChangeBits;
  m_ports[index].portsc |= kPortConnectChange;
  return {};
}

void Xhci::shutdown() {
  std::lock_guard guard(m_lock);
  m_shutdown = true;
  for (unsigned s = 1; s <= kMaxSlots; ++s)
    for (unsigned d = 1; d < 32; ++d) disable_endpoint(s, d);
}

bool Xhci::halted() const {
  std::lock_guard guard(m_lock);
  return m_usbsts & kStsHalted;
}

bool Xhci::host_system_error() const {
  std::lock_guard guard(m_lock);
  return m_usbsts & kStsHostError;
}

// ---------------------------------------------------------------------------------------------
// Registers

void Xhci::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard guard(m_lock);
  for (size_t i = 0; i < data.size();) {
    const uint64_t at = offset + i;
    const uint32_t dword = read_dword(at & ~3ull);
    const size_t skip = at & 3, n = std::min<size_t>(4 - skip, data.size() - i);
    for (size_t k = 0; k < n; ++k) data[i + k] = static_cast<uint8_t>(dword >> (8 * (skip + k)));
    i += n;
  }
}

void Xhci::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard guard(m_lock);
  // Dword and qword accesses (low half first, as lo_hi_writeq); narrower writes to these registers
  // are not something drivers do: ignored.
  if ((offset & 3) || (data.size() & 3)) return;
  for (size_t i = 0; i < data.size(); i += 4) {
    uint32_t value = 0;
    std::memcpy(&value, data.data() + i, 4);
    write_dword(offset + i, value);
  }
}

uint32_t Xhci::read_dword(uint64_t offset) {
  if (offset < kCapLength) {
    switch (offset) {
      case 0x00:
        return 0x01000000 | kCapLength;  // HCIVERSION 1.0, CAPLENGTH
      case 0x04:
        return (kPorts << 24) | (1u << 8) | kMaxSlots;  // MaxPorts, MaxIntrs 1, MaxSlots
      case 0x08:
        return (kErstMaxLog2 << 4) | 0xf;  // ERST Max, IST; no scratchpad buffers
      case 0x10:
        return (0x8u << 16) | 1;  // xECP at 0x20, 64-bit addressing
      case 0x14:
        return kDoorbells;
      case 0x18:
        return kRuntime;
      // Supported Protocol capabilities: USB 2.0 on ports 1-4, USB 3.0 on ports 5-8.
      case 0x20:
        return 0x02000402;
      case 0x24:
        return 0x20425355;  // "USB "
      case 0x28:
        return (kPortsPerProtocol << 8) | 1;
      case 0x30:
        return 0x03000002;
      case 0x34:
        return 0x20425355;
      case 0x38:
        return (kPortsPerProtocol << 8) | (kPortsPerProtocol + 1);
      default:
        return 0;
    }
  }
  if (offset >= kPortBase && offset < kPortBase + 0x10 * kPorts) {
    const unsigned port = static_cast<unsigned>((offset - kPortBase) / 0x10) + 1;
    if ((offset & 0xf) != 0) return 0;  // PORTPMSC, PORTLI, PORTHLPMC
    return m_ports[port].portsc;
  }
  if (offset >= kOperational && offset < kOperational + 0x400) {
    switch (offset - kOperational) {
      case 0x00:
        return m_usbcmd;
      case 0x04:
        return m_usbsts;
      case 0x08:
        return 1;  // 4 KiB pages
      case 0x14:
        return m_dnctrl;
      case 0x18:
        return m_command_running ? static_cast<uint32_t>(kCrcrRunning) : 0;  // the pointer reads as 0
      case 0x1c:
        return 0;
      case 0x30:
        return static_cast<uint32_t>(m_dcbaap);
      case 0x34:
        return static_cast<uint32_t>(m_dcbaap >> 32);
      case 0x38:
        return m_config;
      default:
        return 0;
    }
  }
  if (offset >= kRuntime && offset < kRuntime + 0x1000) {
    const uint64_t r = offset - kRuntime;
    if (r == 0) {
      // MFINDEX: 125 us microframes since start, 14 bits.
      auto ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - m_start);
      return static_cast<uint32_t>(ns.count() / 125000) & 0x3fff;
    }
    switch (r) {
      case kInterrupterOffset + 0x00:
        return m_iman;
      case kInterrupterOffset + 0x04:
        return m_imod;
      case kInterrupterOffset + 0x08:
        return m_erstsz;
      case kInterrupterOffset + 0x10:
        return static_cast<uint32_t>(m_erstba);
      case kInterrupterOffset + 0x14:
        return static_cast<uint32_t>(m_erstba >> 32);
      case kInterrupterOffset + 0x18:
        return static_cast<uint32_t>(m_erdp);
      case kInterrupterOffset + 0x1c:
        return static_cast<uint32_t>(m_erdp >> 32);
      default:
        return 0;
    }
  }
  return 0;  // doorbells read as 0
}

void Xhci::write_dword(uint64_t offset, uint32_t value) {
  if (offset < kCapLength) return;
  if (offset >= kPortBase && offset < kPortBase + 0x10 * kPorts) {
    if ((offset & 0xf) == 0) write_port(static_cast<unsigned>((offset - kPortBase) / 0x10) + 1, value);
    return;
  }
  if (offset >= kOperational && offset < kOperational + 0x400)
    return write_operational(offset - kOperational, value);
  if (offset >= kRuntime && offset < kRuntime + 0x1000) return write_runtime(offset - kRuntime, value);
  if (offset >= kDoorbells && offset < kDoorbells + 4 * (kMaxSlots + 1))
    return ring_doorbell(static_cast<unsigned>((offset - kDoorbells) / 4), value & 0xff);
}

void Xhci::write_operational(uint64_t offset, uint32_t value) {
  switch (offset) {
    case 0x00: {  // USBCMD
      if (value & kCmdReset) {
        reset_controller();
        return;
      }
      const bool was_running = m_usbcmd & kCmdRun;
      m_usbcmd = value & (kCmdRun | kCmdInterruptEnable | kCmdHostErrorEnable | (1u << 7) | (1u << 10));
      if ((m_usbcmd & kCmdRun) && !was_running) {
        if (!(m_usbsts & kStsHostError)) m_usbsts &= ~kStsHalted;
      } else if (!(m_usbcmd & kCmdRun)) {
        m_usbsts |= kStsHalted;
        m_command_running = false;
      }
      if (value & (1u << 9)) m_usbsts |= kStsSaveRestoreError;  // Controller Restore: no saved state
      update_interrupt();
      return;
    }
    case 0x04:  // USBSTS: HSE, EINT, PCD, SRE are write-1-to-clear
      m_usbsts &= ~(value & (kStsHostError | kStsEventInterrupt | kStsPortChange | kStsSaveRestoreError));
      update_interrupt();
      return;
    case 0x14:
      m_dnctrl = value & 0xffff;
      return;
    case 0x18:  // CRCR low
      if (m_command_running) {
        // Stop or Abort: the ring stops after the current command, which here is always at once.
        if (value & (kCrcrStop | kCrcrAbort)) {
          m_command_running = false;
          post_event(m_command_ring.dequeue, 24u << 24, (kEventCommandCompletion << 10));  // Ring Stopped
        }
        return;
      }
      m_crcr = (m_crcr & ~0xffffffffull) | (value & ~0x3full) | (value & kCrcrCycle);
      m_command_ring = {m_crcr & ~0x3full, (m_crcr & kCrcrCycle) != 0};
      return;
    case 0x1c:  // CRCR high
      if (m_command_running) return;
      m_crcr = (m_crcr & 0xffffffffull) | (static_cast<uint64_t>(value) << 32);
      m_command_ring.dequeue = m_crcr & ~0x3full;
      return;
    case 0x30:
      m_dcbaap = (m_dcbaap & ~0xffffffffull) | (value & ~0x3fu);
      return;
    case 0x34:
      m_dcbaap = (m_dcbaap & 0xffffffffull) | (static_cast<uint64_t>(value) << 32);
      return;
    case 0x38:
      m_config = std::min<uint32_t>(value & 0xff, kMaxSlots);
      return;
    default:
      return;
  }
}

void Xhci::write_runtime(uint64_t offset, uint32_t value) {
  switch (offset) {
    case kInterrupterOffset + 0x00:
      if (value & kImanPending) m_iman &= ~kImanPending;
      m_iman = (m_iman & ~kImanEnable) | (value & kImanEnable);
      update_interrupt();
      return;
    case kInterrupterOffset + 0x04:
      m_imod = value;
      return;
    case kInterrupterOffset + 0x08:
      m_erstsz = value & 0xffff;
      return;
    case kInterrupterOffset + 0x10:
      m_erstba = (m_erstba & ~0xffffffffull) | (value & ~0x3fu);
      return;
    case kInterrupterOffset + 0x14:
      // Writing the high half (the last one a driver writes) starts the event ring.
      m_erstba = (m_erstba & 0xffffffffull) | (static_cast<uint64_t>(value) << 32);
      start_event_ring();
      return;
    case kInterrupterOffset + 0x18: {
      uint64_t busy = (m_erdp & kErdpBusy) && !(value & kErdpBusy) ? kErdpBusy : 0;
      m_erdp = (m_erdp & ~0xffffffffull) | (value & ~0xfu) | busy;
      m_er_full = false;  // the consumer moved: there may be room again
      // Events the driver has not consumed yet: interrupt again, so none is left waiting.
      if (!m_segments.empty()) {
        const Segment& s = m_segments[m_er_segment];
        if ((m_erdp & ~0xfull) != s.base + 16ull * m_er_index) {
          m_iman |= kImanPending;
          m_erdp |= kErdpBusy;
        }
      }
      update_interrupt();
      return;
    }
    case kInterrupterOffset + 0x1c:
      m_erdp = (m_erdp & 0xffffffffull) | (static_cast<uint64_t>(value) << 32);
      return;
    default:
      return;
  }
}

void Xhci::reset_controller() {
  for (unsigned s = 1; s <= kMaxSlots; ++s)
    if (m_slots[s].enabled) (void)disable_slot(s);
  m_usbcmd = 0;
  m_usbsts = kStsHalted;
  m_dnctrl = m_config = 0;
  m_crcr = m_dcbaap = 0;
  m_command_ring = {};
  m_command_running = false;
  m_iman = m_imod = m_erstsz = 0;
  m_erstba = m_erdp = 0;
  m_segments.clear();
  m_er_segment = m_er_index = 0;
  m_er_cycle = true;
  m_er_full = false;
  for (unsigned p = 1; p <= kPorts; ++p) {
    Port& port = m_ports[p];
    port.portsc = kPortPower | with_link_state(0, kLinkRxDetect);
    if (port.device && port.present) {
      port.portsc = kPortPower | kPortConnected | kPortConnectChange |
                    (static_cast<uint32_t>(port.device->speed()) << kPortSpeedShift);
      port.portsc = with_link_state(port.portsc, port.usb3 ? kLinkU0 : kLinkPolling);
      if (port.usb3) port.portsc |= kPortEnabled;
    }
  }
  if (m_interrupt_level) {
    m_interrupt_level = false;
    (void)m_interrupt(false);
  }
}

void Xhci::write_port(unsigned port, uint32_t value) {
  Port& p = m_ports[port];
  uint32_t portsc = p.portsc;
  portsc &= ~(value & kPortChangeBits);
  // PED: writing 1 disables the port (USB 2); the enable comes only from a reset.
  if ((value & kPortEnabled) && !p.usb3 && (portsc & kPortEnabled)) {
    portsc &= ~kPortEnabled;
  }
  portsc = (portsc & ~kPortWakeBits) | (value & kPortWakeBits);
  if ((value & kPortLinkWrite) && (portsc & kPortConnected)) {
    const uint32_t state = (value & kPortLinkMask) >> kPortLinkShift;
    if (state == kLinkU0 || state == kLinkU3) {
      const bool resumed = link_state(portsc) == kLinkU3 && state == kLinkU0;
      portsc = with_link_state(portsc, state);
      if (resumed) portsc |= kPortLinkChange;
    } else if (state == kLinkResume) {
      portsc = with_link_state(portsc, kLinkU0) | kPortLinkChange;
    }
  }
  p.portsc = portsc;
  if (value & (kPortReset | (p.usb3 ? kPortWarmReset : 0))) {
    reset_port(port, (value & kPortWarmReset) && p.usb3);
    port_changed(port);
  } else if (portsc & kPortLinkChange) {
    port_changed(port);
  }
}

// A port reset (or the state after connect, for attach): the device is reset, USB 2 ports become
// enabled in U0 (USB 3 ones are after link training already).
void Xhci::reset_port(unsigned port, bool warm) {
  Port& p = m_ports[port];
  uint32_t portsc = (p.portsc & (kPortPower | kPortWakeBits | kPortChangeBits)) | kPortPower;
  if (p.device && p.present) {
    p.device->reset();
    portsc |= kPortConnected | kPortEnabled | (static_cast<uint32_t>(p.device->speed()) << kPortSpeedShift);
    portsc = with_link_state(portsc, kLinkU0);
    portsc |= kPortResetChange | (warm ? kPortWarmResetChange : 0);
  } else {
    portsc = with_link_state(portsc, kLinkRxDetect);
  }
  p.portsc = portsc;
}

void Xhci::port_changed(unsigned port) {
  if (!(m_ports[port].portsc & kPortChangeBits)) return;
  m_usbsts |= kStsPortChange;
  post_event(static_cast<uint64_t>(port) << 24, kSuccess << 24, kEventPortStatusChange << 10);
}

void Xhci::device_presence(unsigned port, bool present) {
  std::lock_guard guard(m_lock);
  if (m_shutdown) return;
  Port& p = m_ports[port];
  if (!p.device || p.present == present) return;
  p.present = present;
  if (present) {
    p.portsc = (p.portsc & ~kPortLinkMask) | kPortConnected | kPortConnectChange |
               (static_cast<uint32_t>(p.device->speed()) << kPortSpeedShift);
    p.portsc = with_link_state(p.portsc, p.usb3 ? kLinkU0 : kLinkPolling);
    if (p.usb3) p.portsc |= kPortEnabled;
  } else {
    // Gone: the guest sees the disconnect; transfers to it fail as the slot's endpoints do.
    const bool was_enabled = p.portsc & kPortEnabled;
    p.portsc &= ~(kPortConnected | kPortEnabled | (0xfu << kPortSpeedShift));
    p.portsc =
        with_link_state(p.portsc, kLinkRxDetect) | kPortConnectChange | (was_enabled ? kPortEnableChange : 0);
  }
  port_changed(port);
}

// ---------------------------------------------------------------------------------------------
// Event ring, interrupt

bool Xhci::running() const {
  return (m_usbcmd & kCmdRun) && !(m_usbsts & kStsHalted);
}

void Xhci::host_error() {
  m_usbsts |= kStsHostError | kStsHalted;
  m_usbcmd &= ~kCmdRun;
  m_command_running = false;
  update_interrupt();
}

void Xhci::start_event_ring() {
  m_segments.clear();
  m_er_segment = m_er_index = 0;
  m_er_cycle = true;
  m_er_full = false;
  const uint32_t count = std::min<uint32_t>(m_erstsz, 1u << kErstMaxLog2);
  for (uint32_t i = 0; i < count; ++i) {
    auto base = m_memory.read_le<uint64_t>(m_erstba + 16ull * i);
    auto size = m_memory.read_le<uint32_t>(m_erstba + 16ull * i + 8);
    if (!base || !size) return host_error();
    const uint32_t trbs = *size & 0xffff;
    if (trbs < 16 || trbs > 4096) {
      m_segments.clear();  // the driver broke its own event ring: no events until it fixes it
      return;
    }
    m_segments.push_back({*base & ~0x3full, trbs});
  }
}

void Xhci::post_event(uint64_t parameter, uint32_t status, uint32_t control) {
  if (!running() || m_segments.empty() || m_er_full) return;
  Segment* seg = &m_segments[m_er_segment];
  // Full when the slot after this one is where the consumer is: keep one free (the spec's rule),
  // and drop events until the driver moves its dequeue pointer.
  unsigned next_segment = m_er_segment, next_index = m_er_index + 1;
  if (next_index >= seg->size) {
    next_index = 0;
    next_segment = (m_er_segment + 1) % static_cast<unsigned>(m_segments.size());
  }
  const uint64_t next = m_segments[next_segment].base + 16ull * next_index;
  if (next == (m_erdp & ~0xfull)) {
    m_er_full = true;
    return;
  }
  const uint64_t at = seg->base + 16ull * m_er_index;
  uint8_t bytes[12];
  std::memcpy(bytes, &parameter, 8);
  std::memcpy(bytes + 8, &status, 4);
  if (!m_memory.write(at, bytes)) return host_error();
  // The control dword (with the cycle bit) last: the driver must not see a half-written event.
  std::atomic_thread_fence(std::memory_order_release);
  if (!m_memory.write_le<uint32_t>(at + 12, (control & ~kTrbCycle) | (m_er_cycle ? kTrbCycle : 0)))
    return host_error();
  m_er_index = next_index;
  if (next_segment != m_er_segment || next_index == 0) {
    if (next_segment == 0) m_er_cycle = !m_er_cycle;
    m_er_segment = next_segment;
  }
  m_iman |= kImanPending;
  m_erdp |= kErdpBusy;
  m_usbsts |= kStsEventInterrupt;
  update_interrupt();
}

void Xhci::update_interrupt() {
  const bool level = (m_iman & kImanPending) && (m_iman & kImanEnable) && (m_usbcmd & kCmdInterruptEnable);
  if (level == m_interrupt_level) return;
  m_interrupt_level = level;
  if (m_interrupt(level) && level) {
    // Sent as a message: IP clears once it is out (xHCI 1.2, 5.5.2.1). The next event sets it again
    // and sends the next message; a driver on MSI never clears IP, so without this the first MSI
    // would be the last.
    m_iman &= ~kImanPending;
    m_interrupt_level = false;
  }
}

bool Xhci::read_trb(uint64_t address, Trb& trb) {
  uint8_t bytes[16];
  if (!m_memory.read(address, bytes)) {
    host_error();
    return false;
  }
  std::memcpy(&trb.parameter, bytes, 8);
  std::memcpy(&trb.status, bytes + 8, 4);
  std::memcpy(&trb.control, bytes + 12, 4);
  trb.address = address;
  return true;
}

std::optional<uint32_t> Xhci::read32(uint64_t address) {
  auto value = m_memory.read_le<uint32_t>(address);
  if (!value) host_error();
  return value;
}

bool Xhci::write32(uint64_t address, uint32_t value) {
  if (m_memory.write_le<uint32_t>(address, value)) return true;
  host_error();
  return false;
}

// ---------------------------------------------------------------------------------------------
// Command ring

void Xhci::ring_doorbell(unsigned slot, unsigned target) {
  if (!running()) return;
  if (slot == 0) {
    if (target == 0) run_commands();
    return;
  }
  if (slot > kMaxSlots || target < 1 || target > 31 || !m_slots[slot].enabled) return;
  Endpoint& ep = m_slots[slot].endpoints[target];
  if (!ep.enabled) return;
  if (ep.state == kEpStopped) ep.state = kEpRunning;  // a doorbell restarts a stopped endpoint
  if (ep.state != kEpRunning) return;
  (void)set_endpoint_state(slot, target);
  run_endpoint(slot, target);
}

void Xhci::run_commands() {
  m_command_running = true;
  unsigned links = 0;
  for (unsigned done = 0; done < kMaxCommandsPerRing && running() && m_command_running;) {
    Trb trb;
    if (!read_trb(m_command_ring.dequeue, trb)) return;
    if (((trb.control & kTrbCycle) != 0) != m_command_ring.cycle) break;  // ring empty
    if (trb.type() == kTrbLink) {
      if (++links > kMaxCommandsPerRing) break;  // links pointing at links: stop walking
      if (trb.control & kTrbToggleCycle) m_command_ring.cycle = !m_command_ring.cycle;
      m_command_ring.dequeue = trb.parameter & ~0xfull;
      continue;
    }
    m_command_ring.dequeue += 16;
    unsigned slot = 0;
    const unsigned code = command(trb, slot);
    complete_command(trb, code, slot);
    ++done;
  }
}

void Xhci::complete_command(const Trb& command, unsigned code, unsigned slot) {
  post_event(command.address, code << 24, (kEventCommandCompletion << 10) | (slot << 24));
}

unsigned Xhci::command(const Trb& trb, unsigned& slot_out) {
  const unsigned slot = trb.control >> 24;
  const unsigned dci = (trb.control >> 16) & 0x1f;
  slot_out = slot;
  const unsigned type = trb.type();
  if (type == kCmdEnableSlot) return enable_slot(slot_out);
  if (type == kCmdNoOp) {
    slot_out = 0;
    return kSuccess;
  }
  if (type < kCmdDisableSlot || type > kCmdResetDevice) {
    slot_out = 0;
    return kTrbError;
  }
  if (slot < 1 || slot > kMaxSlots || !m_slots[slot].enabled) return kSlotNotEnabled;
  switch (type) {
    case kCmdDisableSlot:
      return disable_slot(slot);
    case kCmdAddressDevice:
      return address_device(slot, trb.parameter & ~0xfull, trb.control & kTrbBsr);
    case kCmdConfigureEndpoint:
      return configure_endpoint(slot, trb.parameter & ~0xfull, trb.control & kTrbBsr);
    case kCmdEvaluateContext:
      return evaluate_context(slot, trb.parameter & ~0xfull);
    case kCmdResetEndpoint:
      return reset_endpoint(slot, dci);
    case kCmdStopEndpoint:
      return stop_endpoint(slot, dci);
    case kCmdSetDequeue:
      return set_dequeue(slot, dci, trb.parameter);
    case kCmdResetDevice:
      return reset_device(slot);
    default:
      return kTrbError;
  }
}

unsigned Xhci::enable_slot(unsigned& slot_out) {
  const unsigned limit = std::min<unsigned>(m_config & 0xff, kMaxSlots);
  for (unsigned s = 1; s <= limit; ++s) {
    if (m_slots[s].enabled) continue;
    m_slots[s] = Slot{};
    m_slots[s].enabled = true;
    slot_out = s;
    return kSuccess;
  }
  slot_out = 0;
  return kNoSlots;
}

unsigned Xhci::disable_slot(unsigned slot) {
  for (unsigned d = 1; d < 32; ++d) disable_endpoint(slot, d);
  m_slots[slot] = Slot{};
  return kSuccess;
}

std::optional<uint64_t> Xhci::device_context(unsigned slot) {
  auto context = m_memory.read_le<uint64_t>(m_dcbaap + 8ull * slot);
  if (!context) {
    host_error();
    return std::nullopt;
  }
  return *context & ~0x3full;
}

bool Xhci::set_slot_state(unsigned slot, unsigned state, unsigned address) {
  auto out = device_context(slot);
  if (!out) return false;
  auto dword3 = read32(*out + 12);
  if (!dword3) return false;
  return write32(*out + 12, (*dword3 & 0x07ffff00) | (state << 27) | (address & 0xff));
}

// The output endpoint context follows our state: EP State and the TR dequeue pointer.
bool Xhci::set_endpoint_state(unsigned slot, unsigned dci) {
  const Endpoint& ep = m_slots[slot].endpoints[dci];
  auto out = device_context(slot);
  if (!out) return false;
  const uint64_t at = *out + kContextSize * dci;
  auto dword0 = read32(at);
  if (!dword0) return false;
  if (!write32(at, (*dword0 & ~7u) | ep.state)) return false;
  const uint64_t dequeue = ep.ring.dequeue | (ep.ring.cycle ? 1 : 0);
  return write32(at + 8, static_cast<uint32_t>(dequeue)) &&
         write32(at + 12, static_cast<uint32_t>(dequeue >> 32));
}

// Endpoint `dci` from the input context (at input + 32 * (dci + 1)): copied to the output context,
// and our ring state from its TR dequeue pointer.
bool Xhci::enable_endpoint(unsigned slot, unsigned dci, uint64_t input) {
  auto out = device_context(slot);
  if (!out) return false;
  uint8_t context[kContextSize];
  if (!m_memory.read(input + kContextSize * (dci + 1), context)) {
    host_error();
    return false;
  }
  uint32_t dword1 = 0;
  uint64_t dequeue = 0;
  std::memcpy(&dword1, context + 4, 4);
  std::memcpy(&dequeue, context + 8, 8);
  disable_endpoint(slot, dci);
  Endpoint& ep = m_slots[slot].endpoints[dci];
  const unsigned type = (dword1 >> 3) & 7;  // 1-3 OUT isoch/bulk/int, 4 control, 5-7 IN
  static constexpr EndpointType kTypes[8] = {
      EndpointType::Control, EndpointType::Isochronous, EndpointType::Bulk, EndpointType::Interrupt,
      EndpointType::Control, EndpointType::Isochronous, EndpointType::Bulk, EndpointType::Interrupt};
  ep.type = dci == 1 ? EndpointType::Control : kTypes[type];
  ep.address = dci == 1 ? 0 : static_cast<uint8_t>((dci / 2) | (dci & 1 ? 0x80 : 0));
  ep.ring = {dequeue & ~0xfull, (dequeue & 1) != 0};
  ep.enabled = true;
  ep.state = kEpRunning;
  if (!m_memory.write(*out + kContextSize * dci, context)) {
    host_error();
    return false;
  }
  return set_endpoint_state(slot, dci);
}

void Xhci::disable_endpoint(unsigned slot, unsigned dci) {
  Endpoint& ep = m_slots[slot].endpoints[dci];
  if (ep.in_flight && m_slots[slot].port)
    if (auto& device = m_ports[m_slots[slot].port].device) device->cancel(ep.address);
  ep = Endpoint();  // generation 0: no transfer of an earlier life of it is taken
}

unsigned Xhci::address_device(unsigned slot, uint64_t input, bool block_set_address) {
  auto control = m_memory.read_le<uint32_t>(input + 4);  // add flags
  if (!control) {
    host_error();
    return kTrbError;
  }
  if ((*control & 3) != 3) return kParameterError;
  auto slot_dword1 = read32(input + kContextSize + 4);
  if (!slot_dword1) return kTrbError;
  const unsigned port = (*slot_dword1 >> 16) & 0xff;
  if (port < 1 || port > kPorts || !m_ports[port].device || !m_ports[port].present ||
      !(m_ports[port].portsc & kPortEnabled))
    return kTransactionError;  // no device answers there
  for (unsigned s = 1; s <= kMaxSlots; ++s)
    if (s != slot && m_slots[s].enabled && m_slots[s].port == port) return kSlotNotEnabled;
  auto out = device_context(slot);
  if (!out) return kTrbError;
  uint8_t slot_context[kContextSize];
  if (!m_memory.read(input + kContextSize, slot_context)) {
    host_error();
    return kTrbError;
  }
  if (!m_memory.write(*out, slot_context)) {
    host_error();
    return kTrbError;
  }
  m_slots[slot].port = port;
  // The device keeps the address the host's own stack gave it (a forwarded device) or needs none
  // (ours): the guest's SET_ADDRESS is not sent; the slot id stands for the address.
  if (!set_slot_state(slot, block_set_address ? kSlotDefault : kSlotAddressed, block_set_address ? 0 : slot))
    return kTrbError;
  if (!enable_endpoint(slot, 1, input)) return kTrbError;
  return kSuccess;
}

unsigned Xhci::configure_endpoint(unsigned slot, uint64_t input, bool deconfigure) {
  if (!m_slots[slot].port) return kContextStateError;
  if (deconfigure) {
    for (unsigned d = 2; d < 32; ++d) disable_endpoint(slot, d);
    for (unsigned d = 2; d < 32; ++d) {
      auto out = device_context(slot);
      if (!out || !write32(*out + kContextSize * d, 0)) return kTrbError;
    }
    return set_slot_state(slot, kSlotAddressed, slot) ? kSuccess : kTrbError;
  }
  auto drop = read32(input);
  auto add = read32(input + 4);
  if (!drop || !add) return kTrbError;
  for (unsigned d = 2; d < 32; ++d) {
    if (*drop & (1u << d)) {
      disable_endpoint(slot, d);
      auto out = device_context(slot);
      if (!out || !write32(*out + kContextSize * d, 0)) return kTrbError;
    }
  }
  for (unsigned d = 2; d < 32; ++d)
    if ((*add & (1u << d)) && !enable_endpoint(slot, d, input)) return kTrbError;
  // Context Entries from the input slot context.
  if (*add & 1) {
    auto in0 = read32(input + kContextSize);
    auto out = device_context(slot);
    if (!in0 || !out) return kTrbError;
    auto out0 = read32(*out);
    if (!out0 || !write32(*out, (*out0 & 0x07ffffff) | (*in0 & 0xf8000000))) return kTrbError;
  }
  return set_slot_state(slot, kSlotConfigured, slot) ? kSuccess : kTrbError;
}

unsigned Xhci::evaluate_context(unsigned slot, uint64_t input) {
  auto add = read32(input + 4);
  auto out = device_context(slot);
  if (!add || !out) return kTrbError;
  if (*add & 1) {  // slot: Max Exit Latency and Interrupter Target
    auto in1 = read32(input + kContextSize + 4), in2 = read32(input + kContextSize + 8);
    auto out1 = read32(*out + 4), out2 = read32(*out + 8);
    if (!in1 || !in2 || !out1 || !out2) return kTrbError;
    if (!write32(*out + 4, (*out1 & ~0xffffu) | (*in1 & 0xffff)) ||
        !write32(*out + 8, (*out2 & 0x003fffff) | (*in2 & 0xffc00000)))
      return kTrbError;
  }
  if (*add & 2) {  // control endpoint: Max Packet Size
    auto in1 = read32(input + 2 * kContextSize + 4);
    auto out1 = read32(*out + kContextSize + 4);
    if (!in1 || !out1) return kTrbError;
    if (!write32(*out + kContextSize + 4, (*out1 & 0xffff) | (*in1 & 0xffff0000))) return kTrbError;
  }
  return kSuccess;
}

unsigned Xhci::reset_endpoint(unsigned slot, unsigned dci) {
  if (dci < 1 || dci > 31) return kTrbError;
  Endpoint& ep = m_slots[slot].endpoints[dci];
  if (!ep.enabled) return kEndpointNotEnabled;
  if (ep.state != kEpHalted) return kContextStateError;
  ep.state = kEpStopped;
  return set_endpoint_state(slot, dci) ? kSuccess : kTrbError;
}

unsigned Xhci::stop_endpoint(unsigned slot, unsigned dci) {
  if (dci < 1 || dci > 31) return kTrbError;
  Endpoint& ep = m_slots[slot].endpoints[dci];
  if (!ep.enabled) return kEndpointNotEnabled;
  if (ep.in_flight) {
    // The TD in flight stays where it is on the ring (the driver moves past it with Set TR Dequeue
    // if it cancelled it); its completion, when the device sends one, is dropped.
    ep.generation = 0;
    ep.in_flight = false;
    if (m_slots[slot].port)
      if (auto& device = m_ports[m_slots[slot].port].device) device->cancel(ep.address);
    if (!ep.td.empty())
      post_event(ep.td.front().address, kStopped << 24, (kEventTransfer << 10) | (dci << 16) | (slot << 24));
    ep.td.clear();
  }
  if (ep.state == kEpRunning) ep.state = kEpStopped;
  return set_endpoint_state(slot, dci) ? kSuccess : kTrbError;
}

unsigned Xhci::set_dequeue(unsigned slot, unsigned dci, uint64_t pointer) {
  if (dci < 1 || dci > 31) return kTrbError;
  Endpoint& ep = m_slots[slot].endpoints[dci];
  if (!ep.enabled) return kEndpointNotEnabled;
  if (ep.state != kEpStopped && ep.state != kEpError) return kContextStateError;
  ep.ring = {pointer & ~0xfull, (pointer & 1) != 0};
  return set_endpoint_state(slot, dci) ? kSuccess : kTrbError;
}

unsigned Xhci::reset_device(unsigned slot) {
  for (unsigned d = 2; d < 32; ++d) disable_endpoint(slot, d);
  if (const unsigned port = m_slots[slot].port; port && m_ports[port].device && m_ports[port].present)
    m_ports[port].device->reset();
  auto out = device_context(slot);
  if (!out) return kTrbError;
  for (unsigned d = 2; d < 32; ++d)
    if (!write32(*out + kContextSize * d, 0)) return kTrbError;
  return set_slot_state(slot, kSlotDefault, 0) ? kSuccess : kTrbError;
}

// ---------------------------------------------------------------------------------------------
// Transfer rings

Xhci::Gather Xhci::gather_td(Ring& ring, std::vector<Trb>& td) {
  td.clear();
  // A control transfer is one TD from its Setup to its Status stage, chain bits or not.
  bool control = false;
  for (unsigned walked = 0; walked < kMaxTrbsPerTd; ++walked) {
    Trb trb;
    if (!read_trb(ring.dequeue, trb)) return Gather::Bad;
    if (((trb.control & kTrbCycle) != 0) != ring.cycle) return Gather::Incomplete;
    if (trb.type() == kTrbLink) {
      if (trb.control & kTrbToggleCycle) ring.cycle = !ring.cycle;
      ring.dequeue = trb.parameter & ~0xfull;
      continue;
    }
    ring.dequeue += 16;
    td.push_back(trb);
    if (trb.type() == kTrbSetup) control = true;
    if (trb.type() == kTrbStatus) control = false;
    if (!(trb.control & kTrbChain) && !control) return Gather::Complete;
  }
  return Gather::Bad;  // a TD longer than we take, or a loop of link TRBs
}

void Xhci::run_endpoint(unsigned slot, unsigned dci) {
  for (unsigned tds = 0; tds < kMaxTdsPerRing; ++tds) {
    Endpoint& ep = m_slots[slot].endpoints[dci];
    if (!running() || !ep.enabled || ep.state != kEpRunning || ep.in_flight) return;
    Ring ring = ep.ring;
    std::vector<Trb> td;
    const Gather gathered = gather_td(ring, td);
    if (gathered == Gather::Incomplete) return;
    if (gathered == Gather::Bad) {
      if (m_usbsts & kStsHostError) return;
      // Not a TD we can take: report it against where it starts and halt the endpoint.
      post_event(ep.ring.dequeue, kTrbError << 24, (kEventTransfer << 10) | (dci << 16) | (slot << 24));
      ep.state = kEpHalted;
      (void)set_endpoint_state(slot, dci);
      return;
    }
    const unsigned port = m_slots[slot].port;
    std::shared_ptr<UsbDevice> device = port ? m_ports[port].device : nullptr;

    Transfer transfer;
    transfer.type = ep.type;
    transfer.endpoint = ep.address;
    bool in = ep.address & 0x80;
    bool data_trbs = false, bad = false;
    size_t total = 0;
    for (const Trb& trb : td) {
      switch (trb.type()) {
        case kTrbSetup:
          if (ep.type != EndpointType::Control || (trb.status & 0x1ffff) != 8 ||
              !(trb.control & kTrbImmediate)) {
            bad = true;
            break;
          }
          transfer.setup.request_type = static_cast<uint8_t>(trb.parameter);
          transfer.setup.request = static_cast<uint8_t>(trb.parameter >> 8);
          transfer.setup.value = static_cast<uint16_t>(trb.parameter >> 16);
          transfer.setup.index = static_cast<uint16_t>(trb.parameter >> 32);
          transfer.setup.length = static_cast<uint16_t>(trb.parameter >> 48);
          in = transfer.setup.in();
          break;
        case kTrbData:
        case kTrbNormal:
          data_trbs = true;
          total += trb.status & 0x1ffff;
          break;
        case kTrbIsoch:
          bad = true;  // isochronous transfers are not supported
          break;
        default:
          break;  // Status, Event Data, No Op: nothing to move
      }
    }
    if (ep.type == EndpointType::Control && !bad && td.front().type() != kTrbSetup && data_trbs) bad = true;
    if (bad || total > kMaxTdBytes || ep.type == EndpointType::Isochronous) {
      ep.ring = ring;
      report_td(slot, dci, td, 0, kTrbError);
      continue;
    }
    if (ep.type == EndpointType::Control) total = std::min<size_t>(total, transfer.setup.length);
    transfer.data.resize(total);
    if (!in) {
      // Gather the OUT bytes (immediate data: up to 8 bytes in the TRB itself).
      size_t at = 0;
      for (const Trb& trb : td) {
        if (trb.type() != kTrbData && trb.type() != kTrbNormal) continue;
        size_t length = std::min<size_t>(trb.status & 0x1ffff, total - at);
        if (trb.control & kTrbImmediate) {
          length = std::min<size_t>(length, 8);
          std::memcpy(transfer.data.data() + at, &trb.parameter, length);
        } else if (length && !m_memory.read(trb.parameter, {transfer.data.data() + at, length})) {
          return host_error();
        }
        at += length;
      }
    }
    if (!device || !m_ports[port].present) {
      ep.ring = ring;
      report_td(slot, dci, td, 0, kTransactionError);
      ep.state = kEpHalted;
      (void)set_endpoint_state(slot, dci);
      return;
    }
    ep.td = std::move(td);
    ep.after = ring;
    ep.in_flight = true;
    ep.submitting = true;
    const uint64_t generation = ++m_generation;
    ep.generation = generation;
    std::weak_ptr<Xhci> self = weak_from_this();
    device->submit(std::move(transfer), [self, slot, dci, generation](Transfer& t, TransferResult r) {
      if (auto xhci = self.lock()) xhci->transfer_done(slot, dci, generation, t, r);
    });
    Endpoint& after = m_slots[slot].endpoints[dci];
    if (after.generation == generation) after.submitting = false;
    // Completed inside submit(): go on with the next TD here rather than recursing.
  }
}

void Xhci::transfer_done(unsigned slot, unsigned dci, uint64_t generation, Transfer& transfer,
                         TransferResult result) {
  std::lock_guard guard(m_lock);
  if (m_shutdown) return;
  Endpoint& ep = m_slots[slot].endpoints[dci];
  if (!ep.in_flight || ep.generation != generation) return;  // stopped, reset or disabled meanwhile
  ep.in_flight = false;
  std::vector<Trb> td = std::move(ep.td);
  ep.td.clear();
  ep.ring = ep.after;
  if (result.status == TransferResult::Status::Cancelled) return;
  const bool in = transfer.type == EndpointType::Control ? transfer.setup.in() : (transfer.endpoint & 0x80);
  size_t actual = std::min(result.length, transfer.data.size());
  if (in && actual) {
    size_t at = 0;
    for (const Trb& trb : td) {
      if (trb.type() != kTrbData && trb.type() != kTrbNormal) continue;
      if (at >= actual) break;
      const size_t length = std::min<size_t>(trb.status & 0x1ffff, actual - at);
      if (!(trb.control & kTrbImmediate) &&
          !m_memory.write(trb.parameter, {transfer.data.data() + at, length}))
        return host_error();
      at += length;
    }
  }
  unsigned error = 0;
  switch (result.status) {
    case TransferResult::Status::Ok:
    case TransferResult::Status::Cancelled:
      break;
    case TransferResult::Status::Stall:
      error = kStall;
      break;
    case TransferResult::Status::Babble:
      error = kBabble;
      break;
    case TransferResult::Status::Error:
    case TransferResult::Status::Disconnected:
      error = kTransactionError;
      break;
  }
  report_td(slot, dci, td, actual, error);
  if (error) {
    ep.state = kEpHalted;
    (void)set_endpoint_state(slot, dci);
    return;
  }
  if (!ep.submitting) run_endpoint(slot, dci);
}

// Transfer events for a finished TD, as xHCI reports them: one for each TRB with IOC, one for the
// TRB where a short packet ended when it asked (ISP), and on an error one for the TRB where it
// happened; Event Data TRBs report the bytes moved since the last one.
void Xhci::report_td(unsigned slot, unsigned dci, const std::vector<Trb>& td, size_t actual, unsigned error) {
  size_t left = actual;
  uint32_t event_data_length = 0;
  bool reported = false, short_packet = false;
  for (const Trb& trb : td) {
    size_t chunk = 0;
    const unsigned type = trb.type();
    const size_t length = trb.status & 0x1ffff;
    if (type == kTrbSetup) {
      chunk = std::min<size_t>(length, 8);
    } else if (type == kTrbData || type == kTrbNormal || type == kTrbIsoch) {
      chunk = std::min(length, left);
      if (chunk < length && !error) short_packet = true;
      left -= chunk;
      event_data_length += static_cast<uint32_t>(chunk);
    } else if (type == kTrbStatus) {
      reported = false;
      short_packet = false;
    }
    const bool last = &trb == &td.back();
    if (!reported && ((trb.control & kTrbIoc) || (short_packet && (trb.control & kTrbShortOk)) ||
                      (error && (left == 0 || last)))) {
      uint64_t pointer = trb.address;
      uint32_t remaining = static_cast<uint32_t>(length - chunk);
      uint32_t flags = 0;
      if (type == kTrbEventData) {
        pointer = trb.parameter;
        remaining = event_data_length & 0xffffff;
        flags = kEventData;
        event_data_length = 0;
      }
      const unsigned code = error ? error : short_packet ? kShortPacket : kSuccess;
      post_event(pointer, (code << 24) | (remaining & 0xffffff),
                 (kEventTransfer << 10) | flags | (dci << 16) | (slot << 24));
      reported = true;
      if (error) return;
    }
    if (type == kTrbSetup) {
      reported = false;
      short_packet = false;
    }
  }
}

}  // namespace hw::usb
