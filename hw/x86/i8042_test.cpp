#include "hw/x86/i8042.h"

#include <doctest/doctest.h>

#include <vector>

using namespace hw;

namespace {

struct Line final : IrqLine {
  bool level = false;
  int rises = 0;
  void set_level(bool asserted) override {
    if (asserted && !level) ++rises;
    level = asserted;
  }
};

uint8_t in(x86::I8042& kbd, uint64_t port) {
  uint8_t value = 0xcc;
  kbd.read(port, {&value, 1});
  return value;
}
void out(x86::I8042& kbd, uint64_t port, uint8_t value) {
  kbd.write(port, {&value, 1});
}
// Everything waiting in the output buffer, as a driver polling the status port reads it.
std::vector<uint8_t> drain(x86::I8042& kbd) {
  std::vector<uint8_t> bytes;
  while ((in(kbd, 4) & x86::I8042::kStatusOutputFull) && bytes.size() < 100) bytes.push_back(in(kbd, 0));
  return bytes;
}

}  // namespace

TEST_CASE("i8042: 0xfe (and the output port's reset bit) reset the machine; other writes do not") {
  PowerController power;
  x86::I8042 kbd(power);
  CHECK((in(kbd, 4) & ~x86::I8042::kStatusCommand) ==
        (x86::I8042::kStatusSystem | x86::I8042::kStatusUnlocked));
  out(kbd, 4, 0xad);
  out(kbd, 4, 0xff);  // Linux's null command: pulses no line
  out(kbd, 4, 0xd1);  // output port: A20 on, reset high (Linux writes 0xdf)
  out(kbd, 0, 0xdf);
  out(kbd, 2, 0xfe);  // not a port of the controller
  CHECK_FALSE(power.stopping());
  out(kbd, 4, 0xfe);
  REQUIRE(power.stopping());
  CHECK(power.wait().kind == RunOutcome::Kind::Reset);

  PowerController power2;
  x86::I8042 kbd2(power2);
  out(kbd2, 4, 0xd1);
  out(kbd2, 0, 0xde);
  REQUIRE(power2.stopping());
  CHECK(power2.wait().kind == RunOutcome::Kind::Reset);
}

TEST_CASE("i8042: Linux's probe: command byte, self test, keyboard identify with interrupts") {
  PowerController power;
  auto irq = std::make_shared<Line>();
  x86::I8042 kbd(power, irq);
  out(kbd, 4, 0x20);
  const uint8_t ctr = in(kbd, 0);
  CHECK(ctr == (x86::I8042::kCtrKbdInt | x86::I8042::kCtrSystem | x86::I8042::kCtrAuxDisabled));
  out(kbd, 4, 0xaa);
  CHECK(drain(kbd) == std::vector<uint8_t>{0x55});
  // The driver masks the keyboard's interrupt while it sets up, then enables it.
  out(kbd, 4, 0x60);
  out(kbd, 0, static_cast<uint8_t>((ctr & ~x86::I8042::kCtrKbdInt) | x86::I8042::kCtrKbdDisabled));
  const int masked = irq->rises;
  out(kbd, 4, 0x20);
  CHECK(in(kbd, 0) == ((ctr & ~x86::I8042::kCtrKbdInt) | x86::I8042::kCtrKbdDisabled));
  CHECK(irq->rises == masked);  // polled, no interrupt
  out(kbd, 4, 0x60);
  out(kbd, 0, ctr);
  const int enabled = irq->rises;
  // atkbd: GETID answers ACK, 0xAB, 0x83, one interrupt per byte.
  out(kbd, 0, 0xf2);
  CHECK(irq->level);
  CHECK(in(kbd, 0) == 0xfa);
  CHECK(in(kbd, 0) == 0xab);
  CHECK(in(kbd, 0) == 0x83);
  CHECK_FALSE(irq->level);
  CHECK(irq->rises == enabled + 3);
  // LEDs and the scan code set take a parameter, each byte ACKed; the set is 2.
  out(kbd, 0, 0xed);
  out(kbd, 0, 0x00);
  out(kbd, 0, 0xf0);
  out(kbd, 0, 0x00);
  CHECK(drain(kbd) == std::vector<uint8_t>{0xfa, 0xfa, 0xfa, 0xfa, 0x02});
  out(kbd, 0, 0xff);
  CHECK(drain(kbd) == std::vector<uint8_t>{0xfa, 0xaa});
  out(kbd, 0, 0x01);  // not a keyboard command
  CHECK(drain(kbd) == std::vector<uint8_t>{0xfe});
}

TEST_CASE("i8042: Ctrl-Alt-Del from the host, in set 2 or translated to set 1") {
  PowerController power;
  auto irq = std::make_shared<Line>();
  x86::I8042 kbd(power, irq);
  REQUIRE(kbd.press_ctrl_alt_del());
  CHECK(irq->level);
  CHECK(drain(kbd) == std::vector<uint8_t>{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14});
  CHECK(irq->rises == 11);
  out(kbd, 4, 0x60);
  out(kbd, 0, x86::I8042::kCtrKbdInt | x86::I8042::kCtrSystem | x86::I8042::kCtrTranslate);
  REQUIRE(kbd.press_ctrl_alt_del());
  CHECK(drain(kbd) == std::vector<uint8_t>{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d});
  // With the keyboard interface disabled nothing arrives until it is enabled again.
  out(kbd, 4, 0xad);
  REQUIRE(kbd.press_ctrl_alt_del());
  CHECK(drain(kbd).empty());
  out(kbd, 4, 0xae);
  CHECK(drain(kbd).size() == 8);
  // Scanning turned off by the guest: the host is told nothing will arrive.
  out(kbd, 0, 0xf5);
  CHECK(drain(kbd) == std::vector<uint8_t>{0xfa});
  CHECK_FALSE(kbd.press_ctrl_alt_del());
  // A guest that never reads cannot make the queue grow without bound.
  out(kbd, 0, 0xf4);
  for (int i = 0; i < 100; ++i) kbd.press_ctrl_alt_del();
  CHECK(drain(kbd).size() <= x86::I8042::kQueueLimit + 1);
  CHECK_FALSE(power.stopping());
}

TEST_CASE("debug exit: the value written becomes the exit status") {
  PowerController power;
  x86::DebugExit port(power);
  const uint8_t value[2] = {42, 0};
  port.write(1, {value, 1});  // not the port itself
  CHECK_FALSE(power.stopping());
  port.write(0, {value, 2});
  RunOutcome outcome = power.wait();
  CHECK(outcome.kind == RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 42);
}

TEST_CASE("i8042 state carries the command byte and the keyboard's queue into a fresh controller") {
  hw::PowerController power_a, power_b;
  hw::x86::I8042 a(power_a);
  a.write(4, std::vector<uint8_t>{0x60});  // write the command byte: translation off, IRQ on
  a.write(0, std::vector<uint8_t>{0x01});
  REQUIRE(a.press_ctrl_alt_del());
  hw::StateWriter out;
  a.save_state(out);
  hw::x86::I8042 b(power_b);
  hw::StateReader in(out.data());
  REQUIRE(b.load_state(in, 1).ok());
  // Both give the same bytes from here: set 2 LCtrl (0x14) first.
  for (int i = 0; i < 11; ++i) {
    uint8_t x = 0, y = 0;
    a.read(0, std::span<uint8_t>(&x, 1));
    b.read(0, std::span<uint8_t>(&y, 1));
    CHECK(x == y);
  }
  hw::StateReader bad(std::span<const uint8_t>(out.data()).first(3));
  hw::x86::I8042 c(power_b);
  CHECK(!c.load_state(bad, 1).ok());
}
