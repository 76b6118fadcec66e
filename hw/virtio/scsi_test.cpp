// virtio-scsi through a real transport: request/response layout, LUN addressing, overruns, task
// management, and requests a hostile driver shapes badly.
#include "hw/virtio/scsi.h"

#include <doctest/doctest.h>

#include "hw/virtio/test_backends.h"
#include "hw/virtio/test_harness.h"

using namespace hw::virtio;
using namespace hw::virtio::testing;

namespace {

constexpr uint32_t kHeader = 19 + 32, kResponse = 12 + 96;

struct Fixture {
  std::shared_ptr<MemoryDisk> disk0 = std::make_shared<MemoryDisk>(1 << 20);
  std::shared_ptr<MemoryDisk> cd = std::make_shared<MemoryDisk>(8 * 2048);
  std::shared_ptr<MemoryDisk> lun3 = std::make_shared<MemoryDisk>(1 << 20);
  std::shared_ptr<ScsiDevice> device;
  std::unique_ptr<Harness> h;
  uint16_t done = 0;

  Fixture() {
    // Target 0: LUNs 0 and 3 (a gap between); target 2: a CD at LUN 0.
    std::map<uint16_t, ScsiDevice::Target> targets;
    targets[0][0] = std::make_shared<hw::scsi::Disk>(disk0, hw::scsi::Disk::Options{});
    targets[0][3] = std::make_shared<hw::scsi::Disk>(lun3, hw::scsi::Disk::Options{});
    targets[2][0] = std::make_shared<hw::scsi::Disk>(
        cd, hw::scsi::Disk::Options{hw::scsi::Disk::Kind::Cd, "", "cd0", false});
    device = std::make_shared<ScsiDevice>(std::move(targets), ScsiDevice::Options{});
    h = std::make_unique<Harness>(device);
    REQUIRE(h->bring_up());
  }
  ~Fixture() { h.reset(); }

  uint64_t header(std::vector<uint8_t> cdb, uint8_t target = 0, uint16_t lun = 0, uint8_t first = 1) {
    uint64_t gpa = h->queue(2).alloc(kHeader);
    uint8_t bytes[kHeader] = {first, target, uint8_t(0x40 | lun >> 8), uint8_t(lun)};
    std::copy(cdb.begin(), cdb.end(), bytes + 19);
    h->memory.write(gpa, bytes);
    return gpa;
  }
  struct Reply {
    uint32_t used = 0, sense_len = 0, residual = 0;
    uint8_t status = 0xee, response = 0xee, sense_key = 0, asc = 0;
  };
  Reply run(uint16_t q, std::vector<Buffer> buffers, uint64_t response_gpa) {
    h->memory.write_le<uint8_t>(response_gpa + 11, 0xee);
    h->queue(q).offer(buffers);
    h->kick(q);
    REQUIRE(h->wait_used(q, ++done));
    Reply r;
    r.used = h->queue(q).used(done - 1).second;
    r.sense_len = *h->memory.read_le<uint32_t>(response_gpa);
    r.residual = *h->memory.read_le<uint32_t>(response_gpa + 4);
    r.status = *h->memory.read_le<uint8_t>(response_gpa + 10);
    r.response = *h->memory.read_le<uint8_t>(response_gpa + 11);
    r.sense_key = *h->memory.read_le<uint8_t>(response_gpa + 12 + 2);
    r.asc = *h->memory.read_le<uint8_t>(response_gpa + 12 + 12);
    return r;
  }
  // A data-in command: header, response, `in` bytes of data-in at *data.
  Reply in(std::vector<uint8_t> cdb, uint32_t in, uint64_t* data, uint8_t target = 0, uint16_t lun = 0) {
    uint64_t response = h->queue(2).alloc(kResponse);
    *data = h->queue(2).alloc(in ? in : 1);
    std::vector<Buffer> buffers{{header(cdb, target, lun), kHeader, false}, {response, kResponse, true}};
    if (in) buffers.push_back({*data, in, true});
    return run(2, buffers, response);
  }
};

}  // namespace

TEST_CASE("virtio-scsi: config space announces the queues, sizes and last target") {
  Fixture f;
  CHECK(f.h->read32(0x100) == 1);               // num_queues
  CHECK(f.h->read32(0x100 + 20) == 96);         // sense_size
  CHECK(f.h->read32(0x100 + 24) == 32);         // cdb_size
  CHECK((f.h->read32(0x100 + 28) >> 16) == 2);  // max_target
  CHECK(f.h->read32(0x100 + 32) == 3);          // max_lun: the highest LUN of any target
  CHECK(f.device->num_queues() == 3);
}

