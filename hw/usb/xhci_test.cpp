// The xHCI controller driven as Linux's xhci_hcd drives it: rings and contexts in guest memory,
// registers through MMIO, and a device on a port that answers like a USB stick (descriptors, bulk
// loopback, a stalling request). Then hostile rings and random register writes: never a crash.
#include "hw/usb/xhci.h"

#include <doctest/doctest.h>

#include <cstring>
#include <deque>
#include <random>

namespace {

using hw::usb::Speed;
using hw::usb::Transfer;
using hw::usb::TransferDone;
using hw::usb::TransferResult;

constexpr uint8_t kDeviceDescriptor[18] = {18,   1,    0x00, 0x02, 0, 0, 0, 64, 0x81,
                                           0x07, 0x81, 0x55, 0,    1, 1, 2, 3,  1};

class FakeDevice : public hw::usb::UsbDevice {
 public:
  explicit FakeDevice(Speed speed) : m_speed(speed) {}
  std::string_view name() const override { return "fake"; }
  Speed speed() const override { return m_speed; }
  void reset() override { ++resets; }
  void submit(Transfer transfer, TransferDone done) override {
    if (hold) {
      held.push_back({std::move(transfer), std::move(done)});
      return;
    }
    answer(transfer, done);
  }
  void cancel(uint8_t endpoint) override { cancelled.push_back(endpoint); }
  void set_presence_listener(std::function<void(bool)> listener) override { presence = std::move(listener); }

  void answer(Transfer& transfer, TransferDone& done) {
    if (transfer.type == hw::usb::EndpointType::Control) {
      const auto& setup = transfer.setup;
      if (setup.request_type == 0x80 && setup.request == 6 && setup.value == 0x0100) {
        size_t n = std::min(transfer.data.size(), sizeof kDeviceDescriptor);
        std::memcpy(transfer.data.data(), kDeviceDescriptor, n);
        return done(transfer, {TransferResult::Status::Ok, n});
      }
      if (setup.request_type == 0x40 && setup.request == 0x56) {
        stored = transfer.data;
        return done(transfer, {TransferResult::Status::Ok, transfer.data.size()});
      }
      if (setup.request_type == 0x00 && setup.request == 9)
        return done(transfer, {TransferResult::Status::Ok, 0});
      return done(transfer, {TransferResult::Status::Stall, 0});
    }
    if (transfer.endpoint == 0x02) {
      stored = transfer.data;
      return done(transfer, {TransferResult::Status::Ok, transfer.data.size()});
    }
    if (transfer.endpoint == 0x81) {
      size_t n = std::min(transfer.data.size(), stored.size());
      std::memcpy(transfer.data.data(), stored.data(), n);
      return done(transfer, {TransferResult::Status::Ok, n});
    }
    done(transfer, {TransferResult::Status::Stall, 0});
  }

  Speed m_speed;
  int resets = 0;
  bool hold = false;
  std::deque<std::pair<Transfer, TransferDone>> held;
  std::vector<uint8_t> stored;
  std::vector<uint8_t> cancelled;
  std::function<void(bool)> presence;
};

// Guest memory layout of the test driver.
constexpr uint64_t kDcbaa = 0x1000, kCommandRing = 0x2000, kErst = 0x3000, kEventRing = 0x4000,
                   kDeviceContext = 0x6000, kInputContext = 0x7000, kEp0Ring = 0x8000, kOutRing = 0x9000,
                   kInRing = 0xa000, kBuffers = 0x10000;
constexpr unsigned kEventTrbs = 64, kRingTrbs = 64;
constexpr uint64_t kOperational = 0x40, kRuntime = 0x1000, kDoorbells = 0x2000;

struct Event {
  uint64_t parameter = 0;
  uint32_t status = 0, control = 0;
  unsigned type() const { return (control >> 10) & 0x3f; }
  unsigned code() const { return status >> 24; }
  unsigned slot() const { return control >> 24; }
};

struct Ring {
  uint64_t base = 0, enqueue = 0;
  bool cycle = true;
};

struct Driver {
  base::GuestMemory memory;
  std::shared_ptr<hw::usb::Xhci> xhci;
  std::vector<bool> levels;
  bool message = false;  // interrupts go out as MSI (true) or a level (INTx)
  Ring commands{kCommandRing, kCommandRing, true};
  uint64_t event_dequeue = kEventRing;
  bool event_cycle = true;

