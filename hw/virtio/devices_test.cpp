#include <doctest/doctest.h>

#include <map>

#include "hw/virtio/blk.h"
#include "hw/virtio/console.h"
#include "hw/virtio/rng.h"
#include "hw/virtio/test_backends.h"
#include "hw/virtio/test_harness.h"

using namespace hw::virtio;
using namespace hw::virtio::testing;

namespace {

struct BlkFixture {
  std::shared_ptr<MemoryDisk> disk;
  std::shared_ptr<BlkDevice> device;
  std::unique_ptr<Harness> h;
  uint16_t done = 0;

  explicit BlkFixture(bool read_only = false, uint64_t size = 1 << 20,
                      std::string serial = "disk-serial-0001") {
    disk = std::make_shared<MemoryDisk>(size);
    BlkDevice::Options options;
    options.serial = serial;
    options.read_only = read_only;
    device = std::make_shared<BlkDevice>(disk, options);
    h = std::make_unique<Harness>(device);
    REQUIRE(h->bring_up());
  }
  ~BlkFixture() { h.reset(); }

  uint64_t header(uint32_t type, uint64_t sector) {
    uint64_t gpa = h->queue(0).alloc(16);
    h->memory.write_le<uint32_t>(gpa, type);
    h->memory.write_le<uint32_t>(gpa + 4, 0);
    h->memory.write_le<uint64_t>(gpa + 8, sector);
    return gpa;
  }
  // Submits a chain and waits for it; returns (status byte, used length).
  std::pair<uint8_t, uint32_t> run(std::vector<Buffer> buffers, uint64_t status_gpa) {
    h->queue(0).offer(buffers);
    h->kick(0);
    REQUIRE(h->wait_used(0, ++done));
    return {*h->memory.read_le<uint8_t>(status_gpa), h->queue(0).used(done - 1).second};
  }
  std::pair<uint8_t, uint32_t> request(uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
                                       bool writable) {
    uint64_t status = h->queue(0).alloc(1);
    h->memory.write_le<uint8_t>(status, 0xee);
    std::vector<Buffer> buffers{{header(type, sector), 16, false}};
    if (len) buffers.push_back({data, len, writable});
    buffers.push_back({status, 1, true});
    return run(buffers, status);
  }
};

}  // namespace

TEST_CASE("virtio-blk: config space reports capacity and limits") {
  BlkFixture f;
  CHECK(f.h->read32(0x100) == (1 << 20) / 512);
  CHECK(f.h->read32(0x104) == 0);
  CHECK(f.h->read32(0x100 + 20) == 512);
  uint64_t features = f.device->features();
  CHECK((features & BlkDevice::kFeatureFlush) != 0);
  CHECK((features & BlkDevice::kFeatureDiscard) != 0);
  CHECK((features & BlkDevice::kFeatureRo) == 0);
}

TEST_CASE("virtio-blk: write then read back") {
  BlkFixture f;
  std::string sector(512, 'A');
  sector[0] = 'Z';
  uint64_t out = f.h->queue(0).alloc(512, sector);
  auto [status, used] = f.request(BlkDevice::kTypeOut, 3, out, 512, false);
  CHECK(status == BlkDevice::kStatusOk);
  CHECK(used == 1);
  CHECK(f.disk->data[3 * 512] == 'Z');
  uint64_t in = f.h->queue(0).alloc(512);
  auto [rstatus, rused] = f.request(BlkDevice::kTypeIn, 3, in, 512, true);
  CHECK(rstatus == BlkDevice::kStatusOk);
  CHECK(rused == 513);
  CHECK(f.h->queue(0).read_string(in, 512) == sector);

  // query-stats: the transport counted both kicks and the interrupts, the device no bad request.
  std::map<std::string, uint64_t> counters;
  for (const auto& [name, value] : f.h->transport->core().counters()) counters[name] = value;
  CHECK(counters["kicks"] == 2);
  CHECK(counters["interrupts"] >= 1);  // the driver may suppress some (event index)
  CHECK(counters["bad_requests"] == 0);
  CHECK(counters["io_errors"] == 0);
  CHECK(counters.count("driver_faults") == 1);
}

TEST_CASE("virtio-blk: read spanning several segments via an indirect table") {
  BlkFixture f;
  for (int i = 0; i < 1024; ++i) f.disk->data[i] = static_cast<uint8_t>(i / 4);
  uint64_t a = f.h->queue(0).alloc(512), b = f.h->queue(0).alloc(512), status = f.h->queue(0).alloc(1);
  f.h->queue(0).offer_indirect(
      {{f.header(BlkDevice::kTypeIn, 0), 16, false}, {a, 512, true}, {b, 512, true}, {status, 1, true}});
  f.h->kick(0);
  REQUIRE(f.h->wait_used(0, 1));
  CHECK(*f.h->memory.read_le<uint8_t>(status) == 0);
  CHECK(*f.h->memory.read_le<uint8_t>(b + 4) == (512 + 4) / 4);
}