TEST_CASE("virtio-scsi: INQUIRY and READ reach the right target; data and residual come back") {
  Fixture f;
  uint64_t data;
  auto r = f.in({0x12, 0, 0, 0, 36, 0}, 64, &data, 2);
  CHECK(r.response == ScsiDevice::kOk);
  CHECK(r.status == 0);
  CHECK(r.residual == 64 - 36);
  CHECK(r.used == kResponse + 36);
  CHECK(*f.h->memory.read_le<uint8_t>(data) == 0x05);  // target 2 is the CD

  f.disk0->data[5 * 512] = 0x42;
  r = f.in({0x28, 0, 0, 0, 0, 5, 0, 0, 1, 0}, 512, &data, 0);
  CHECK(r.response == ScsiDevice::kOk);
  CHECK(r.residual == 0);
  CHECK(*f.h->memory.read_le<uint8_t>(data) == 0x42);
}

TEST_CASE("virtio-scsi: WRITE with data-out after the header") {
  Fixture f;
  uint64_t response = f.h->queue(2).alloc(kResponse);
  uint64_t payload = f.h->queue(2).alloc(512, std::string(512, 'w'));
  auto r = f.run(2,
                 {{f.header({0x2a, 0, 0, 0, 0, 9, 0, 0, 1, 0}), kHeader, false},
                  {payload, 512, false},
                  {response, kResponse, true}},
                 response);
  CHECK(r.response == ScsiDevice::kOk);
  CHECK(r.status == 0);
  CHECK(f.disk0->data[9 * 512] == 'w');
  CHECK(f.disk0->data[10 * 512 - 1] == 'w');
}

