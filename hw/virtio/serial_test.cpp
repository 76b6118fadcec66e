// virtio-serial (MULTIPORT) through a real transport, playing Linux's virtio_console driver: the
// control handshake, named and console ports, data both ways, and control messages a hostile
// driver sends.
#include "hw/virtio/serial.h"

#include <doctest/doctest.h>

#include <cstring>

#include "hw/virtio/test_backends.h"
#include "hw/virtio/test_harness.h"

using namespace hw::virtio;
using namespace hw::virtio::testing;

namespace {

struct Control {
  uint32_t id;
  uint16_t event, value;
  std::string extra;
};

struct Fixture {
  std::shared_ptr<RecordingChardev> console = std::make_shared<RecordingChardev>();
  std::shared_ptr<RecordingChardev> data = std::make_shared<RecordingChardev>();
  std::shared_ptr<SerialDevice> device;
  std::unique_ptr<Harness> h;
  uint16_t control_rx_used = 0, control_tx_used = 0;

  Fixture() {
    std::vector<SerialDevice::PortSpec> ports;
    ports.push_back({0, "con.0", true, console});
    ports.push_back({2, "org.test.data", false, data});
    device = std::make_shared<SerialDevice>(std::move(ports));
    h = std::make_unique<Harness>(device);
    REQUIRE(h->bring_up());
  }
  ~Fixture() { h.reset(); }

