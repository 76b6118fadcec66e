#include "hw/pci/msix.h"

#include <doctest/doctest.h>

#include <array>
#include <cstring>

using namespace hw;
using namespace hw::pci;

namespace {

uint32_t read32(Device& d, uint64_t offset) {
  uint8_t b[4];
  d.read(offset, b);
  uint32_t v;
  std::memcpy(&v, b, 4);
  return v;
}
uint64_t read64(Device& d, uint64_t offset) {
  uint8_t b[8];
  d.read(offset, b);
  uint64_t v;
  std::memcpy(&v, b, 8);
  return v;
}
void write32(Device& d, uint64_t offset, uint32_t v) {
  uint8_t b[4];
  std::memcpy(b, &v, 4);
  d.write(offset, b);
}
void write64(Device& d, uint64_t offset, uint64_t v) {
  uint8_t b[8];
  std::memcpy(b, &v, 8);
  d.write(offset, b);
}

// The host BAR behind the window: remembers what reached it.
struct HostBar : Device {
  std::vector<std::pair<uint64_t, size_t>> reads, writes;
  std::string_view name() const override { return "host"; }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    reads.push_back({offset, data.size()});
    std::memset(data.data(), 0x5a, data.size());
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, data.size()});
  }
};

struct Window {
  std::shared_ptr<HostBar> host = std::make_shared<HostBar>();
  std::shared_ptr<MsixTable> table = std::make_shared<MsixTable>(3);
  std::vector<unsigned> changed;
  // Table at 0x2000, PBA at 0x3000 of a 16 KiB BAR, as virtio-pci and many NICs lay it out.
  MsixBarWindow bar{"w", host, table, 0x2000, 0x3000, [this](unsigned v) { changed.push_back(v); }};
};

// A config space with a capability list: PM at 0x40 -> MSI-X at 0x50 (7 vectors, table in BAR1 at
// 0x800, PBA in BAR1 at 0x900).
std::array<uint8_t, 256> config_with_msix() {
  std::array<uint8_t, 256> c{};
  c[0x06] = 0x10;  // status: capability list
  c[0x34] = 0x40;
  c[0x40] = 0x01;
  c[0x41] = 0x50;
  c[0x50] = kCapMsix;
  c[0x51] = 0x00;
  c[0x52] = 6;  // table size - 1
  c[0x54] = 0x01;
  c[0x55] = 0x08;  // 0x800 | BIR 1
  c[0x58] = 0x01;
  c[0x59] = 0x09;  // 0x900 | BIR 1
  return c;
}

}  // namespace

