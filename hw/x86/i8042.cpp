#include "hw/x86/i8042.h"

#include <algorithm>
#include <cstring>

namespace hw::x86 {
namespace {

constexpr uint8_t kAck = 0xfa, kResend = 0xfe, kSelfTestPassed = 0xaa;

}  // namespace

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::memset(data.data(), 0, data.size());
  std::lock_guard guard(m_lock);
  if (offset == 4) {
    data[0] = static_cast<uint8_t>((m_output_full ? kStatusOutputFull : 0) | (m_ctr & kCtrSystem) |
                                   (m_last_was_command ? kStatusCommand : 0) | kStatusUnlocked);
  } else if (offset == 0) {
    data[0] = m_output;
    m_output_full = false;
    refill();
    update_irq();
  }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard guard(m_lock);
  if (offset == 4) {
    m_last_was_command = true;
    controller_command(data[0]);
  } else if (offset == 0) {
    m_last_was_command = false;
    data_write(data[0]);
  }
  update_irq();
}

void I8042::controller_command(uint8_t command) {
  m_pending = 0;
  switch (command) {
    case 0x20:  // read the command byte
      respond(m_ctr);
      break;
    case 0x60:  // write the command byte (next data byte)
    case 0xd1:  // write the output port
    case 0xd2:  // write the keyboard's output buffer (as if the keyboard sent it)
    case 0xd3:  // write the AUX output buffer
    case 0xd4:  // write to the AUX device: there is none, the byte is dropped
      m_pending = command;
      break;
    case 0xa7:
      m_ctr |= kCtrAuxDisabled;
      break;
    case 0xa8:
      m_ctr = static_cast<uint8_t>(m_ctr & ~kCtrAuxDisabled);
      break;
    case 0xa9:  // AUX interface test: the clock line is stuck low (no AUX port)
      respond(0x01);
      break;
    case 0xaa:  // controller self test
      respond(0x55);
      break;
    case 0xab:  // keyboard interface test: no error
      respond(0x00);
      break;
    case 0xad:
      m_ctr |= kCtrKbdDisabled;
      break;
    case 0xae:
      m_ctr = static_cast<uint8_t>(m_ctr & ~kCtrKbdDisabled);
      refill();
      break;
    case 0xd0:  // read the output port: A20 on, reset line not asserted
      respond(0x03);
      break;
    default:
      // 0xF0-0xFF pulse output lines for ~6 us; bit 0 clear pulses the CPU's reset line (0xFE).
      if (command >= 0xf0 && !(command & 1)) m_power.reset();
      break;
  }
}

void I8042::data_write(uint8_t value) {
  const uint8_t pending = m_pending;
  m_pending = 0;
  switch (pending) {
    case 0x60:
      m_ctr = value;
      refill();
      return;
    case 0xd1:
      if (!(value & 1)) m_power.reset();  // bit 0 is the reset line, active low
      return;
    case 0xd2:
    case 0xd3:
      respond(value);
      return;
    case 0xd4:
      return;
    default:
      // A byte for the keyboard; writing to it also enables its interface, as on real controllers.
      m_ctr = static_cast<uint8_t>(m_ctr & ~kCtrKbdDisabled);
      keyboard_command(value);
      return;
  }
}