  Driver() {
    REQUIRE(memory.add_region(0, 1 << 20).ok());
    xhci = std::make_shared<hw::usb::Xhci>("xhci", memory, [this](bool level) {
      levels.push_back(level);
      return message;
    });
  }
  uint32_t r32(uint64_t offset) {
    uint8_t b[4];
    xhci->read(offset, b);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  }
  void w32(uint64_t offset, uint32_t value) {
    uint8_t b[4];
    std::memcpy(b, &value, 4);
    xhci->write(offset, b);
  }
  void w64(uint64_t offset, uint64_t value) {
    w32(offset, static_cast<uint32_t>(value));
    w32(offset + 4, static_cast<uint32_t>(value >> 32));
  }
  void put_trb(uint64_t at, uint64_t parameter, uint32_t status, uint32_t control) {
    REQUIRE(memory.write_le<uint64_t>(at, parameter));
    REQUIRE(memory.write_le<uint32_t>(at + 8, status));
    REQUIRE(memory.write_le<uint32_t>(at + 12, control));
  }
  // Appends a TRB (cycle bit added), wrapping through a link TRB at the end of the ring.
  uint64_t push(Ring& ring, uint64_t parameter, uint32_t status, uint32_t control) {
    if (ring.enqueue == ring.base + 16 * (kRingTrbs - 1)) {
      put_trb(ring.enqueue, ring.base, 0, (6u << 10) | 2 | (ring.cycle ? 1 : 0));
      ring.enqueue = ring.base;
      ring.cycle = !ring.cycle;
    }
    const uint64_t at = ring.enqueue;
    put_trb(at, parameter, status, (control & ~1u) | (ring.cycle ? 1 : 0));
    ring.enqueue += 16;
    return at;
  }
  void start() {
    w32(kOperational + 0x00, 2);  // HCRST
    CHECK((r32(kOperational + 0x04) & 1) == 1);
    w32(kOperational + 0x38, 64);
    w64(kOperational + 0x30, kDcbaa);
    w64(kOperational + 0x18, kCommandRing | 1);
    REQUIRE(memory.write_le<uint64_t>(kErst, kEventRing));
    REQUIRE(memory.write_le<uint32_t>(kErst + 8, kEventTrbs));
    w32(kRuntime + 0x28, 1);
    w64(kRuntime + 0x38, kEventRing);
    w64(kRuntime + 0x30, kErst);
    w32(kRuntime + 0x20, 2);      // IMAN.IE
    w32(kOperational + 0x00, 5);  // run, interrupts on
    REQUIRE((r32(kOperational + 0x04) & 1) == 0);
  }
  // Takes the next event as Linux does: IP cleared (on INTx; `clear_ip` false as on MSI, where Linux
  // leaves it to the controller), ERDP moved past it with EHB cleared.
  std::optional<Event> event(bool clear_ip = true) {
    Event e;
    e.parameter = *memory.read_le<uint64_t>(event_dequeue);
    e.status = *memory.read_le<uint32_t>(event_dequeue + 8);
    e.control = *memory.read_le<uint32_t>(event_dequeue + 12);
    if (((e.control & 1) != 0) != event_cycle) return std::nullopt;
    event_dequeue += 16;
    if (event_dequeue == kEventRing + 16 * kEventTrbs) {
      event_dequeue = kEventRing;
      event_cycle = !event_cycle;
    }
    if (clear_ip) w32(kRuntime + 0x20, 3);    // clear IP
    w64(kRuntime + 0x38, event_dequeue | 8);  // consume, clear EHB
    return e;
  }
  std::vector<Event> events() {
    std::vector<Event> out;
    while (auto e = event()) out.push_back(*e);
    return out;
  }
  Event command(uint64_t parameter, uint32_t control) {
    const uint64_t at = push(commands, parameter, 0, control);
    w32(kDoorbells, 0);
    auto e = event();
    REQUIRE(e.has_value());
    CHECK(e->type() == 33);
    CHECK(e->parameter == at);
    return *e;
  }
  uint32_t portsc(unsigned port) { return r32(0x440 + 0x10 * (port - 1)); }

