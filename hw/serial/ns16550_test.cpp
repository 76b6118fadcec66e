#include "hw/serial/ns16550.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "hw/testing/recording_char.h"

namespace {

struct FakeIrq : hw::IrqLine {
  bool level = false;
  int edges = 0;
  void set_level(bool asserted) override {
    if (asserted && !level) ++edges;
    level = asserted;
  }
};

struct FakeChar : hw::testing::RecordingChar {
  // Host -> guest, respecting can_receive like a real backend. Returns bytes delivered.
  size_t type(const std::string& text) {
    size_t room = receiver->can_receive();
    size_t n = std::min(room, text.size());
    receiver->receive({reinterpret_cast<const uint8_t*>(text.data()), n});
    return n;
  }
};

struct Rig {
  std::shared_ptr<FakeIrq> irq = std::make_shared<FakeIrq>();
  std::shared_ptr<FakeChar> chr = std::make_shared<FakeChar>();
  hw::Ns16550 uart{"serial0", 1, irq, chr};
};

constexpr unsigned RBR = 0, THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

}  // namespace

TEST_CASE("ns16550: attaches to its backend and THR writes reach it") {
  Rig r;
  CHECK(r.chr->receiver == &r.uart);
  for (char c : std::string("hi\n")) r.uart.write_register(THR, static_cast<uint8_t>(c));
  CHECK(r.chr->output == "hi\n");
  CHECK((r.uart.read_register(LSR) & 0x60) == 0x60);  // THRE and TEMT: always empty
}

TEST_CASE("ns16550: MMIO offsets honour the register stride") {
  auto chr = std::make_shared<FakeChar>();
  hw::Ns16550 uart("serial1", 4, nullptr, chr);
  CHECK(uart.region_size() == 32);
  uint8_t v = 0x5a;
  uart.write(7 * 4, {&v, 1});  // SCR
  uint8_t word[4] = {0xff, 0xff, 0xff, 0xff};
  uart.read(7 * 4, word);
  CHECK(word[0] == 0x5a);
  CHECK(word[1] == 0);
  // An access between registers is ignored and reads as zero.
  uint8_t odd = 0xff;
  uart.read(7 * 4 + 1, {&odd, 1});
  CHECK(odd == 0);
  uint8_t a = 'A';
  uart.write(0, {&a, 1});
  CHECK(chr->output == "A");
}

TEST_CASE("ns16550: divisor latch is selected by LCR.DLAB") {
  Rig r;
  r.uart.write_register(LCR, 0x80);
  r.uart.write_register(0, 0x01);
  r.uart.write_register(1, 0x02);
  CHECK(r.uart.read_register(0) == 0x01);
  CHECK(r.uart.read_register(1) == 0x02);
  r.uart.write_register(LCR, 0x03);
  CHECK(r.uart.read_register(LCR) == 0x03);
  CHECK(r.uart.read_register(IER) == 0);  // the real IER was never written
  CHECK(r.chr->output.empty());           // divisor writes are not transmitted
}

TEST_CASE("ns16550: scratch register keeps its value") {
  Rig r;
  r.uart.write_register(SCR, 0xa5);
  CHECK(r.uart.read_register(SCR) == 0xa5);
}

TEST_CASE("ns16550: received bytes set LSR.DR and raise the RX interrupt") {
  Rig r;
  r.uart.write_register(IER, 0x01);
  CHECK_FALSE(r.irq->level);
  CHECK(r.chr->type("x") == 1);
  CHECK((r.uart.read_register(LSR) & 0x01) == 1);
  CHECK(r.irq->level);
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x04);
  CHECK(r.uart.read_register(RBR) == 'x');
  CHECK((r.uart.read_register(LSR) & 0x01) == 0);
  CHECK_FALSE(r.irq->level);
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x01);
}

TEST_CASE("ns16550: without FIFOs one byte fits; with FIFOs sixteen, in order") {
  Rig r;
  CHECK(r.uart.can_receive() == 1);
  r.uart.write_register(FCR, 0x01);
  CHECK(r.uart.can_receive() == 16);
  CHECK((r.uart.read_register(IIR) & 0xc0) == 0xc0);
  std::string text = "0123456789abcdefXYZ";
  CHECK(r.chr->type(text) == 16);
  CHECK(r.uart.can_receive() == 0);
  std::string got;
  while (r.uart.read_register(LSR) & 0x01) got.push_back(static_cast<char>(r.uart.read_register(RBR)));
  CHECK(got == text.substr(0, 16));
  CHECK(r.uart.can_receive() == 16);
}

TEST_CASE("ns16550: FIFO trigger level separates RDI from character timeout") {
  Rig r;
  r.uart.write_register(FCR, 0x81);  // enable, trigger at 8
  r.uart.write_register(IER, 0x01);
  r.chr->type("abc");
  CHECK(r.irq->level);
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x0c);
  r.chr->type("defgh");
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x04);
}

TEST_CASE("ns16550: FCR clears the receive FIFO") {
  Rig r;
  r.uart.write_register(FCR, 0x01);
  r.chr->type("abc");
  r.uart.write_register(FCR, 0x03);
  CHECK((r.uart.read_register(LSR) & 0x01) == 0);
  CHECK(r.uart.can_receive() == 16);
}

TEST_CASE("ns16550: THRE interrupt fires on enable, is acked by reading IIR, re-arms on THR write") {
  Rig r;
  r.uart.write_register(IER, 0x02);
  CHECK(r.irq->level);
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x02);
  CHECK_FALSE(r.irq->level);
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x01);
  r.uart.write_register(THR, 'z');
  CHECK(r.irq->level);
  r.uart.write_register(IER, 0x00);
  CHECK_FALSE(r.irq->level);
}