void I8042::keyboard_command(uint8_t value) {
  if (const uint8_t command = m_keyboard_pending) {
    m_keyboard_pending = 0;
    if (command == 0xf0 && value == 0)
      keyboard_send({kAck, 0x02});  // the current scan code set: 2
    else
      keyboard_send({kAck});
    return;
  }
  switch (value) {
    case 0xed:  // set LEDs
    case 0xf0:  // get/set the scan code set
    case 0xf3:  // typematic rate
      m_keyboard_pending = value;
      keyboard_send({kAck});
      break;
    case 0xee:  // echo
      keyboard_send({0xee});
      break;
    case 0xf2:  // identify: an MF2 keyboard (0x41 as the controller translates it)
      keyboard_send({kAck, 0xab, static_cast<uint8_t>(m_ctr & kCtrTranslate ? 0x41 : 0x83)});
      break;
    case 0xf4:
      m_scanning = true;
      keyboard_send({kAck});
      break;
    case 0xf5:  // disable scanning and restore defaults
      m_scanning = false;
      keyboard_send({kAck});
      break;
    case 0xf6:  // defaults
      m_scanning = true;
      keyboard_send({kAck});
      break;
    case 0xff:  // reset: ACK, then the self test's result
      m_scanning = true;
      m_keyboard.clear();
      keyboard_send({kAck, kSelfTestPassed});
      break;
    default:
      keyboard_send({static_cast<uint8_t>(value >= 0xf7 && value <= 0xfe ? kAck : kResend)});
      break;
  }
}

void I8042::respond(uint8_t value) {
  m_output = value;
  m_output_full = true;
  m_new_byte = true;
}

void I8042::keyboard_send(std::initializer_list<uint8_t> bytes) {
  for (uint8_t byte : bytes)
    if (m_keyboard.size() < kQueueLimit) m_keyboard.push_back(byte);
  refill();
}

void I8042::refill() {
  if (m_output_full || (m_ctr & kCtrKbdDisabled) || m_keyboard.empty()) return;
  m_output = m_keyboard.front();
  m_keyboard.pop_front();
  m_output_full = true;
  m_new_byte = true;
}

void I8042::update_irq() {
  if (!m_irq) return;
  // The line follows "a byte waits and the interrupt is enabled"; each new byte is its own edge
  // (ISA IRQ 1 is edge triggered), also when it replaces one the guest read in the same access.
  const bool level = m_output_full && (m_ctr & kCtrKbdInt);
  if (m_new_byte && level) m_irq->set_level(false);
  m_new_byte = false;
  m_irq->set_level(level);
}

void I8042::save_state(StateWriter& out) {
  std::lock_guard guard(m_lock);
  out.u8(m_ctr);
  out.u8(m_output);
  out.boolean(m_output_full);
  out.boolean(m_last_was_command);
  out.u8(m_pending);
  out.u8(m_keyboard_pending);
  out.boolean(m_scanning);
  out.bytes(std::vector<uint8_t>(m_keyboard.begin(), m_keyboard.end()));
}

base::ErrorOr<void> I8042::load_state(StateReader& in, uint32_t version) {
  TRY(check_version(version, 1, name()));
  std::lock_guard guard(m_lock);
  m_ctr = in.u8();
  m_output = in.u8();
  m_output_full = in.boolean();
  m_last_was_command = in.boolean();
  m_pending = in.u8();
  m_keyboard_pending = in.u8();
  m_scanning = in.boolean();
  std::vector<uint8_t> queue = in.bytes(kQueueLimit);
  m_keyboard.assign(queue.begin(), queue.end());
  TRY(in.finish(std::string(name())));
  m_new_byte = false;  // the guest saw this byte's edge before the snapshot
  update_irq();
  return {};
}

bool I8042::press_ctrl_alt_del() {
  std::lock_guard guard(m_lock);
  if (!m_scanning) return false;
  if (m_ctr & kCtrTranslate)  // set 1: make codes, then break codes (make | 0x80)
    keyboard_send({0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d});
  else  // set 2: LCtrl 14, LAlt 11, Delete E0 71; a break is F0 before the code
    keyboard_send({0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14});
  update_irq();
  return true;
}

void DebugExit::read(uint64_t, std::span<uint8_t> data) {
  std::memset(data.data(), 0xff, data.size());
}

void DebugExit::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) return;
  uint32_t value = 0;
  std::memcpy(&value, data.data(), std::min<size_t>(data.size(), 4));
  m_power.power_off(static_cast<int>(value & 0xff));
}

}  // namespace hw::x86