  // Enable Slot, Address Device for the device on `port` with its control ring at kEp0Ring.
  unsigned enumerate(unsigned port) {
    w32(0x440 + 0x10 * (port - 1), (1u << 9) | (1u << 4));  // PP | PR
    auto reset = event();
    REQUIRE(reset.has_value());
    CHECK(reset->type() == 34);
    CHECK((reset->parameter >> 24) == port);
    CHECK((portsc(port) & 3) == 3);                          // connected, enabled
    w32(0x440 + 0x10 * (port - 1), (1u << 9) | 0x00fe0000);  // clear the change bits
    Event enabled = command(0, 9u << 10);
    REQUIRE(enabled.code() == 1);
    const unsigned slot = enabled.slot();
    REQUIRE(memory.write_le<uint64_t>(kDcbaa + 8 * slot, kDeviceContext));
    std::vector<uint8_t> zero(0x1000);
    REQUIRE(memory.write(kInputContext, zero));
    REQUIRE(memory.write_le<uint32_t>(kInputContext + 4, 3));                         // add slot, ep0
    REQUIRE(memory.write_le<uint32_t>(kInputContext + 32, (1u << 27) | (3u << 20)));  // 1 entry, HS
    REQUIRE(memory.write_le<uint32_t>(kInputContext + 32 + 4, port << 16));           // root port
    REQUIRE(memory.write_le<uint32_t>(kInputContext + 64 + 4, (64u << 16) | (4u << 3) | (3u << 1)));
    REQUIRE(memory.write_le<uint64_t>(kInputContext + 64 + 8, kEp0Ring | 1));
    Event addressed = command(kInputContext, (11u << 10) | (slot << 24));
    CHECK(addressed.code() == 1);
    return slot;
  }
};

void setup_stage(Driver& d, Ring& ring, uint8_t type, uint8_t request, uint16_t value, uint16_t length,
                 unsigned trt) {
  const uint64_t setup = type | (uint64_t{request} << 8) | (uint64_t{value} << 16) | (uint64_t{length} << 48);
  d.push(ring, setup, 8, (2u << 10) | (1u << 6) | (trt << 16));
}

}  // namespace

TEST_CASE("xhci: capability registers describe qemu-xhci's layout and the ports show connected devices") {
  Driver d;
  auto high = std::make_shared<FakeDevice>(Speed::High);
  auto super = std::make_shared<FakeDevice>(Speed::Super);
  REQUIRE(d.xhci->attach(1, high).ok());
  REQUIRE(d.xhci->attach(2, super).ok());
  CHECK_FALSE(d.xhci->attach(1, std::make_shared<FakeDevice>(Speed::Full)).ok());
  CHECK_FALSE(d.xhci->attach(5, std::make_shared<FakeDevice>(Speed::Full)).ok());
  CHECK((d.r32(0) & 0xff) == 0x40);
  CHECK((d.r32(0) >> 16) == 0x0100);
  CHECK(d.r32(4) == ((8u << 24) | (1u << 8) | 64));
  CHECK(d.r32(0x14) == 0x2000);
  CHECK(d.r32(0x18) == 0x1000);
  CHECK(d.r32(0x24) == 0x20425355);
  CHECK(d.r32(0x28) == 0x0401);  // USB 2: ports 1-4
  CHECK(d.r32(0x38) == 0x0405);  // USB 3: ports 5-8
  d.start();
  // High speed on USB 2 port 1, not yet enabled; SuperSpeed on USB 3 port 6, enabled in U0.
  CHECK((d.portsc(1) & 1) == 1);
  CHECK((d.portsc(1) & 2) == 0);
  CHECK(((d.portsc(1) >> 10) & 0xf) == 3);
  CHECK((d.portsc(6) & 3) == 3);
  CHECK(((d.portsc(6) >> 10) & 0xf) == 4);
  CHECK((d.portsc(2) & 1) == 0);
  CHECK((d.portsc(3) & 1) == 0);
}