TEST_CASE("find_msix walks the capability list and checks the layout against the BARs") {
  auto c = config_with_msix();
  const std::array<uint64_t, 6> bars{0x1000, 0x1000, 0, 0, 0, 0};
  MsixFound f = find_msix(c, bars);
  REQUIRE(f.layout);
  CHECK(f.layout->offset == 0x50);
  CHECK(f.layout->vectors == 7);
  CHECK(f.layout->table_bar == 1);
  CHECK(f.layout->table_offset == 0x800);
  CHECK(f.layout->pba_bar == 1);
  CHECK(f.layout->pba_offset == 0x900);
  CHECK(f.layout->table_size() == 7 * 16);
  CHECK(f.layout->pba_size() == 8);

  SUBCASE("no capability list") {
    c[0x06] = 0;
    CHECK_FALSE(find_msix(c, bars).layout);
  }
  SUBCASE("a looping list ends") {
    c[0x50] = 0x09;
    c[0x51] = 0x40;  // back to PM
    MsixFound none = find_msix(c, bars);
    CHECK_FALSE(none.layout);
    CHECK(none.problem.empty());
  }
  SUBCASE("table outside its BAR") {
    const std::array<uint64_t, 6> small{0x1000, 0x800, 0, 0, 0, 0};
    MsixFound bad = find_msix(c, small);
    CHECK_FALSE(bad.layout);
    CHECK(bad.problem == "its table or PBA lies outside its BAR");
  }
  SUBCASE("a BIR naming an absent BAR") {
    c[0x54] = 0x02;  // BIR 2: size 0
    CHECK_FALSE(find_msix(c, bars).layout);
  }
  SUBCASE("a short capability near the end comes before it") {
    c[0x41] = 0xfc;
    c[0xfc] = 0x09;
    c[0xfd] = 0x50;
    MsixFound after = find_msix(c, bars);
    REQUIRE(after.layout);
    CHECK(after.layout->offset == 0x50);
  }
  SUBCASE("an MSI-X capability too close to the end is not read past it") {
    c[0x41] = 0xf8;
    c[0xf8] = kCapMsix;
    c[0xf9] = 0;
    CHECK_FALSE(find_msix(c, bars).layout);
  }
  SUBCASE("BIR 6 or 7") {
    c[0x58] = 0x07;
    MsixFound bad = find_msix(c, bars);
    CHECK_FALSE(bad.layout);
    CHECK(bad.problem.find("BIR") != std::string::npos);
  }
  SUBCASE("table and PBA overlapping") {
    c[0x59] = 0x08;
    c[0x58] = 0x41;  // PBA at 0x840, inside the table
    CHECK(find_msix(c, bars).problem == "its table and PBA overlap");
  }
  SUBCASE("2048 vectors at most: the size field has 11 bits") {
    c[0x52] = 0xff;
    c[0x53] = 0xff;  // the top bits are enable/function mask, not size
    const std::array<uint64_t, 6> big{0, 0x10000, 0, 0, 0, 0};
    c[0x59] = 0x90;  // PBA at 0x9000
    MsixFound f2 = find_msix(c, big);
    REQUIRE(f2.layout);
    CHECK(f2.layout->vectors == 2048);
  }
}

TEST_CASE("the table keeps the guest's messages and masks; the host BAR never sees them") {
  Window w;
  // After reset every vector is masked (vector control bit 0).
  CHECK(read32(w.bar, 0x2000 + 12) == 1);
  write64(w.bar, 0x2010, 0x00000000fee01003ull);  // vector 1 address (low bits are not writable)
  write32(w.bar, 0x2018, 0x4041);
  write32(w.bar, 0x201c, 0xfffffffe);  // reserved control bits ignored, unmasked
  CHECK(read64(w.bar, 0x2010) == 0xfee01000ull);
  CHECK(read32(w.bar, 0x2018) == 0x4041);
  CHECK(read32(w.bar, 0x201c) == 0);
  CHECK(w.table->message(1).address == 0xfee01000ull);
  CHECK(w.table->message(1).data == 0x4041);
  CHECK_FALSE(w.table->vector_masked(1));
  CHECK(w.table->vector_masked(0));
  CHECK(w.changed == std::vector<unsigned>{1, 1, 1});
  // The same value again changes nothing.
  write32(w.bar, 0x2018, 0x4041);
  CHECK(w.changed.size() == 3);
  CHECK(w.host->reads.empty());
  CHECK(w.host->writes.empty());

  // The rest of the BAR is the host's.
  CHECK(read32(w.bar, 0x0) == 0x5a5a5a5a);
  write32(w.bar, 0x1ffc, 7);
  CHECK(read32(w.bar, 0x2030) == 0x5a5a5a5a);  // past the 3-vector table
  REQUIRE(w.host->writes.size() == 1);
  CHECK(w.host->writes[0].first == 0x1ffc);
  CHECK(w.host->reads.size() == 2);
}