TEST_CASE("virtio-blk: flush reaches the backend") {
  BlkFixture f;
  auto [status, used] = f.request(BlkDevice::kTypeFlush, 0, 0, 0, false);
  CHECK(status == BlkDevice::kStatusOk);
  CHECK(f.disk->flushes == 1);
}

TEST_CASE("virtio-blk: GET_ID returns the serial") {
  BlkFixture f;
  uint64_t id = f.h->queue(0).alloc(20);
  auto [status, used] = f.request(BlkDevice::kTypeGetId, 0, id, 20, true);
  CHECK(status == BlkDevice::kStatusOk);
  CHECK(f.h->queue(0).read_string(id, 16) == "disk-serial-0001");
}

TEST_CASE("virtio-blk: discard and write-zeroes clear the ranges") {
  BlkFixture f;
  std::fill(f.disk->data.begin(), f.disk->data.end(), 0x5a);
  uint64_t range = f.h->queue(0).alloc(16);
  f.h->memory.write_le<uint64_t>(range, 8);
  f.h->memory.write_le<uint32_t>(range + 8, 8);
  f.h->memory.write_le<uint32_t>(range + 12, 0);
  auto [status, used] = f.request(BlkDevice::kTypeDiscard, 0, range, 16, false);
  CHECK(status == BlkDevice::kStatusOk);
  CHECK(f.disk->discards == 1);
  CHECK(f.disk->data[8 * 512] == 0);
  CHECK(f.disk->data[16 * 512] == 0x5a);
  f.h->memory.write_le<uint64_t>(range, 100);
  f.h->memory.write_le<uint32_t>(range + 12, 1);  // UNMAP allowed for write-zeroes
  auto [zstatus, zused] = f.request(BlkDevice::kTypeWriteZeroes, 0, range, 16, false);
  CHECK(zstatus == BlkDevice::kStatusOk);
  CHECK(f.disk->data[100 * 512 + 5] == 0);
}

TEST_CASE("virtio-blk: read-only refuses writes and advertises RO") {
  BlkFixture f(true);
  CHECK((f.device->features() & BlkDevice::kFeatureRo) != 0);
  uint64_t out = f.h->queue(0).alloc(512, std::string(512, 'x'));
  auto [status, used] = f.request(BlkDevice::kTypeOut, 0, out, 512, false);
  CHECK(status == BlkDevice::kStatusIoErr);
  CHECK(f.disk->data[0] == 0);
}

TEST_CASE("virtio-blk: out-of-range and unaligned requests fail with IOERR") {
  BlkFixture f;
  uint64_t in = f.h->queue(0).alloc(1024);
  CHECK(f.request(BlkDevice::kTypeIn, 2047, in, 1024, true).first == BlkDevice::kStatusIoErr);
  CHECK(f.request(BlkDevice::kTypeIn, ~0ull / 256, in, 512, true).first == BlkDevice::kStatusIoErr);
  CHECK(f.request(BlkDevice::kTypeIn, 0, in, 100, true).first == BlkDevice::kStatusIoErr);
  CHECK(f.device->bad_requests() == 3);
  CHECK_FALSE(f.h->needs_reset());
}

TEST_CASE("virtio-blk: unknown request type is UNSUPP") {
  BlkFixture f;
  CHECK(f.request(99, 0, 0, 0, false).first == BlkDevice::kStatusUnsupp);
}

TEST_CASE("virtio-blk: request without a status byte completes empty") {
  BlkFixture f;
  f.h->queue(0).offer({{f.header(BlkDevice::kTypeIn, 0), 16, false}});
  f.h->kick(0);
  REQUIRE(f.h->wait_used(0, 1));
  CHECK(f.h->queue(0).used(0).second == 0);
  CHECK(f.device->bad_requests() == 1);
}

TEST_CASE("virtio-blk: short header is IOERR") {
  BlkFixture f;
  uint64_t half = f.h->queue(0).alloc(8), status = f.h->queue(0).alloc(1);
  auto [s, used] = f.run({{half, 8, false}, {status, 1, true}}, status);
  CHECK(s == BlkDevice::kStatusIoErr);
}

TEST_CASE("virtio-blk: many requests in flight all complete") {
  BlkFixture f;
  std::vector<uint64_t> statuses;
  // 5 chains of 3 descriptors fill the 16-entry table.
  for (int i = 0; i < 5; ++i) {
    uint64_t data = f.h->queue(0).alloc(512, std::string(512, char('a' + i)));
    uint64_t status = f.h->queue(0).alloc(1);
    statuses.push_back(status);
    f.h->queue(0).offer(
        {{f.header(BlkDevice::kTypeOut, i), 16, false}, {data, 512, false}, {status, 1, true}});
  }
  f.h->kick(0);
  REQUIRE(f.h->wait_used(0, 5));
  for (int i = 0; i < 5; ++i) CHECK(f.disk->data[i * 512 + 7] == 'a' + i);
}