// Linux's xhci_irq clears IMAN.IP only when it runs on INTx: on MSI the controller must (xHCI 1.2,
// 5.5.2.1), or the first MSI is the last (seen as Address Device timing out under x86_64 Linux).
TEST_CASE("xhci: on MSI the controller clears IMAN.IP itself, one message per event") {
  Driver d;
  d.message = true;
  d.start();
  for (int i = 0; i < 3; ++i) {
    const size_t before = d.levels.size();
    const uint64_t at = d.push(d.commands, 0, 0, 23u << 10);  // No Op
    d.w32(kDoorbells, 0);
    REQUIRE(d.levels.size() == before + 1);  // one assertion, sent as a message
    CHECK(d.levels.back());
    CHECK((d.r32(kRuntime + 0x20) & 1) == 0);  // IP: already clear
    auto e = d.event(false);
    REQUIRE(e.has_value());
    CHECK(e->type() == 33);
    CHECK(e->parameter == at);
    CHECK(d.levels.size() == before + 1);  // consuming it sends nothing more
  }
  // On INTx the level stays up until the driver clears IP.
  d.message = false;
  const size_t before = d.levels.size();
  d.push(d.commands, 0, 0, 23u << 10);
  d.w32(kDoorbells, 0);
  REQUIRE(d.levels.size() == before + 1);
  CHECK((d.r32(kRuntime + 0x20) & 1) == 1);
  REQUIRE(d.event().has_value());
  CHECK(d.levels.size() == before + 2);
  CHECK_FALSE(d.levels.back());
}

TEST_CASE("xhci: enumerate, control transfers with short packets, bulk loopback through chained TRBs") {
  Driver d;
  auto device = std::make_shared<FakeDevice>(Speed::High);
  REQUIRE(d.xhci->attach(1, device).ok());
  d.start();
  const int resets_before = device->resets;
  const unsigned slot = d.enumerate(1);
  CHECK(device->resets == resets_before + 1);
  CHECK(slot == 1);
  CHECK((*d.memory.read_le<uint32_t>(kDeviceContext + 12) >> 27) == 2);  // addressed
  CHECK((*d.memory.read_le<uint32_t>(kDeviceContext + 32) & 7) == 1);    // ep0 running
  CHECK(d.levels.size() >= 2);  // interrupt raised and cleared per event

  // GET_DESCRIPTOR(device, 64): the device returns 18 bytes, a short packet the data stage reports
  // (ISP), then the status stage's IOC.
  Ring ep0{kEp0Ring, kEp0Ring, true};
  setup_stage(d, ep0, 0x80, 6, 0x0100, 64, 3);
  const uint64_t data = d.push(ep0, kBuffers, 64, (3u << 10) | (1u << 16) | (1u << 2));
  const uint64_t status = d.push(ep0, 0, 0, (4u << 10) | (1u << 5));
  d.w32(kDoorbells + 4 * slot, 1);
  auto events = d.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].type() == 32);
  CHECK(events[0].code() == 13);  // short packet
  CHECK(events[0].parameter == data);
  CHECK((events[0].status & 0xffffff) == 64 - 18);
  CHECK(events[1].code() == 1);
  CHECK(events[1].parameter == status);
  uint8_t got[18];
  REQUIRE(d.memory.read(kBuffers, got));
  CHECK(std::memcmp(got, kDeviceDescriptor, 18) == 0);

  // Configure Endpoint: bulk OUT 0x02 (DCI 4) and bulk IN 0x81 (DCI 3).
  std::vector<uint8_t> zero(0x1000);
  REQUIRE(d.memory.write(kInputContext, zero));
  REQUIRE(d.memory.write_le<uint32_t>(kInputContext + 4, 1 | (1u << 3) | (1u << 4)));
  REQUIRE(d.memory.write_le<uint32_t>(kInputContext + 32, 4u << 27));
  REQUIRE(d.memory.write_le<uint32_t>(kInputContext + 32 * 4 + 4, (512u << 16) | (6u << 3)));
  REQUIRE(d.memory.write_le<uint64_t>(kInputContext + 32 * 4 + 8, kInRing | 1));
  REQUIRE(d.memory.write_le<uint32_t>(kInputContext + 32 * 5 + 4, (512u << 16) | (2u << 3)));
  REQUIRE(d.memory.write_le<uint64_t>(kInputContext + 32 * 5 + 8, kOutRing | 1));
  CHECK(d.command(kInputContext, (12u << 10) | (slot << 24)).code() == 1);
  CHECK((*d.memory.read_le<uint32_t>(kDeviceContext + 12) >> 27) == 3);  // configured
  CHECK((*d.memory.read_le<uint32_t>(kDeviceContext + 32 * 3) & 7) == 1);
  CHECK((*d.memory.read_le<uint32_t>(kDeviceContext) >> 27) == 4);

  // OUT: 700 bytes from two buffers (chained), one event at the end.
  std::vector<uint8_t> pattern(700);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7);
  REQUIRE(d.memory.write(kBuffers + 0x1000, std::span(pattern).first(500)));
  REQUIRE(d.memory.write(kBuffers + 0x3000, std::span(pattern).subspan(500)));
  Ring out{kOutRing, kOutRing, true}, in{kInRing, kInRing, true};
  d.push(out, kBuffers + 0x1000, 500, (1u << 10) | (1u << 4));
  const uint64_t out_last = d.push(out, kBuffers + 0x3000, 200, (1u << 10) | (1u << 5));
  d.w32(kDoorbells + 4 * slot, 4);
  events = d.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].code() == 1);
  CHECK(events[0].parameter == out_last);
  CHECK(((events[0].control >> 16) & 0x1f) == 4);
  CHECK(device->stored == pattern);

  // IN: 1024 asked in two TRBs, 700 come back: short packet on the second.
  d.push(in, kBuffers + 0x5000, 512, (1u << 10) | (1u << 4) | (1u << 2));
  const uint64_t in_last = d.push(in, kBuffers + 0x6000, 512, (1u << 10) | (1u << 5) | (1u << 2));
  d.w32(kDoorbells + 4 * slot, 3);
  events = d.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].code() == 13);
  CHECK(events[0].parameter == in_last);
  CHECK((events[0].status & 0xffffff) == 512 - 188);
  std::vector<uint8_t> back(700);
  REQUIRE(d.memory.read(kBuffers + 0x5000, std::span(back).first(512)));
  REQUIRE(d.memory.read(kBuffers + 0x6000, std::span(back).subspan(512)));
  CHECK(back == pattern);
}

