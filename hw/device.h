// Device: the one interface between a bus and a device model.
// A device handles reads and writes of its own region; offsets are relative to where the bus
// mapped it, so it never sees absolute addresses or the accelerator. Accesses come from vCPU
// threads (possibly several at once), so a device guards its own state.
// Guest input is hostile: any offset and size may arrive; unknown registers read as zero and
// ignore writes (logged once), never abort.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace hw {

class Device {
 public:
  virtual ~Device() = default;

  // Short name for logs and `plan` ("serial0", "plic").
  virtual std::string_view name() const = 0;

  // data.size() is the access width (1, 2, 4 or 8 for CPU accesses; anything for DMA-style callers).
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// An interrupt line a device drives. The machine builder wires it to an interrupt controller
// (PLIC source, in-kernel IOAPIC pin, ...); the device only sets the level.
class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual void set_level(bool asserted) = 0;
  void pulse() {
    set_level(true);
    set_level(false);
  }
  // Has the interrupt controller drive this line from an eventfd pair by itself (KVM irqfd with
  // resample): `trigger` asserts it, the guest's EOI deasserts it and signals `resample`. False
  // when it cannot (no in-kernel IOAPIC); the caller then does without. unbind_eventfds stops it.
  virtual bool bind_eventfds(int trigger, int resample) {
    (void)trigger;
    (void)resample;
    return false;
  }
  virtual void unbind_eventfds(int trigger) { (void)trigger; }
};

// Host memory a device model lets the guest reach directly, without exits (a passed-through BAR
// mmapped from VFIO). Only machines whose accelerator can do it hand one to their PCI functions.
// map() returns an id, or nullopt when it cannot (overlap: the caller keeps trapping the range).
class DirectMapper {
 public:
  virtual ~DirectMapper() = default;
  virtual std::optional<uint32_t> map(uint64_t gpa, void* host, uint64_t size) = 0;
  virtual void unmap(uint32_t id) = 0;
};

// Where a PCI function's MSI/MSI-X messages go: the machine's MSI-capable interrupt controller.
// Only machines that have one hand a sink to their PCI functions (x86_64 pc: the in-kernel LAPICs);
// without a sink a function must not advertise MSI/MSI-X and uses INTx.
// Contract: signal() is safe from any thread, and a no-op once the machine is being torn down.
class MsiSink {
 public:
  virtual ~MsiSink() = default;
  virtual void signal(uint64_t address, uint32_t data) = 0;
  // Has the machine's interrupt controller deliver MSI (address, data) whenever `eventfd` is
  // signalled, by itself (KVM irqfd); again for the same eventfd to re-aim it. False when it cannot:
  // the caller then forwards the eventfd through signal(). unbind_eventfd stops it.
  virtual bool bind_eventfd(int eventfd, uint64_t address, uint32_t data) {
    (void)eventfd;
    (void)address;
    (void)data;
    return false;
  }
  virtual void unbind_eventfd(int eventfd) { (void)eventfd; }
};

}  // namespace hw