TEST_CASE("ns16550: interrupt priority puts received data before THRE") {
  Rig r;
  r.uart.write_register(IER, 0x03);
  r.chr->type("q");
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x04);
  r.uart.read_register(RBR);
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x02);
}

TEST_CASE("ns16550: loopback feeds transmitted bytes back and maps MCR to MSR") {
  Rig r;
  // Linux's 8250 autoconfig probe: loopback with RTS|OUT2 must read back CTS|DCD (0x90).
  r.uart.write_register(MCR, 0x10 | 0x0a);
  CHECK((r.uart.read_register(MSR) & 0xf0) == 0x90);
  r.uart.write_register(MCR, 0x10 | 0x05);  // DTR|OUT1 -> DSR|RI
  CHECK((r.uart.read_register(MSR) & 0xf0) == 0x60);
  CHECK(r.uart.can_receive() == 0);  // disconnected from the outside
  r.uart.write_register(THR, 'L');
  CHECK(r.chr->output.empty());
  CHECK((r.uart.read_register(LSR) & 0x01) == 1);
  CHECK(r.uart.read_register(RBR) == 'L');
  r.uart.write_register(MCR, 0x00);
  CHECK((r.uart.read_register(MSR) & 0xf0) == 0xb0);  // CTS|DSR|DCD of a connected terminal
}

TEST_CASE("ns16550: modem status changes raise the MSI interrupt until MSR is read") {
  Rig r;
  r.uart.write_register(IER, 0x08);
  CHECK_FALSE(r.irq->level);
  r.uart.write_register(MCR, 0x10);  // into loopback: all inputs drop
  CHECK(r.irq->level);
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x00);
  uint8_t msr = r.uart.read_register(MSR);
  CHECK((msr & 0x0b) == 0x0b);  // delta CTS, DSR, DCD
  CHECK_FALSE(r.irq->level);
}

TEST_CASE("ns16550: overrun sets LSR.OE and the line status interrupt; reading LSR clears it") {
  Rig r;
  r.uart.write_register(IER, 0x04);
  r.uart.write_register(MCR, 0x10);  // loopback lets the guest overfill its own 1-byte holding register
  r.uart.write_register(THR, '1');
  r.uart.write_register(THR, '2');
  CHECK(r.irq->level);
  CHECK((r.uart.read_register(IIR) & 0x0f) == 0x06);
  CHECK((r.uart.read_register(LSR) & 0x02) == 0x02);
  CHECK((r.uart.read_register(LSR) & 0x02) == 0);
  CHECK_FALSE(r.irq->level);
  CHECK(r.uart.read_register(RBR) == '1');
}

TEST_CASE("ns16550: hostile offsets are ignored") {
  Rig r;
  uint8_t buf[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  r.uart.read(0x1000, buf);
  for (uint8_t b : buf) CHECK(b == 0);
  r.uart.write(0xffffffffffffull, buf);
  r.uart.read(0, std::span<uint8_t>{});
  CHECK(r.chr->output.empty());
}

TEST_CASE("ns16550: works without backend or interrupt line") {
  hw::Ns16550 uart("serial9", 1, nullptr, nullptr);
  uart.write_register(IER, 0x02);
  uart.write_register(THR, 'x');
  CHECK((uart.read_register(LSR) & 0x20) == 0x20);
}

TEST_CASE("ns16550: saved state (registers, unread input) loads into a fresh UART") {
  Rig a;
  a.uart.write_register(FCR, 0x01);  // FIFOs on
  a.uart.write_register(IER, 0x01);
  a.uart.write_register(LCR, 0x03);
  a.uart.write_register(SCR, 0x5a);
  CHECK(a.chr->type("hey") == 3);
  CHECK(a.uart.read_register(RBR) == 'h');
  hw::StateWriter out;
  a.uart.save_state(out);
  const std::vector<uint8_t> saved = out.take();

  Rig b;
  CHECK_FALSE(b.irq->level);
  hw::StateReader in(saved);
  REQUIRE(b.uart.load_state(in, 1).ok());
  CHECK(b.irq->level);  // data waiting, RX interrupt enabled: the line is driven again
  CHECK(b.uart.read_register(SCR) == 0x5a);
  CHECK(b.uart.read_register(LCR) == 0x03);
  CHECK(b.uart.read_register(RBR) == 'e');
  CHECK(b.uart.read_register(RBR) == 'y');
  CHECK((b.uart.read_register(LSR) & 0x01) == 0);
  CHECK_FALSE(b.irq->level);

  Rig c;
  hw::StateReader short_in(std::span<const uint8_t>(saved).first(saved.size() - 2));
  CHECK_FALSE(c.uart.load_state(short_in, 1).ok());
}

TEST_CASE("ns16550: counts bytes sent, received and lost to a full FIFO for query-stats") {
  auto backend = std::make_shared<hw::testing::RecordingChar>();
  hw::Ns16550 uart("serial0", 1, nullptr, backend);
  for (char c : std::string("hi!")) uart.write_register(0, static_cast<uint8_t>(c));
  const uint8_t in[] = {'a', 'b'};
  uart.receive(in);  // FIFOs off: one byte fits, the second overruns
  auto counters = uart.counters();
  auto value = [&](const char* name) {
    for (const auto& [key, v] : counters)
      if (key == name) return v;
    FAIL("no counter " << name);
    return uint64_t{0};
  };
  CHECK(value("tx_bytes") == 3);
  CHECK(value("tx_dropped_no_backend") == 0);
  CHECK(value("rx_bytes") == 1);
  CHECK(value("rx_overruns") == 1);
  hw::Ns16550 unconnected("serial1", 1, nullptr, nullptr);
  unconnected.write_register(0, 'x');
  CHECK(unconnected.counters()[1].second == 1);
}