TEST_CASE("xhci: a stall halts the endpoint until Reset Endpoint and Set TR Dequeue") {
  Driver d;
  auto device = std::make_shared<FakeDevice>(Speed::High);
  REQUIRE(d.xhci->attach(1, device).ok());
  d.start();
  const unsigned slot = d.enumerate(1);
  Ring ep0{kEp0Ring, kEp0Ring, true};
  setup_stage(d, ep0, 0xc0, 0x55, 0, 4, 3);
  d.push(ep0, kBuffers, 4, (3u << 10) | (1u << 16));
  d.push(ep0, 0, 0, (4u << 10) | (1u << 5));
  d.w32(kDoorbells + 4 * slot, 1);
  auto events = d.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].code() == 6);
  CHECK((*d.memory.read_le<uint32_t>(kDeviceContext + 32) & 7) == 2);  // halted
  // A doorbell on a halted endpoint does nothing.
  setup_stage(d, ep0, 0x80, 6, 0x0100, 18, 3);
  d.push(ep0, kBuffers, 18, (3u << 10) | (1u << 16));
  d.push(ep0, 0, 0, (4u << 10) | (1u << 5));
  d.w32(kDoorbells + 4 * slot, 1);
  CHECK(d.events().empty());
  CHECK(d.command(0, (14u << 10) | (1u << 16) | (slot << 24)).code() == 1);   // Reset Endpoint
  CHECK((*d.memory.read_le<uint32_t>(kDeviceContext + 32) & 7) == 3);         // stopped
  CHECK(d.command(0, (14u << 10) | (1u << 16) | (slot << 24)).code() == 19);  // not halted now
  // Set TR Dequeue to the second request, which then runs.
  CHECK(d.command((kEp0Ring + 3 * 16) | 1, (16u << 10) | (1u << 16) | (slot << 24)).code() == 1);
  d.w32(kDoorbells + 4 * slot, 1);
  events = d.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].code() == 1);
  // Commands on slots that do not exist, endpoints that are not enabled.
  CHECK(d.command(0, (14u << 10) | (1u << 16) | (9u << 24)).code() == 11);
  CHECK(d.command(0, (15u << 10) | (7u << 16) | (slot << 24)).code() == 12);
  CHECK(d.command(0, (15u << 10) | (0u << 16) | (slot << 24)).code() == 5);
  CHECK(d.command(0, (15u << 10) | (1u << 16) | (200u << 24)).code() == 11);
}

