// SCSI command emulation of scsi-hd and scsi-cd, driven with CDBs as Linux's sd/sr send them and
// with hostile ones: short CDBs, lengths and block addresses past every limit, buffers in the
// wrong direction, writes to read-only media.
#include "hw/virtio/scsi_disk.h"

#include <doctest/doctest.h>

#include <vector>

#include "hw/virtio/test_backends.h"

using namespace hw::scsi;
using hw::virtio::testing::MemoryDisk;

namespace {

struct Fixture {
  std::shared_ptr<MemoryDisk> backend;
  Disk disk;
  explicit Fixture(Disk::Kind kind = Disk::Kind::Hd, uint64_t size = 1 << 20, bool read_only = false,
                   std::string serial = "SER123")
      : backend(std::make_shared<MemoryDisk>(size, read_only)),
        disk(backend, {kind, std::move(serial), "sda", false}) {}

  // Runs `cdb` with one data-in buffer of `in` bytes; returns the outcome, the data in `data`.
  Outcome in(std::vector<uint8_t> cdb, size_t in, std::vector<uint8_t>& data) {
    data.assign(in, 0xcc);
    DataBuffers buffers;
    if (in) buffers.in.push_back(data);
    return disk.execute(cdb, buffers);
  }
  Outcome out(std::vector<uint8_t> cdb, const std::vector<uint8_t>& data) {
    DataBuffers buffers;
    if (!data.empty()) buffers.out.push_back(data);
    return disk.execute(cdb, buffers);
  }
  Outcome none(std::vector<uint8_t> cdb) { return disk.execute(cdb, {}); }
};

bool check_condition(const Outcome& o, Sense expected) {
  return o.status == kStatusCheckCondition && !o.overrun && o.sense.key == expected.key &&
         o.sense.asc == expected.asc && o.sense.ascq == expected.ascq;
}

uint32_t be32(const std::vector<uint8_t>& d, size_t at) {
  return uint32_t(d[at]) << 24 | uint32_t(d[at + 1]) << 16 | uint32_t(d[at + 2]) << 8 | d[at + 3];
}

std::vector<uint8_t> read10(uint32_t lba, uint16_t count) {
  return {0x28,         0, uint8_t(lba >> 24),  uint8_t(lba >> 16), uint8_t(lba >> 8),
          uint8_t(lba), 0, uint8_t(count >> 8), uint8_t(count),     0};
}
std::vector<uint8_t> write10(uint32_t lba, uint16_t count) {
  auto cdb = read10(lba, count);
  cdb[0] = 0x2a;
  return cdb;
}

}  // namespace