  // Offers `n` receive buffers of 64 bytes on control rx (queue 2).
  std::vector<uint64_t> offer_control_rx(int n) {
    std::vector<uint64_t> out;
    for (int i = 0; i < n; ++i) {
      uint64_t gpa = h->queue(2).alloc(64);
      h->queue(2).offer({{gpa, 64, true}});
      out.push_back(gpa);
    }
    h->kick(2);
    return out;
  }
  void send_control(uint32_t id, uint16_t event, uint16_t value, uint32_t len = 8) {
    uint64_t gpa = h->queue(3).alloc(8);
    h->memory.write_le<uint32_t>(gpa, id);
    h->memory.write_le<uint16_t>(gpa + 4, event);
    h->memory.write_le<uint16_t>(gpa + 6, value);
    h->queue(3).offer({{gpa, len, false}});
    h->kick(3);
    REQUIRE(h->wait_used(3, ++control_tx_used));
  }
  // The control messages the device has completed since the last call, from `buffers`.
  std::vector<Control> received(const std::vector<uint64_t>& buffers) {
    std::vector<Control> out;
    while (h->queue(2).used_idx() != control_rx_used) {
      auto [head, len] = h->queue(2).used(control_rx_used++);
      uint64_t gpa = buffers.at(head % buffers.size());
      Control c{*h->memory.read_le<uint32_t>(gpa), *h->memory.read_le<uint16_t>(gpa + 4),
                *h->memory.read_le<uint16_t>(gpa + 6), ""};
      if (len > 8) c.extra = h->queue(2).read_string(gpa + 8, len - 8);
      out.push_back(c);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("virtio-serial: MULTIPORT with max_nr_ports from the highest port") {
  Fixture f;
  CHECK((f.device->features() & SerialDevice::kFeatureMultiport) != 0);
  CHECK(f.h->read32(0x100 + 4) == 3);  // ports 0 and 2: max_nr_ports 3
  CHECK(f.device->num_queues() == 8);
}

TEST_CASE("virtio-serial: the handshake announces ports, names, the console, and opens them") {
  Fixture f;
  auto buffers = f.offer_control_rx(16);
  f.send_control(0, SerialDevice::kDeviceReady, 1);
  auto adds = f.received(buffers);
  REQUIRE(adds.size() == 2);
  CHECK(adds[0].id == 0);
  CHECK(adds[0].event == SerialDevice::kDeviceAdd);
  CHECK(adds[1].id == 2);

  f.send_control(2, SerialDevice::kPortReady, 1);
  auto ready = f.received(buffers);
  REQUIRE(ready.size() == 2);
  CHECK(ready[0].event == SerialDevice::kPortName);
  CHECK(ready[0].extra == std::string("org.test.data") + '\0');
  CHECK(ready[1].event == SerialDevice::kPortOpen);
  CHECK(ready[1].value == 1);

  f.send_control(0, SerialDevice::kPortReady, 1);
  auto console = f.received(buffers);
  REQUIRE(console.size() == 3);
  CHECK(console[0].event == SerialDevice::kConsolePort);
  CHECK(console[1].event == SerialDevice::kPortName);
  CHECK(console[2].event == SerialDevice::kPortOpen);
}

TEST_CASE("virtio-serial: control messages wait for receive buffers") {
  Fixture f;
  f.send_control(0, SerialDevice::kDeviceReady, 1);  // no buffers yet
  CHECK(f.h->queue(2).used_idx() == 0);
  auto buffers = f.offer_control_rx(4);
  REQUIRE(f.h->wait_used(2, 2));
  CHECK(f.received(buffers).size() == 2);
}

TEST_CASE("virtio-serial: port data goes to its own chardev; host data waits for the guest to open") {
  Fixture f;
  auto buffers = f.offer_control_rx(16);
  f.send_control(0, SerialDevice::kDeviceReady, 1);
  f.send_control(2, SerialDevice::kPortReady, 1);
  // Port 2's transmitq is queue 7.
  uint64_t out = f.h->queue(7).alloc(5, "hello");
  f.h->queue(7).offer({{out, 5, false}});
  f.h->kick(7);
  REQUIRE(f.h->wait_used(7, 1));
  CHECK(f.data->text() == "hello");
  CHECK(f.console->text().empty());

  // Receive buffer on queue 6; the guest has not opened the port: the chardev is told no room.
  uint64_t in = f.h->queue(6).alloc(16);
  f.h->queue(6).offer({{in, 16, true}});
  CHECK(f.data->receiver->can_receive() == 0);
  f.send_control(2, SerialDevice::kPortOpen, 1);
  CHECK(f.device->guest_connected(2));
  REQUIRE(f.data->receiver->can_receive() == 16);
  const uint8_t bytes[] = {'h', 'o', 's', 't'};
  f.data->receiver->receive(bytes);
  REQUIRE(f.h->wait_used(6, 1));
  CHECK(f.h->queue(6).used(0).second == 4);
  CHECK(f.h->queue(6).read_string(in, 4) == "host");
  f.send_control(2, SerialDevice::kPortOpen, 0);
  CHECK(f.data->receiver->can_receive() == 0);
}

TEST_CASE("virtio-serial: hostile control messages are ignored and counted") {
  Fixture f;
  auto buffers = f.offer_control_rx(16);
  f.send_control(30, SerialDevice::kPortReady, 1);         // no such port
  f.send_control(0xffffffff, SerialDevice::kPortOpen, 1);  // no such port
  f.send_control(2, SerialDevice::kDeviceAdd, 1);          // a device-only event
  f.send_control(2, 0x7777, 1);                            // unknown event
  f.send_control(2, SerialDevice::kPortOpen, 1, 4);        // short message
  CHECK(f.device->bad_control() == 5);
  CHECK_FALSE(f.device->guest_connected(2));
  CHECK(f.received(buffers).empty());
  // Port ready repeated many times with no receive buffers left: the pending queue is bounded.
  for (int i = 0; i < 200; ++i) f.send_control(2, SerialDevice::kPortReady, 1);
  CHECK(f.device->bad_control() > 5);
  CHECK_FALSE(f.h->needs_reset());
}

TEST_CASE("virtio-serial has no snapshot state yet: a snapshot is refused, naming it") {
  Fixture f;
  auto why = f.h->transport->cannot_save();
  REQUIRE(why.has_value());
  CHECK(*why == "virtio-serial cannot save its state yet");
}