TEST_CASE("virtio-rng: fills several writable segments") {
  auto device = std::make_shared<RngDevice>(std::make_shared<CountingRng>());
  Harness h(device);
  REQUIRE(h.bring_up());
  uint64_t a = h.queue(0).alloc(3), b = h.queue(0).alloc(2);
  h.queue(0).offer({{a, 3, true}, {b, 2, true}});
  h.kick(0);
  REQUIRE(h.wait_used(0, 1));
  CHECK(h.queue(0).used(0).second == 5);
  CHECK(h.queue(0).read_string(b, 2) == "\x04\x05");
}

TEST_CASE("virtio-console: guest output reaches the chardev") {
  auto chardev = std::make_shared<RecordingChardev>();
  auto device = std::make_shared<ConsoleDevice>(chardev);
  Harness h(device);
  REQUIRE(h.bring_up());
  uint64_t text = h.queue(1).alloc(6, "hello\n");
  h.queue(1).offer({{text, 6, false}});
  h.kick(1);
  REQUIRE(h.wait_used(1, 1));
  CHECK(chardev->text() == "hello\n");
}

TEST_CASE("virtio-console: input fills offered buffers and never more") {
  auto chardev = std::make_shared<RecordingChardev>();
  auto device = std::make_shared<ConsoleDevice>(chardev);
  Harness h(device);
  REQUIRE(chardev->receiver == device.get());
  CHECK(device->can_receive() == 0);  // not yet activated
  REQUIRE(h.bring_up());
  CHECK(device->can_receive() == 0);  // no buffers offered
  uint64_t buffer = h.queue(0).alloc(4);
  h.queue(0).offer({{buffer, 4, true}});
  CHECK(device->can_receive() == 4);
  const uint8_t input[] = {'l', 's', '\r'};
  device->receive(input);
  REQUIRE(h.wait_used(0, 1));
  CHECK(h.queue(0).used(0).second == 3);
  CHECK(h.queue(0).read_string(buffer, 3) == "ls\r");
  CHECK(device->can_receive() == 0);
  CHECK(h.irq.level());
}

TEST_CASE("virtio-console snapshot: a receive buffer taken but not filled survives quiescing") {
  auto chardev = std::make_shared<RecordingChardev>();
  auto device = std::make_shared<ConsoleDevice>(chardev);
  Harness h(device);
  REQUIRE(h.bring_up());
  CHECK_FALSE(h.transport->cannot_save().has_value());
  uint64_t buffer = h.queue(0).alloc(4);
  h.queue(0).offer({{buffer, 4, true}});
  REQUIRE(device->can_receive() == 4);  // the device has popped the buffer, nothing written yet
  h.transport->quiesce();               // a snapshot: the buffer must not be lost with the device
  CHECK(device->can_receive() == 0);
  h.transport->unquiesce();
  REQUIRE(device->can_receive() == 4);  // popped again from the ring
  const uint8_t input[] = {'o', 'k'};
  device->receive(input);
  REQUIRE(h.wait_used(0, 1));
  CHECK(h.queue(0).read_string(buffer, 2) == "ok");
}

TEST_CASE("virtio-console: emergency write goes to the chardev") {
  auto chardev = std::make_shared<RecordingChardev>();
  auto device = std::make_shared<ConsoleDevice>(chardev);
  Harness h(device);
  uint8_t c = '!';
  h.transport->write(0x100 + 8, {&c, 1});
  CHECK(chardev->text() == "!");
  CHECK(h.read32(0x100) == (25u << 16 | 80));
}

#include "hw/virtio/net.h"