TEST_CASE("scsi-hd: INQUIRY standard data names a disk and truncates to the allocation length") {
  Fixture f;
  std::vector<uint8_t> data;
  Outcome o = f.in({0x12, 0, 0, 0, 36, 0}, 36, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(o.data_in == 36);
  CHECK(data[0] == 0x00);  // direct access block device
  CHECK(std::string(data.begin() + 8, data.begin() + 16) == "VMLAUNCH");
  CHECK(std::string(data.begin() + 16, data.begin() + 32).rfind("VMLAUNCH DISK   ", 0) == 0);
  // Allocation length 5 into a 64-byte buffer: 5 bytes, the rest untouched.
  o = f.in({0x12, 0, 0, 0, 5, 0}, 64, data);
  CHECK(o.data_in == 5);
  CHECK(data[5] == 0xcc);
}

TEST_CASE("scsi-hd: INQUIRY vital product data pages") {
  Fixture f;
  std::vector<uint8_t> data;
  Outcome o = f.in({0x12, 1, 0x00, 0, 255, 0}, 255, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(data[3] == 3);  // pages 0x00, 0x80, 0x83
  CHECK(data[4] == 0x00);
  CHECK(data[5] == 0x80);
  CHECK(data[6] == 0x83);
  o = f.in({0x12, 1, 0x80, 0, 255, 0}, 255, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(std::string(data.begin() + 4, data.begin() + 4 + data[3]) == "SER123");
  o = f.in({0x12, 1, 0x83, 0, 255, 0}, 255, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(std::string(data.begin() + 8, data.begin() + 8 + data[7]) == "VMLAUNCHsda");
  CHECK(check_condition(f.in({0x12, 1, 0x42, 0, 255, 0}, 255, data), kSenseInvalidField));
  CHECK(check_condition(f.in({0x12, 0, 0x80, 0, 255, 0}, 255, data), kSenseInvalidField));  // page w/o EVPD
  CHECK(check_condition(f.in({0x12, 2, 0, 0, 255, 0}, 255, data), kSenseInvalidField));     // CmdDt
  Fixture no_serial(Disk::Kind::Hd, 1 << 20, false, "");
  CHECK(check_condition(no_serial.in({0x12, 1, 0x80, 0, 255, 0}, 255, data), kSenseInvalidField));
}

TEST_CASE("scsi-hd: READ CAPACITY (10) and (16), REPORT LUNS, TEST UNIT READY") {
  Fixture f;
  std::vector<uint8_t> data;
  Outcome o = f.in({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(be32(data, 0) == (1 << 20) / 512 - 1);
  CHECK(be32(data, 4) == 512);
  o = f.in({0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 32, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(be32(data, 4) == (1 << 20) / 512 - 1);
  CHECK(be32(data, 8) == 512);
  CHECK(check_condition(f.in({0x9e, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 32, data),
                        kSenseInvalidField));
  o = f.in({0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0}, 16, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(be32(data, 0) == 8);  // one LUN
  CHECK(check_condition(f.in({0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}, 16, data), kSenseInvalidField));
  CHECK(f.none({0x00, 0, 0, 0, 0, 0}).status == kStatusGood);
}

TEST_CASE("scsi-hd: write then read back through scattered buffers") {
  Fixture f;
  std::vector<uint8_t> data(1024);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  // Data-out in three uneven pieces.
  DataBuffers out;
  out.out = {std::span<const uint8_t>(data).first(100), std::span<const uint8_t>(data).subspan(100, 500),
             std::span<const uint8_t>(data).subspan(600)};
  Outcome o = f.disk.execute(write10(10, 2), out);
  REQUIRE(o.status == kStatusGood);
  CHECK(o.data_out == 1024);
  CHECK(std::equal(data.begin(), data.end(), f.backend->data.begin() + 10 * 512));
  std::vector<uint8_t> a(7), b(1017);
  DataBuffers in;
  in.in = {a, b};
  o = f.disk.execute(read10(10, 2), in);
  REQUIRE(o.status == kStatusGood);
  CHECK(o.data_in == 1024);
  CHECK(std::equal(a.begin(), a.end(), data.begin()));
  CHECK(std::equal(b.begin(), b.end(), data.begin() + 7));
  // READ(16) and READ(6) of the same blocks.
  std::vector<uint8_t> back;
  o = f.in({0x88, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0}, 1024, back);
  CHECK(o.status == kStatusGood);
  CHECK(back == data);
  o = f.in({0x08, 0, 0, 10, 2, 0}, 1024, back);
  CHECK(o.status == kStatusGood);
  CHECK(back == data);
}

TEST_CASE("scsi-hd: block addresses and lengths past the end are refused without I/O") {
  Fixture f;  // 2048 blocks
  std::vector<uint8_t> data;
  CHECK(check_condition(f.in(read10(2048, 1), 512, data), kSenseLbaOutOfRange));
  CHECK(check_condition(f.in(read10(2047, 2), 1024, data), kSenseLbaOutOfRange));
  CHECK(check_condition(f.in(read10(0xffffffff, 0xffff), 512, data), kSenseLbaOutOfRange));
  CHECK(f.in(read10(2047, 1), 512, data).status == kStatusGood);
  CHECK(f.in(read10(2048, 0), 0, data).status == kStatusGood);  // zero blocks at the end: nothing to do
  // READ(16) with a 64-bit address that would overflow lba * 512 and lba + count.
  CHECK(check_condition(
      f.in({0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0}, 512,
           data),
      kSenseLbaOutOfRange));
  CHECK(check_condition(f.in({0x88, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0}, 512, data),
                        kSenseLbaOutOfRange));
  std::vector<uint8_t> zeros(512);
  CHECK(check_condition(f.out(write10(2048, 1), zeros), kSenseLbaOutOfRange));
  CHECK(f.disk.rejected() == 6);
}

TEST_CASE("scsi-hd: transfers larger than the buffers, or in the wrong direction, are overruns") {
  Fixture f;
  f.backend->data[0] = 0x5a;
  std::vector<uint8_t> data;
  Outcome o = f.in(read10(0, 4), 1024, data);  // 2 KiB asked, 1 KiB offered
  CHECK(o.overrun);
  CHECK(o.data_in == 0);
  CHECK(data[0] == 0xcc);  // nothing was written
  std::vector<uint8_t> small(100, 1);
  o = f.out(write10(0, 1), small);
  CHECK(o.overrun);
  CHECK(f.backend->data[0] == 0x5a);
  std::vector<uint8_t> block(512, 1);
  CHECK(f.out(read10(0, 1), block).overrun);                // a read with data-out buffers
  CHECK(f.in(write10(0, 1), 512, data).overrun);            // a write with data-in buffers
  CHECK(f.in({0x12, 0, 0, 0x10, 0, 0}, 36, data).overrun);  // INQUIRY allocation 4096 > 36
  CHECK(f.in({0x00, 0, 0, 0, 0, 0}, 8, data).overrun);      // TEST UNIT READY moves no data
  CHECK(f.backend->data[0] == 0x5a);
}

TEST_CASE("scsi-hd: short, empty and unknown CDBs") {
  Fixture f;
  std::vector<uint8_t> data;
  CHECK(check_condition(f.none({}), kSenseInvalidOpcode));
  CHECK(check_condition(f.in({0x28, 0, 0, 0}, 512, data), kSenseInvalidField));  // READ(10) cut short
  CHECK(check_condition(f.in({0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 512, data), kSenseInvalidField));
  CHECK(check_condition(f.in({0x12, 0, 0}, 36, data), kSenseInvalidField));
  CHECK(check_condition(f.none({0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0}), kSenseInvalidOpcode));  // group 3
  CHECK(check_condition(f.none({0xe0, 0, 0, 0, 0, 0}), kSenseInvalidOpcode));              // vendor group
  CHECK(check_condition(f.none({0x04, 0, 0, 0, 0, 0}), kSenseInvalidOpcode));              // FORMAT UNIT
  CHECK(
      check_condition(f.in({0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0}, 12, data), kSenseInvalidOpcode));  // READ TOC
  // Sense data in fixed format.
  Outcome o = f.none({0x04, 0, 0, 0, 0, 0});
  uint8_t sense[kFixedSenseSize + 4] = {};
  CHECK(o.write_sense(sense) == kFixedSenseSize);
  CHECK(sense[0] == 0x70);
  CHECK(sense[2] == kIllegalRequest);
  CHECK(sense[7] == 10);
  CHECK(sense[12] == 0x20);
  uint8_t tiny[3];
  CHECK(o.write_sense(tiny) == 3);
}

TEST_CASE("scsi-hd: MODE SENSE reports write protection and the caching page") {
  Fixture f;
  std::vector<uint8_t> data;
  Outcome o = f.in({0x1a, 0, 0x3f, 0, 192, 0}, 192, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(data[0] + 1u == o.data_in);
  CHECK((data[2] & 0x80) == 0);  // not write-protected
  CHECK(data[3] == 8);           // one block descriptor
  CHECK(data[4 + 8] == 0x08);    // caching page first
  CHECK((data[4 + 8 + 2] & 0x04) != 0);
  o = f.in({0x5a, 0, 0x08, 0, 0, 0, 0, 0, 255, 0}, 255, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(data[8 + 8] == 0x08);
  CHECK(check_condition(f.in({0x1a, 0, 0x3f | 0xc0, 0, 192, 0}, 192, data), kSenseSavingNotSupported));
  CHECK(check_condition(f.in({0x1a, 0, 0x19, 0, 192, 0}, 192, data), kSenseInvalidField));
  CHECK(check_condition(f.in({0x1a, 0, 0x08, 5, 192, 0}, 192, data), kSenseInvalidField));
  CHECK(f.in({0x1a, 0, 0x3f, 0xff, 192, 0}, 192, data).status == kStatusGood);
  CHECK(f.in({0x1a, 0, 0x3f, 0, 4, 0}, 4, data).data_in == 4);  // header only, as sd asks first

  Fixture ro(Disk::Kind::Hd, 1 << 20, true);
  o = ro.in({0x1a, 0, 0x3f, 0, 192, 0}, 192, data);
  CHECK((data[2] & 0x80) != 0);
  std::vector<uint8_t> block(512);
  CHECK(check_condition(ro.out(write10(0, 1), block), kSenseWriteProtected));
}

TEST_CASE("scsi-hd: SYNCHRONIZE CACHE flushes the backend; FUA writes flush too") {
  Fixture f;
  CHECK(f.none({0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}).status == kStatusGood);
  CHECK(f.backend->flushes == 1);
  std::vector<uint8_t> block(512);
  auto fua = write10(1, 1);
  fua[1] = 0x08;
  CHECK(f.out(fua, block).status == kStatusGood);
  CHECK(f.backend->flushes == 2);
}

TEST_CASE("scsi-cd: a read-only CD-ROM with 2048-byte blocks, a TOC and MMC answers") {
  Fixture f(Disk::Kind::Cd, 10 * 2048 + 100);  // a partial last block is not addressable
  std::vector<uint8_t> data;
  Outcome o = f.in({0x12, 0, 0, 0, 36, 0}, 36, data);
  CHECK(data[0] == 0x05);
  CHECK(data[1] == 0x80);  // removable
  o = f.in({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8, data);
  CHECK(be32(data, 0) == 9);
  CHECK(be32(data, 4) == 2048);
  f.backend->data[3 * 2048] = 0x77;
  o = f.in(read10(3, 1), 2048, data);
  REQUIRE(o.status == kStatusGood);
  CHECK(data[0] == 0x77);
  CHECK(check_condition(f.in(read10(10, 1), 2048, data), kSenseLbaOutOfRange));
  std::vector<uint8_t> block(2048);
  CHECK(check_condition(f.out(write10(0, 1), block), kSenseWriteProtected));
  CHECK(f.backend->data[0] == 0);

  o = f.in({0x43, 0, 0, 0, 0, 0, 0, 0, 20, 0}, 20, data);  // TOC, LBA form
  REQUIRE(o.status == kStatusGood);
  CHECK(o.data_in == 20);
  CHECK(data[2] == 1);
  CHECK(data[4 + 2] == 1);      // track 1
  CHECK(data[12 + 2] == 0xaa);  // lead-out
  CHECK(be32(data, 12 + 4) == 10);
  o = f.in({0x43, 0x02, 0, 0, 0, 0, 0, 0, 20, 0}, 20, data);  // MSF: 2 s lead-in = 00:02:00
  CHECK(data[4 + 5] == 0);
  CHECK(data[4 + 6] == 2);
  CHECK(data[4 + 7] == 0);
  CHECK(check_condition(f.in({0x43, 0, 0, 0, 0, 0, 5, 0, 20, 0}, 20, data), kSenseInvalidField));
  CHECK(check_condition(f.in({0x43, 0, 2, 0, 0, 0, 0, 0, 20, 0}, 20, data), kSenseInvalidField));

  o = f.in({0x46, 0, 0, 0, 0, 0, 0, 0, 32, 0}, 32, data);  // GET CONFIGURATION
  REQUIRE(o.status == kStatusGood);
  CHECK(data[7] == 0x08);                                   // current profile CD-ROM
  o = f.in({0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0}, 8, data);  // GET EVENT STATUS NOTIFICATION
  REQUIRE(o.status == kStatusGood);
  CHECK(data[5] == 0x02);  // media present
  CHECK(check_condition(f.in({0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8, 0}, 8, data), kSenseInvalidField));
  o = f.in({0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64, 0}, 64, data);  // MM capabilities page
  REQUIRE(o.status == kStatusGood);
  CHECK(data[8] == 0x2a);
  CHECK((data[3] & 0x80) != 0);  // write protected
  CHECK(f.in({0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0}, 34, data).status == kStatusGood);
  CHECK(check_condition(f.in({0x51, 1, 0, 0, 0, 0, 0, 0, 34, 0}, 34, data), kSenseInvalidField));
}

TEST_CASE("scsi-hd and scsi-cd: random CDBs and buffers keep every outcome within its buffers") {
  // A deterministic stream of hostile commands: every opcode, random fields (LBAs, lengths,
  // allocation lengths, page codes), CDBs cut at random lengths, buffers of random sizes in either
  // direction. Whatever the answer, it may only claim bytes the buffers hold, and a read-only
  // medium must come out unchanged. (ASan builds of this test check the memory side.)
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (Disk::Kind kind : {Disk::Kind::Hd, Disk::Kind::Cd}) {
    Fixture f(kind, 64 * 2048, kind == Disk::Kind::Cd);
    for (size_t i = 0; i < f.backend->data.size(); ++i) f.backend->data[i] = static_cast<uint8_t>(i);
    const std::vector<uint8_t> original = f.backend->data;
    for (int round = 0; round < 20000; ++round) {
      std::vector<uint8_t> cdb(next() % 20);
      for (uint8_t& b : cdb) b = static_cast<uint8_t>(next());
      if (!cdb.empty()) cdb[0] = static_cast<uint8_t>(round);  // every opcode in turn
      // Small lengths more often, so commands sometimes succeed and move data.
      if (cdb.size() > 8 && next() % 2) {
        cdb[7] = 0;
        cdb[8] = static_cast<uint8_t>(next() % 4);
      }
      std::vector<uint8_t> in(next() % 3 ? next() % 5000 : 0), out(next() % 4 ? 0 : next() % 5000, 0xab);
      DataBuffers buffers;
      if (!in.empty()) buffers.in.push_back(in);
      if (!out.empty()) buffers.out.push_back(out);
      Outcome o = f.disk.execute(cdb, buffers);
      REQUIRE(o.data_in <= in.size());
      REQUIRE(o.data_out <= out.size());
      if (o.overrun) REQUIRE((o.data_in == 0 && o.data_out == 0));
      REQUIRE((o.status == kStatusGood || o.status == kStatusCheckCondition));
    }
    if (kind == Disk::Kind::Cd) CHECK(f.backend->data == original);
  }
}
