// The PC keyboard controller (8042) with a keyboard behind it, as far as a VM needs them: the reset
// line (command 0xFE on port 0x64: Linux's reboot=k, firmware, many test kernels) and Ctrl-Alt-Del
// pressed by the host, which is how `vmlaunch down` asks an x86_64/microvm guest to stop, as
// Firecracker's SendCtrlAltDel does. Mapped at ports 0x60 (data) to 0x64 (status/command), IRQ 1.
//
// Enough of the controller for Linux's i8042 driver (read/write the command byte, self tests,
// output port, enable/disable the keyboard) and of the keyboard for atkbd (ACK, reset, get ID,
// LEDs, typematic, scan code set queries, enable/disable scanning). No AUX port (no mouse): the
// DSDT declares only the keyboard (PNP0303). Scan codes are set 2, translated to set 1 when the
// command byte's XLATE bit is set, as the real controller does.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "hw/device.h"
#include "hw/device_state.h"
#include "hw/machine.h"

namespace hw::x86 {

class I8042 final : public Device, public DeviceState {
 public:
  static constexpr uint8_t kStatusOutputFull = 0x01, kStatusSystem = 0x04, kStatusCommand = 0x08,
                           kStatusUnlocked = 0x10;
  static constexpr uint8_t kCtrKbdInt = 0x01, kCtrSystem = 0x04, kCtrKbdDisabled = 0x10,
                           kCtrAuxDisabled = 0x20, kCtrTranslate = 0x40;
  static constexpr size_t kQueueLimit = 64;  // keyboard bytes waiting; more are dropped

  // `irq` (may be null) is ISA IRQ 1: high while a byte waits and the command byte enables it.
  I8042(PowerController& power, std::shared_ptr<IrqLine> irq) : m_power(power), m_irq(std::move(irq)) {}
  explicit I8042(PowerController& power) : I8042(power, nullptr) {}
  std::string_view name() const override { return "i8042"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Presses and releases Ctrl, Alt and Delete on the keyboard. Linux's keyboard handler turns the
  // combination into ctrl_alt_del(): a restart, or SIGINT to init when init asked for it
  // (/proc/sys/kernel/ctrl-alt-del = 0). Returns false when the guest has turned the keyboard off
  // (scanning disabled), so nothing would arrive. Any thread.
  bool press_ctrl_alt_del();

  // Snapshot: the command byte, the output buffer, commands waiting for data, scanning and the
  // keyboard's queue; loading re-drives IRQ 1.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override;
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override;

 private:
  void controller_command(uint8_t command);  // port 0x64
  void data_write(uint8_t value);            // port 0x60
  void keyboard_command(uint8_t value);      // a byte the controller passed on to the keyboard
  void respond(uint8_t value);               // a controller reply: straight into the output buffer
  void keyboard_send(std::initializer_list<uint8_t> bytes);
  void refill();  // next keyboard byte into an empty output buffer
  void update_irq();

  PowerController& m_power;
  std::shared_ptr<IrqLine> m_irq;
  std::mutex m_lock;
  uint8_t m_ctr = kCtrKbdInt | kCtrSystem | kCtrAuxDisabled;  // the command byte
  uint8_t m_output = 0;
  bool m_output_full = false;
  bool m_new_byte = false;  // loaded since the line was last updated: it needs a fresh edge
  bool m_last_was_command = false;
  uint8_t m_pending = 0;           // controller command waiting for its data byte (0x60, 0xD1-0xD4)
  uint8_t m_keyboard_pending = 0;  // keyboard command waiting for its parameter (0xED, 0xF0, 0xF3)
  bool m_scanning = true;
  std::deque<uint8_t> m_keyboard;  // bytes from the keyboard not yet in the output buffer
};

// isa-debug-exit style test port (0x501): writing a value powers the machine off with that value as
// `vmlaunch up`'s exit status, so a freestanding guest reports pass/fail without a serial parser.
class DebugExit final : public Device {
 public:
  static constexpr uint16_t kPort = 0x501;
  explicit DebugExit(PowerController& power) : m_power(power) {}
  std::string_view name() const override { return "debug-exit"; }
  void read(uint64_t, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  PowerController& m_power;
};

}  // namespace hw::x86
