// An xHCI host controller, register-compatible with QEMU's qemu-xhci (the layout Linux's xhci_hcd
// and firmware expect from it): the MMIO window of BAR 0 and everything behind it. The PCI function
// around it (ids, MSI, INTx) is hw/usb/xhci_pci.cpp; the devices on its ports are UsbDevices.
//
// Layout of the 16 KiB window: capability registers at 0 (with two Supported Protocol capabilities:
// USB 2 ports first, then USB 3 ports), operational registers at 0x40 (port registers at 0x440),
// runtime registers (one interrupter) at 0x1000, doorbells at 0x2000.
// Implemented: the command ring (Enable/Disable Slot, Address Device, Configure Endpoint, Evaluate
// Context, Reset Endpoint, Stop Endpoint, Set TR Dequeue Pointer, Reset Device, No Op), one event
// ring (up to 8 segments), transfer rings with Setup/Data/Status/Normal/Event Data/No Op TRBs for
// control, bulk and interrupt endpoints, port connect/reset/enable and change events.
// Not implemented: isochronous endpoints (their TDs complete with TRB Error), streams, interrupt
// moderation, more than one interrupter, scratchpad buffers (none are requested), snapshots.
//
// Guest input is hostile: every address the guest gives is read through GuestMemory (a failure is a
// Host System Error that halts this controller, as a DMA error halts real hardware), every index is
// range-checked, and ring walks are bounded (a ring of link TRBs pointing at each other ends the
// walk). The guest can break its own controller, never the VMM.
//
// Thread safety: register accesses come from vCPU threads, transfer completions from device threads;
// one (recursive, as devices may complete inside submit()) mutex guards the state.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/guest_memory.h"
#include "base/result.h"
#include "hw/device.h"
#include "hw/usb/usb_device.h"

namespace hw::usb {

class Xhci : public Device, public std::enable_shared_from_this<Xhci> {
 public:
  static constexpr uint64_t kMmioSize = 0x4000;
  static constexpr unsigned kMaxSlots = 64;
  static constexpr unsigned kPortsPerProtocol = 4;  // per USB 2 and USB 3, as qemu-xhci's default
  static constexpr unsigned kPorts = 2 * kPortsPerProtocol;

  // `interrupt(level)`: the interrupter's pending-and-enabled state changed (the PCI function turns
  // a rising edge into an MSI, or drives INTx with the level). It returns true when it sent the
  // assertion as a message (MSI): the controller then clears IMAN.IP itself, as the spec has it
  // (xHCI 1.2, 5.5.2.1), since a driver using MSI does not (Linux clears IP only for INTx).
  using InterruptFn = std::function<bool(bool level)>;
  Xhci(std::string name, const base::GuestMemory& memory, InterruptFn interrupt);
  ~Xhci() override;

