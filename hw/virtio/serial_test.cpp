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

TEST_CASE("virtio-serial snapshot: open ports and undelivered control messages carry over") {
  Fixture f;
  auto buffers = f.offer_control_rx(2);
  f.send_control(0, SerialDevice::kDeviceReady, 1);
  f.send_control(2, SerialDevice::kPortOpen, 1);   // the guest opened port 2
  f.send_control(0, SerialDevice::kPortReady, 1);  // three answers, no receive buffers left for them
  REQUIRE(f.received(buffers).size() == 2);        // the two DEVICE_ADDs
  CHECK_FALSE(f.h->transport->cannot_save().has_value());
  f.h->transport->quiesce();
  hw::StateWriter out;
  f.device->save_state(out);
  f.h->transport->unquiesce();
  CHECK(f.device->guest_connected(2));  // quiescing keeps what the guest negotiated

  // A fresh device of the same config, activated on its own queues, then loaded.
  Fixture g;
  CHECK_FALSE(g.device->guest_connected(2));
  g.h->transport->quiesce();
  hw::StateReader in(out.data());
  REQUIRE(g.device->load_state(in, 1).ok());
  g.h->transport->unquiesce();
  CHECK(g.device->guest_connected(2));
  CHECK_FALSE(g.device->guest_connected(0));
  auto more = g.offer_control_rx(4);  // the console's three answers arrive once there is room
  REQUIRE(g.h->wait_used(2, 3));
  auto answers = g.received(more);
  REQUIRE(answers.size() == 3);
  CHECK(answers[0].event == SerialDevice::kConsolePort);
  CHECK(answers[1].extra == std::string("con.0") + '\0');
  CHECK(answers[2].event == SerialDevice::kPortOpen);
  // Port 2 takes host bytes at once: the guest has it open.
  uint64_t rx = g.h->queue(6).alloc(8);
  g.h->queue(6).offer({{rx, 8, true}});
  REQUIRE(g.data->receiver->can_receive() == 8);
  const uint8_t bytes[] = {'b', 'a', 'c', 'k'};
  g.data->receiver->receive(bytes);
  REQUIRE(g.h->wait_used(6, 1));
  CHECK(g.h->queue(6).read_string(rx, 4) == "back");
}

TEST_CASE("virtio-serial snapshot: a receive buffer taken but not filled survives quiescing") {
  Fixture f;
  auto buffers = f.offer_control_rx(8);
  f.send_control(2, SerialDevice::kPortOpen, 1);
  uint64_t rx = f.h->queue(6).alloc(4);
  f.h->queue(6).offer({{rx, 4, true}});
  REQUIRE(f.data->receiver->can_receive() == 4);  // popped, nothing written yet
  f.h->transport->quiesce();
  CHECK(f.data->receiver->can_receive() == 0);
  f.h->transport->unquiesce();
  REQUIRE(f.data->receiver->can_receive() == 4);  // popped again from the ring
  const uint8_t bytes[] = {'o', 'k'};
  f.data->receiver->receive(bytes);
  REQUIRE(f.h->wait_used(6, 1));
  CHECK(f.h->queue(6).read_string(rx, 2) == "ok");
}

TEST_CASE("virtio-serial snapshot: a saved state of another shape is refused") {
  Fixture f;
  hw::StateWriter out;
  f.device->save_state(out);
  std::vector<uint8_t> bytes = out.take();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    Fixture g;
    hw::StateReader in(std::span<const uint8_t>(bytes).first(cut));
    CHECK_FALSE(g.device->load_state(in, 1).ok());
  }
  bytes[4] = 7;  // the first port's id
  Fixture g;
  hw::StateReader in(bytes);
  CHECK_FALSE(g.device->load_state(in, 1).ok());
  hw::StateReader again(bytes);
  CHECK_FALSE(g.device->load_state(again, 2).ok());
}
