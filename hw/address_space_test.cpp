#include "hw/address_space.h"

#include <doctest/doctest.h>

#include <vector>

namespace {
// Records every access so tests can see the offset the device was handed.
class RecordingDevice : public hw::Device {
 public:
  explicit RecordingDevice(std::string name) : m_name(std::move(name)) {}
  std::string_view name() const override { return m_name; }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    last_offset = offset;
    for (auto& b : data) b = 0xab;
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    last_offset = offset;
    written.assign(data.begin(), data.end());
  }
  uint64_t last_offset = ~0ull;
  std::vector<uint8_t> written;

 private:
  std::string m_name;
};
}  // namespace

TEST_CASE("address space routes accesses with device-relative offsets") {
  hw::AddressSpace space;
  auto uart = std::make_shared<RecordingDevice>("uart");
  REQUIRE(space.insert(0x10000000, 0x100, uart).ok());
  uint8_t buf[4];
  CHECK(space.read(0x10000005, buf));
  CHECK(uart->last_offset == 5);
  CHECK(buf[0] == 0xab);
  const uint8_t value[1] = {0x41};
  CHECK(space.write(0x10000000, value));
  CHECK(uart->written == std::vector<uint8_t>{0x41});
  CHECK_FALSE(space.read(0x100000fe, buf));  // straddles the end of the region
  CHECK_FALSE(space.read(0x0fffffff, std::span<uint8_t>(buf, 1)));
}

TEST_CASE("address space rejects overlaps with a typed error naming the other device") {
  hw::AddressSpace space;
  REQUIRE(space.insert(0x1000, 0x1000, std::make_shared<RecordingDevice>("a")).ok());
  auto overlap = space.insert(0x1800, 0x1000, std::make_shared<RecordingDevice>("b"));
  REQUIRE_FALSE(overlap.ok());
  CHECK(overlap.error().kind == hw::BusError::Kind::Overlap);
  CHECK(overlap.error().other_name == "a");
  CHECK(overlap.error().message().find("overlaps a") != std::string::npos);
  CHECK_FALSE(space.insert(0x0, 0x1001, std::make_shared<RecordingDevice>("c")).ok());
  CHECK(space.insert(0x2000, 0x10, std::make_shared<RecordingDevice>("d")).ok());
  CHECK(space.insert(0x0, 0x1000, std::make_shared<RecordingDevice>("e")).ok());
  CHECK_FALSE(space.insert(0x5000, 0, std::make_shared<RecordingDevice>("f")).ok());
  CHECK_FALSE(space.insert(UINT64_MAX, 2, std::make_shared<RecordingDevice>("g")).ok());
  CHECK(space.remove(0x1000).ok());
  CHECK_FALSE(space.remove(0x1000).ok());
  CHECK(space.insert(0x1800, 0x100, std::make_shared<RecordingDevice>("b")).ok());
  CHECK(space.mappings().size() == 3);  // e, b, d
}