TEST_CASE("hostile table and PBA accesses read all-ones and change nothing") {
  Window w;
  write32(w.bar, 0x201c, 0);  // unmask vector 1 (0x1c: its control)
  w.changed.clear();
  uint8_t one[1], two[2];
  w.bar.read(0x2000, one);
  CHECK(one[0] == 0xff);
  w.bar.read(0x2002, two);
  CHECK((two[0] == 0xff && two[1] == 0xff));
  w.bar.write(0x200c, std::span<const uint8_t>(one));  // a byte write to vector 0's control
  CHECK(w.table->vector_masked(0));
  CHECK(read32(w.bar, 0x2002 & ~3u) == 0);  // the aligned dword still reads the entry
  write64(w.bar, 0x2004, ~0ull);            // misaligned qword: dropped
  CHECK(read32(w.bar, 0x2004) == 0);
  // Straddling the table's start and end: neither the table nor the host BAR gets it.
  write64(w.bar, 0x1ffc, ~0ull);
  CHECK(read64(w.bar, 0x1ffc) == ~0ull);
  write64(w.bar, 0x202c, ~0ull);
  CHECK(w.changed.empty());
  CHECK(w.host->writes.empty());
  CHECK(w.host->reads.empty());
  // An offset near 2^64 does not wrap into the table.
  CHECK(read32(w.bar, ~0ull - 3) == 0x5a5a5a5a);
  // The PBA is read-only.
  write64(w.bar, 0x3000, ~0ull);
  CHECK(read64(w.bar, 0x3000) == 0);
  // Past the PBA's 8 bytes: the host's.
  CHECK(read32(w.bar, 0x3008) == 0x5a5a5a5a);
}

TEST_CASE("a masked vector sets its pending bit instead of firing, and fires on unmask") {
  Window w;
  write64(w.bar, 0x2000, 0xfee00000ull);
  write32(w.bar, 0x2008, 0x30);
  write64(w.bar, 0x2020, 0xfee00000ull);
  write32(w.bar, 0x2028, 0x32);

  // Disabled: the device sends nothing and nothing is pending.
  CHECK_FALSE(w.table->fire(0));
  CHECK_FALSE(w.table->pending(0));

  w.table->set_control(true, false);
  CHECK_FALSE(w.table->fire(0));  // vector 0 still masked
  CHECK(w.table->pending(0));
  CHECK(read64(w.bar, 0x3000) == 1);
  CHECK(w.table->take_deliverable().empty());

  write32(w.bar, 0x200c, 0);  // unmask vector 0
  auto sent = w.table->take_deliverable();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].first == 0);
  CHECK(sent[0].second.data == 0x30);
  CHECK_FALSE(w.table->pending(0));
  CHECK(read64(w.bar, 0x3000) == 0);

  // Deliverable now: fire gives the message.
  auto m = w.table->fire(0);
  REQUIRE(m);
  CHECK(m->address == 0xfee00000ull);
  CHECK(m->data == 0x30);

  // Function mask holds back every vector, whatever their own masks say.
  write32(w.bar, 0x202c, 0);
  w.table->set_control(true, true);
  CHECK_FALSE(w.table->deliverable(2));
  CHECK_FALSE(w.table->fire(2));
  CHECK_FALSE(w.table->fire(0));
  CHECK(read64(w.bar, 0x3000) == 0b101);
  w.table->set_control(true, false);
  sent = w.table->take_deliverable();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].first == 0);
  CHECK(sent[1].first == 2);
  CHECK(sent[1].second.data == 0x32);

  // Out of range vectors: nothing.
  CHECK_FALSE(w.table->fire(3));
  CHECK_FALSE(w.table->pending(3));
  CHECK(w.table->vector_masked(1000));
}

TEST_CASE("table sizes are clamped to what MSI-X allows") {
  CHECK(MsixTable(0).vectors() == 1);
  CHECK(MsixTable(5000).vectors() == kMsixMaxVectors);
  MsixTable big(130);
  big.set_control(true, false);
  CHECK_FALSE(big.fire(129));
  uint8_t q[8];
  big.read_pba(16, q);  // vector 128.. in the third qword
  CHECK(q[0] == 0x02);
  big.read_pba(24, q);  // past the PBA
  CHECK(q[0] == 0xff);
}