TEST_CASE("virtio-net: MAC in config, TX strips the header, RX adds it") {
  auto net = std::make_shared<RecordingNet>();
  auto device = std::make_shared<NetDevice>(net, MacAddress{0x52, 0x54, 0, 1, 2, 3});
  Harness h(device);
  CHECK(h.read32(0x100) == 0x01005452u);
  REQUIRE(h.bring_up());
  // TX: header + frame split over two descriptors.
  uint64_t header = h.queue(1).alloc(12, std::string(12, '\0'));
  uint64_t frame = h.queue(1).alloc(14, "ETHERNETFRAME!");
  h.queue(1).offer({{header, 12, false}, {frame, 14, false}});
  h.kick(1);
  REQUIRE(h.wait_used(1, 1));
  REQUIRE(net->sent.size() == 1);
  CHECK(std::string(net->sent[0].begin(), net->sent[0].end()) == "ETHERNETFRAME!");
  // RX: no buffer posted -> the backend must keep the frame.
  const uint8_t incoming[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  CHECK_FALSE(device->receive_frame(incoming));
  uint64_t rx = h.queue(0).alloc(1526);
  h.queue(0).offer({{rx, 1526, true}});
  CHECK(device->receive_frame(incoming));
  REQUIRE(h.wait_used(0, 1));
  CHECK(h.queue(0).used(0).second == 12 + 15);
  CHECK(*h.memory.read_le<uint16_t>(rx + 10) == 1);  // num_buffers
  CHECK(*h.memory.read_le<uint8_t>(rx + 12) == 1);
  // A buffer too small for the frame comes back empty and the frame is counted as dropped.
  uint64_t tiny = h.queue(0).alloc(16);
  h.queue(0).offer({{tiny, 16, true}});
  CHECK(device->receive_frame(incoming));
  CHECK(device->dropped_rx() == 1);
}

TEST_CASE("virtio-net: a TX chain without a full header is dropped, not fatal") {
  auto net = std::make_shared<RecordingNet>();
  auto device = std::make_shared<NetDevice>(net, MacAddress{});
  Harness h(device);
  REQUIRE(h.bring_up());
  uint64_t short_header = h.queue(1).alloc(4);
  h.queue(1).offer({{short_header, 4, false}});
  h.kick(1);
  REQUIRE(h.wait_used(1, 1));
  CHECK(net->sent.empty());
  CHECK(device->dropped_tx() == 1);
  CHECK_FALSE(h.needs_reset());
}

TEST_CASE("virtio-blk over io_uring: reads, writes and flushes complete asynchronously") {
  auto disk = std::make_shared<FdDisk>(1 << 20);
  auto device = std::make_shared<BlkDevice>(disk, BlkDevice::Options{"uring-disk", false, 256, 1, 1, true});
  Harness h(device, 64);
  REQUIRE(h.bring_up());
  if (!device->using_io_uring()) {
    MESSAGE("io_uring unavailable here: the worker threads served the requests");
  }
  auto header = [&](uint32_t type, uint64_t sector) {
    uint64_t gpa = h.queue(0).alloc(16);
    h.memory.write_le<uint32_t>(gpa, type);
    h.memory.write_le<uint64_t>(gpa + 8, sector);
    return gpa;
  };
  // Eight writes in flight at once, each two segments, then a flush.
  std::vector<uint64_t> statuses;
  for (int i = 0; i < 8; ++i) {
    uint64_t a = h.queue(0).alloc(512, std::string(512, char('A' + i)));
    uint64_t b = h.queue(0).alloc(512, std::string(512, char('a' + i)));
    uint64_t status = h.queue(0).alloc(1);
    h.memory.write_le<uint8_t>(status, 0xee);
    statuses.push_back(status);
    h.queue(0).offer({{header(BlkDevice::kTypeOut, 2 * i), 16, false},
                      {a, 512, false},
                      {b, 512, false},
                      {status, 1, true}});
  }
  uint64_t flush_status = h.queue(0).alloc(1);
  h.queue(0).offer({{header(BlkDevice::kTypeFlush, 0), 16, false}, {flush_status, 1, true}});
  h.kick(0);
  REQUIRE(h.wait_used(0, 9));
  for (uint64_t status : statuses) CHECK(*h.memory.read_le<uint8_t>(status) == BlkDevice::kStatusOk);
  CHECK(*h.memory.read_le<uint8_t>(flush_status) == BlkDevice::kStatusOk);
  // Read back sectors 4-5 (request 2) in one request.
  uint64_t in = h.queue(0).alloc(1024), in_status = h.queue(0).alloc(1);
  h.queue(0).offer({{header(BlkDevice::kTypeIn, 4), 16, false}, {in, 1024, true}, {in_status, 1, true}});
  h.kick(0);
  REQUIRE(h.wait_used(0, 10));
  CHECK(*h.memory.read_le<uint8_t>(in_status) == BlkDevice::kStatusOk);
  CHECK(h.queue(0).read_string(in, 1024) == std::string(512, 'C') + std::string(512, 'c'));
  CHECK(h.queue(0).used(9).second == 1025);
  // Out of range still fails cleanly (the synchronous path answers it).
  uint64_t bad_status = h.queue(0).alloc(1);
  h.queue(0).offer({{header(BlkDevice::kTypeIn, 4096), 16, false}, {in, 512, true}, {bad_status, 1, true}});
  h.kick(0);
  REQUIRE(h.wait_used(0, 11));
  CHECK(*h.memory.read_le<uint8_t>(bad_status) == BlkDevice::kStatusIoErr);
  if (device->using_io_uring()) CHECK(disk->sync_calls.load() == 0);  // no backend call needed
}