TEST_CASE("xhci: Stop Endpoint cancels the transfer in flight; its late completion is dropped") {
  Driver d;
  auto device = std::make_shared<FakeDevice>(Speed::High);
  REQUIRE(d.xhci->attach(1, device).ok());
  d.start();
  const unsigned slot = d.enumerate(1);
  device->hold = true;
  Ring ep0{kEp0Ring, kEp0Ring, true};
  const uint64_t first = ep0.enqueue;
  setup_stage(d, ep0, 0x80, 6, 0x0100, 18, 3);
  d.push(ep0, kBuffers, 18, (3u << 10) | (1u << 16));
  d.push(ep0, 0, 0, (4u << 10) | (1u << 5));
  d.w32(kDoorbells + 4 * slot, 1);
  CHECK(d.events().empty());
  REQUIRE(device->held.size() == 1);
  d.push(d.commands, 0, 0, (15u << 10) | (1u << 16) | (slot << 24));
  d.w32(kDoorbells, 0);
  auto events = d.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].type() == 32);
  CHECK(events[0].code() == 26);  // stopped
  CHECK(events[0].parameter == first);
  CHECK(events[1].type() == 33);
  CHECK(events[1].code() == 1);
  CHECK(device->cancelled == std::vector<uint8_t>{0});
  CHECK((*d.memory.read_le<uint32_t>(kDeviceContext + 32) & 7) == 3);
  auto [transfer, done] = std::move(device->held.front());
  device->held.clear();
  device->hold = false;
  device->answer(transfer, done);
  CHECK(d.events().empty());
  // The next doorbell restarts the endpoint at the same TD, which completes now.
  d.w32(kDoorbells + 4 * slot, 1);
  events = d.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].code() == 1);
}

TEST_CASE("xhci: a device unplugged on the host is a disconnect on its port; transfers to it fail") {
  Driver d;
  auto device = std::make_shared<FakeDevice>(Speed::High);
  REQUIRE(d.xhci->attach(3, device).ok());
  d.start();
  const unsigned slot = d.enumerate(3);
  REQUIRE(device->presence);
  device->presence(false);
  auto events = d.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].type() == 34);
  CHECK((events[0].parameter >> 24) == 3);
  CHECK((d.portsc(3) & 1) == 0);
  CHECK((d.portsc(3) & (1u << 17)) != 0);
  Ring ep0{kEp0Ring, kEp0Ring, true};
  setup_stage(d, ep0, 0x80, 6, 0x0100, 18, 3);
  d.push(ep0, kBuffers, 18, (3u << 10) | (1u << 16));
  d.push(ep0, 0, 0, (4u << 10) | (1u << 5));
  d.w32(kDoorbells + 4 * slot, 1);
  events = d.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].code() == 4);  // transaction error
  device->presence(true);
  events = d.events();
  REQUIRE(events.size() == 1);
  CHECK((d.portsc(3) & 1) == 1);
}

TEST_CASE("xhci: hostile rings and pointers halt the controller or fail the TD, never the VMM") {
  Driver d;
  auto device = std::make_shared<FakeDevice>(Speed::High);
  REQUIRE(d.xhci->attach(1, device).ok());
  d.start();
  const unsigned slot = d.enumerate(1);

  SUBCASE("a loop of link TRBs on a transfer ring") {
    d.put_trb(kEp0Ring, kEp0Ring + 16, 0, (6u << 10) | 1);
    d.put_trb(kEp0Ring + 16, kEp0Ring, 0, (6u << 10) | 1);
    d.w32(kDoorbells + 4 * slot, 1);
    auto events = d.events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].code() == 5);
    CHECK_FALSE(d.xhci->host_system_error());
  }
  SUBCASE("a loop of link TRBs on the command ring") {
    d.put_trb(d.commands.enqueue, d.commands.enqueue, 0, (6u << 10) | 1);
    d.w32(kDoorbells, 0);
    CHECK(d.events().empty());
  }
  SUBCASE("a data buffer outside guest memory") {
    Ring ep0{kEp0Ring, kEp0Ring, true};
    setup_stage(d, ep0, 0x80, 6, 0x0100, 18, 3);
    d.push(ep0, 0xfffffffffff00000ull, 18, (3u << 10) | (1u << 16));
    d.push(ep0, 0, 0, (4u << 10) | (1u << 5));
    d.w32(kDoorbells + 4 * slot, 1);
    CHECK(d.xhci->host_system_error());
    CHECK(d.xhci->halted());
  }
  SUBCASE("a huge TD length and a bad setup TRB") {
    Ring ep0{kEp0Ring, kEp0Ring, true};
    d.push(ep0, 0, 8, (2u << 10));  // setup without immediate data
    d.push(ep0, 0, 0, (4u << 10) | (1u << 5));
    d.w32(kDoorbells + 4 * slot, 1);
    auto events = d.events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].code() == 5);
  }
  SUBCASE("a device context array outside guest memory") {
    d.w64(kOperational + 0x30, 0xfff0000000000000ull);
    d.push(d.commands, 0, 0, (15u << 10) | (1u << 16) | (slot << 24));
    d.w32(kDoorbells, 0);
    CHECK(d.xhci->host_system_error());
  }
  SUBCASE("an event ring the driver never consumes") {
    for (int i = 0; i < 40; ++i) d.push(d.commands, 0, 0, 23u << 10);
    d.w32(kDoorbells, 0);
    for (int i = 0; i < 40; ++i) d.push(d.commands, 0, 0, 23u << 10);
    d.w32(kDoorbells, 0);  // whatever did not fit is dropped
    auto events = d.events();
    CHECK(events.size() == kEventTrbs - 1);
    for (const Event& e : events) CHECK(e.code() == 1);
    // Consumed: events flow again.
    CHECK(d.command(0, 23u << 10).code() == 1);
  }
}