  std::string_view name() const override { return m_name; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Plugs `device` into physical port `port` (1..kPortsPerProtocol): its USB 3 port when the device
  // is SuperSpeed, else its USB 2 port (as qemu-xhci numbers them).
  base::ErrorOr<void> attach(unsigned port, std::shared_ptr<UsbDevice> device);

  // The machine is going away: transfers in flight are cancelled and whatever completes from now on
  // is dropped (a device thread must not write into guest memory that is about to be unmapped).
  // Waits for a completion being handled now. Called by the PCI function's destructor.
  void shutdown();

  // For tests and stats.
  bool halted() const;
  bool host_system_error() const;

 private:
  struct Trb {
    uint64_t parameter = 0;
    uint32_t status = 0, control = 0;
    uint64_t address = 0;  // where it was read
    unsigned type() const { return (control >> 10) & 0x3f; }
  };
  struct Ring {
    uint64_t dequeue = 0;
    bool cycle = false;
  };
  struct Endpoint {
    bool enabled = false;
    uint8_t state = 0;  // as the endpoint context's EP State: 0 disabled, 1 running, 2 halted, 3 stopped
    EndpointType type = EndpointType::Control;
    uint8_t address = 0;  // USB endpoint address
    Ring ring;
    bool in_flight = false;
    bool submitting = false;  // inside UsbDevice::submit(): a completion must not recurse
    uint64_t generation = 0;  // identifies the transfer in flight
    std::vector<Trb> td;      // the TD in flight
    Ring after;               // where the ring goes once it completes
  };
  struct Slot {
    bool enabled = false;
    unsigned port = 0;                     // 1-based xHCI port, 0 = none yet
    std::array<Endpoint, 32> endpoints{};  // by DCI; 0 unused
  };
  struct Port {
    std::shared_ptr<UsbDevice> device;
    bool usb3 = false;
    bool present = false;  // device there and not unplugged on the host
    uint32_t portsc = 0;   // stored bits (speed, link state, enables, change bits)
  };

  uint32_t read_dword(uint64_t offset);
  void write_dword(uint64_t offset, uint32_t value);
  void write_operational(uint64_t offset, uint32_t value);
  void write_runtime(uint64_t offset, uint32_t value);
  void write_port(unsigned port, uint32_t value);
  void reset_controller();
  void reset_port(unsigned port, bool warm);
  void port_changed(unsigned port);
  void device_presence(unsigned port, bool present);

  // Event ring and interrupt.
  void post_event(uint64_t parameter, uint32_t status, uint32_t control);
  void update_interrupt();
  void start_event_ring();
  bool running() const;
  void host_error();  // a DMA failure: Host System Error, controller halted

  // Guest memory, with failure a Host System Error.
  bool read_trb(uint64_t address, Trb& trb);
  std::optional<uint32_t> read32(uint64_t address);
  bool write32(uint64_t address, uint32_t value);

  // Command ring.
  void run_commands();
  void complete_command(const Trb& command, unsigned code, unsigned slot = 0);
  unsigned command(const Trb& trb, unsigned& slot_out);
  unsigned enable_slot(unsigned& slot_out);
  unsigned disable_slot(unsigned slot);
  unsigned address_device(unsigned slot, uint64_t input, bool block_set_address);
  unsigned configure_endpoint(unsigned slot, uint64_t input, bool deconfigure);
  unsigned evaluate_context(unsigned slot, uint64_t input);
  unsigned reset_endpoint(unsigned slot, unsigned dci);
  unsigned stop_endpoint(unsigned slot, unsigned dci);
  unsigned set_dequeue(unsigned slot, unsigned dci, uint64_t pointer);
  unsigned reset_device(unsigned slot);
  std::optional<uint64_t> device_context(unsigned slot);
  bool set_slot_state(unsigned slot, unsigned state, unsigned address);
  bool set_endpoint_state(unsigned slot, unsigned dci);
  bool enable_endpoint(unsigned slot, unsigned dci, uint64_t input_context);
  void disable_endpoint(unsigned slot, unsigned dci);

  // Transfer rings.
  void ring_doorbell(unsigned slot, unsigned target);
  void run_endpoint(unsigned slot, unsigned dci);
  enum class Gather { Complete, Incomplete, Bad };
  Gather gather_td(Ring& ring, std::vector<Trb>& td);
  void transfer_done(unsigned slot, unsigned dci, uint64_t generation, Transfer& transfer,
                     TransferResult result);
  void report_td(unsigned slot, unsigned dci, const std::vector<Trb>& td, size_t actual, unsigned error);

  const std::string m_name;
  const base::GuestMemory& m_memory;
  const InterruptFn m_interrupt;
  const std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
  mutable std::recursive_mutex m_lock;

  // Operational registers.
  uint32_t m_usbcmd = 0, m_usbsts = 0, m_dnctrl = 0, m_config = 0;
  uint64_t m_crcr = 0, m_dcbaap = 0;
  Ring m_command_ring;
  bool m_command_running = false;
  // Interrupter 0.
  uint32_t m_iman = 0, m_imod = 0, m_erstsz = 0;
  uint64_t m_erstba = 0, m_erdp = 0;
  bool m_interrupt_level = false;
  // Event ring producer: segment table copy, position, cycle.
  struct Segment {
    uint64_t base = 0;
    uint32_t size = 0;  // TRBs
  };
  std::vector<Segment> m_segments;
  unsigned m_er_segment = 0, m_er_index = 0;
  bool m_er_cycle = true;
  bool m_er_full = false;

  bool m_shutdown = false;
  uint64_t m_generation = 0;                  // counts transfers submitted, across every endpoint and slot
  std::array<Port, kPorts + 1> m_ports{};     // 1-based
  std::array<Slot, kMaxSlots + 1> m_slots{};  // 1-based
};

}  // namespace hw::usb