TEST_CASE("virtio-scsi: several LUNs on a target; REPORT LUNS lists them from any LUN") {
  Fixture f;
  uint64_t data;
  f.lun3->data[7 * 512] = 0x33;
  auto r = f.in({0x28, 0, 0, 0, 0, 7, 0, 0, 1, 0}, 512, &data, 0, 3);
  CHECK(r.response == ScsiDevice::kOk);
  CHECK(r.status == 0);
  CHECK(*f.h->memory.read_le<uint8_t>(data) == 0x33);  // LUN 3's disk, not LUN 0's
  CHECK(f.disk0->data[7 * 512] == 0);

  for (uint16_t at : {0, 3, 9}) {
    CAPTURE(at);
    r = f.in({0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, 64, &data, 0, at);
    CHECK(r.response == ScsiDevice::kOk);
    CHECK(r.status == 0);
    CHECK(r.used == kResponse + 24);
    CHECK(*f.h->memory.read_le<uint8_t>(data + 3) == 16);  // list length: two entries
    CHECK(*f.h->memory.read_le<uint8_t>(data + 8 + 1) == 0);
    CHECK(*f.h->memory.read_le<uint8_t>(data + 16 + 1) == 3);
  }
  r = f.in({0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, 64, &data, 2, 0);
  CHECK(*f.h->memory.read_le<uint8_t>(data + 3) == 8);                // target 2: LUN 0 only
  r = f.in({0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}, 8, &data, 0, 0);  // allocation below 16
  CHECK(r.status == hw::scsi::kStatusCheckCondition);
  CHECK(r.sense_key == hw::scsi::kIllegalRequest);
}

TEST_CASE("virtio-scsi: missing targets, missing LUNs and bad LUN formats") {
  Fixture f;
  uint64_t data;
  CHECK(f.in({0x12, 0, 0, 0, 36, 0}, 36, &data, 1).response == ScsiDevice::kBadTarget);
  CHECK(f.in({0x12, 0, 0, 0, 36, 0}, 36, &data, 255).response == ScsiDevice::kBadTarget);
  // A LUN the target lacks: INQUIRY says nothing can be there (qualifier 3), as Linux's scan wants;
  // other commands get LOGICAL UNIT NOT SUPPORTED and reach no disk.
  for (uint16_t missing : {1, 0x3fff}) {
    CAPTURE(missing);
    auto r = f.in({0x12, 0, 0, 0, 36, 0}, 36, &data, 0, missing);
    CHECK(r.response == ScsiDevice::kOk);
    CHECK(r.status == 0);
    CHECK(*f.h->memory.read_le<uint8_t>(data) == 0x7f);
    r = f.in({0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, 512, &data, 0, missing);
    CHECK(r.response == ScsiDevice::kOk);
    CHECK(r.status == hw::scsi::kStatusCheckCondition);
    CHECK(r.sense_key == hw::scsi::kIllegalRequest);
    CHECK(r.asc == 0x25);  // LOGICAL UNIT NOT SUPPORTED
  }
  // Level-two or extended LUN addressing (first byte 10b/11b): not one of ours.
  CHECK(f.in({0x12, 0, 0, 0, 36, 0}, 36, &data, 0, 0x8000).response == ScsiDevice::kIncorrectLun);
  // First LUN byte other than 1: not a target address at all.
  uint64_t response = f.h->queue(2).alloc(kResponse);
  auto r = f.run(2, {{f.header({0x00}, 0, 0, 7), kHeader, false}, {response, kResponse, true}}, response);
  CHECK(r.response == ScsiDevice::kBadTarget);
}

TEST_CASE("virtio-scsi: CHECK CONDITION carries fixed-format sense; overruns move no data") {
  Fixture f;
  uint64_t data;
  auto r = f.in({0x28, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0}, 512, &data);
  CHECK(r.response == ScsiDevice::kOk);
  CHECK(r.status == hw::scsi::kStatusCheckCondition);
  CHECK(r.sense_len == hw::scsi::kFixedSenseSize);
  CHECK(r.sense_key == hw::scsi::kIllegalRequest);
  r = f.in({0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0}, 512, &data);  // 4 KiB into 512 bytes
  CHECK(r.response == ScsiDevice::kOverrun);
  CHECK(r.residual == 512);
}

TEST_CASE("virtio-scsi: requests too short for their header or response are contained") {
  Fixture f;
  // Header cut short (the CDB would run past the readable part): FAILURE, nothing executed.
  uint64_t response = f.h->queue(2).alloc(kResponse);
  auto r = f.run(2, {{f.header({0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}), 20, false}, {response, kResponse, true}},
                 response);
  CHECK(r.response == ScsiDevice::kFailure);
  // No room for the response: completed with nothing written.
  uint64_t small = f.h->queue(2).alloc(16);
  f.h->queue(2).offer({{f.header({0x00}), kHeader, false}, {small, 16, true}});
  f.h->kick(2);
  REQUIRE(f.h->wait_used(2, ++f.done));
  CHECK(f.h->queue(2).used(f.done - 1).second == 0);
  CHECK(f.device->bad_requests() == 2);
  CHECK_FALSE(f.h->needs_reset());
  // The device still works.
  uint64_t data;
  CHECK(f.in({0x00, 0, 0, 0, 0, 0}, 0, &data).response == ScsiDevice::kOk);
}

TEST_CASE("virtio-scsi: driver-written cdb_size and sense_size are bounded") {
  Fixture f;
  f.h->write32(0x100 + 24, 100000);
  f.h->write32(0x100 + 20, 7);
  CHECK(f.h->read32(0x100 + 24) == ScsiDevice::kMaxCdbSize);
  CHECK(f.h->read32(0x100 + 20) == 7);
}

TEST_CASE("virtio-scsi: task management and event queries on the control queue") {
  Fixture f;
  uint64_t tmf = f.h->queue(0).alloc(24);
  f.h->memory.write_le<uint32_t>(tmf, 0);      // VIRTIO_SCSI_T_TMF
  f.h->memory.write_le<uint32_t>(tmf + 4, 0);  // ABORT_TASK
  uint64_t reply = f.h->queue(0).alloc(1, "\xee");
  f.h->queue(0).offer({{tmf, 24, false}, {reply, 1, true}});
  f.h->kick(0);
  REQUIRE(f.h->wait_used(0, 1));
  CHECK(*f.h->memory.read_le<uint8_t>(reply) == ScsiDevice::kFunctionComplete);

  uint64_t an = f.h->queue(0).alloc(16);
  f.h->memory.write_le<uint32_t>(an, 1);  // AN_QUERY
  uint64_t an_reply = f.h->queue(0).alloc(5, "\xee\xee\xee\xee\xee");
  f.h->queue(0).offer({{an, 16, false}, {an_reply, 5, true}});
  f.h->kick(0);
  REQUIRE(f.h->wait_used(0, 2));
  CHECK(*f.h->memory.read_le<uint32_t>(an_reply) == 0);
  CHECK(*f.h->memory.read_le<uint8_t>(an_reply + 4) == ScsiDevice::kOk);

  uint64_t junk = f.h->queue(0).alloc(4);
  f.h->memory.write_le<uint32_t>(junk, 77);
  f.h->queue(0).offer({{junk, 4, false}});  // unknown type, nowhere to answer
  f.h->kick(0);
  REQUIRE(f.h->wait_used(0, 3));
  CHECK(f.device->bad_requests() == 1);
}

TEST_CASE("virtio-scsi: reset and a second bring-up serve requests again") {
  Fixture f;
  f.device->reset();
  f.device->reset();  // twice is harmless
  f.h = std::make_unique<Harness>(f.device);
  REQUIRE(f.h->bring_up());
  f.done = 0;
  uint64_t data;
  CHECK(f.in({0x12, 0, 0, 0, 36, 0}, 36, &data).response == ScsiDevice::kOk);
}