TEST_CASE("xhci: random rings, contexts and register writes never crash the VMM") {
  std::mt19937_64 random(20261207);
  for (int round = 0; round < 40; ++round) {
    Driver d;
    auto device = std::make_shared<FakeDevice>(round % 2 ? Speed::High : Speed::Super);
    REQUIRE(d.xhci->attach(1 + round % 4, device).ok());
    d.start();
    // Random bytes where the driver keeps its structures, some plausible TRB types among them.
    for (uint64_t at = 0; at < 0x20000; at += 8) {
      uint64_t value = random();
      if (at % 16 == 8 && random() % 2)
        value = (value & 0xffff03ff00000000ull) | ((value & 1) << 32) | (uint64_t{1 + random() % 24} << 42);
      REQUIRE(d.memory.write_le<uint64_t>(at, value));
    }
    for (int step = 0; step < 400; ++step) {
      const uint64_t choice = random() % 10;
      if (choice < 5) {
        d.w32(kDoorbells + 4 * (random() % 70), static_cast<uint32_t>(random() % 40));
      } else if (choice < 7) {
        d.w32((random() % 0x4000) & ~3ull, static_cast<uint32_t>(random()));
      } else if (choice < 8) {
        const uint64_t offset = kOperational + 0x400 + 0x10 * (random() % 8);
        d.w32(offset, static_cast<uint32_t>(random()));
      } else if (choice < 9) {
        uint8_t bytes[8];
        d.xhci->read(random() % 0x4000, std::span(bytes, 1 + random() % 8));
      } else if (device->presence) {
        device->presence(random() % 2);
      }
    }
  }
}

TEST_CASE("xhci: after shutdown a late completion touches nothing") {
  Driver d;
  auto device = std::make_shared<FakeDevice>(Speed::High);
  REQUIRE(d.xhci->attach(1, device).ok());
  d.start();
  const unsigned slot = d.enumerate(1);
  device->hold = true;
  Ring ep0{kEp0Ring, kEp0Ring, true};
  setup_stage(d, ep0, 0x80, 6, 0x0100, 18, 3);
  d.push(ep0, kBuffers, 18, (3u << 10) | (1u << 16));
  d.push(ep0, 0, 0, (4u << 10) | (1u << 5));
  d.w32(kDoorbells + 4 * slot, 1);
  REQUIRE(device->held.size() == 1);
  d.xhci->shutdown();
  CHECK(device->cancelled == std::vector<uint8_t>{0});
  std::vector<uint8_t> before(18), after(18);
  REQUIRE(d.memory.read(kBuffers, before));
  auto [transfer, done] = std::move(device->held.front());
  device->held.clear();
  device->hold = false;
  device->answer(transfer, done);
  device->presence(false);
  REQUIRE(d.memory.read(kBuffers, after));
  CHECK(before == after);
  CHECK(d.events().empty());
}
