#include "hw/x86/vmgenid.h"

#include <doctest/doctest.h>

#include <deque>
#include <vector>

using namespace hw;
using hw::x86::VmGenId;

namespace {

// Hands out the queued 16-byte blocks in order, then fails: what each draw gets is the test's choice.
struct ScriptedEntropy final : backends::RngBackend {
  std::deque<VmGenId::Id> blocks;
  int calls = 0;
  base::ErrorOr<void> fill(std::span<uint8_t> out) override {
    ++calls;
    if (blocks.empty() || out.size() != VmGenId::kSize) return base::fail(base::Error("no entropy left"));
    std::copy(blocks.front().begin(), blocks.front().end(), out.begin());
    blocks.pop_front();
    return {};
  }
};

struct Line final : IrqLine {
  bool level = false;
  int rises = 0;
  void set_level(bool asserted) override {
    if (asserted && !level) ++rises;
    level = asserted;
  }
};

VmGenId::Id block(uint8_t seed) {
  VmGenId::Id id{};
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(seed + i);
  return id;
}

VmGenId::Id in_ram(const base::GuestMemory& memory) {
  VmGenId::Id id{};
  REQUIRE(memory.read(VmGenId::kAddress, id));
  return id;
}

struct Fixture {
  base::GuestMemory memory;
  std::shared_ptr<ScriptedEntropy> entropy = std::make_shared<ScriptedEntropy>();
  std::shared_ptr<Line> line = std::make_shared<Line>();
  Fixture() { REQUIRE(memory.add_region(0, 1 << 20).ok()); }
};

}  // namespace

TEST_CASE("vmgenid: the first ID is drawn from the entropy source and written to guest RAM, no notify") {
  Fixture f;
  f.entropy->blocks = {block(0x10)};
  VmGenId genid(f.memory, f.entropy, f.line);
  REQUIRE(genid.start().ok());
  CHECK(genid.id() == block(0x10));
  CHECK(in_ram(f.memory) == block(0x10));
  CHECK(f.line->rises == 0);
}

TEST_CASE("vmgenid: each restore of one snapshot gets an ID of its own, in RAM, and one notification") {
  Fixture f;
  f.entropy->blocks = {block(0x10)};
  VmGenId original(f.memory, f.entropy, f.line);
  REQUIRE(original.start().ok());
  StateWriter out;
  original.save_state(out);
  const std::vector<uint8_t> saved = out.take();
  CHECK(saved.size() == 4 + VmGenId::kSize);

  std::vector<VmGenId::Id> copies;
  for (uint8_t seed : {uint8_t{0x40}, uint8_t{0x80}}) {
    Fixture copy;  // a freshly built machine: its own first ID, then the snapshot's state
    copy.entropy->blocks = {block(0x20), block(seed)};
    VmGenId genid(copy.memory, copy.entropy, copy.line);
    REQUIRE(genid.start().ok());
    StateReader in(saved);
    REQUIRE(genid.load_state(in, 1).ok());
    CHECK(genid.id() == block(seed));
    CHECK(in_ram(copy.memory) == block(seed));
    CHECK(copy.line->rises == 1);
    CHECK_FALSE(copy.line->level);
    copies.push_back(genid.id());
  }
  CHECK(copies[0] != copies[1]);
  CHECK(copies[0] != original.id());
}

TEST_CASE("vmgenid: a source that returns the snapshot's ID again is asked again, and refused at last") {
  Fixture f;
  f.entropy->blocks = {block(0x10)};
  VmGenId original(f.memory, f.entropy, f.line);
  REQUIRE(original.start().ok());
  StateWriter out;
  original.save_state(out);
  const std::vector<uint8_t> saved = out.take();

  Fixture again;
  again.entropy->blocks = {block(0x20), block(0x10), block(0x30)};
  VmGenId genid(again.memory, again.entropy, again.line);
  REQUIRE(genid.start().ok());
  StateReader in(saved);
  REQUIRE(genid.load_state(in, 1).ok());
  CHECK(genid.id() == block(0x30));
  CHECK(again.line->rises == 1);

  Fixture stuck;
  stuck.entropy->blocks = {block(0x20), block(0x10), block(0x10), block(0x10), block(0x10)};
  VmGenId broken(stuck.memory, stuck.entropy, stuck.line);
  REQUIRE(broken.start().ok());
  StateReader in2(saved);
  auto loaded = broken.load_state(in2, 1);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message.find("saved ID") != std::string::npos);
  CHECK(stuck.line->rises == 0);
}

TEST_CASE("vmgenid: damaged saved state, another version and a failing source are refused") {
  Fixture f;
  f.entropy->blocks = {block(0x10), block(0x20)};
  VmGenId genid(f.memory, f.entropy, f.line);
  REQUIRE(genid.start().ok());
  StateWriter out;
  genid.save_state(out);
  std::vector<uint8_t> saved = out.take();

  StateReader other_version(saved);
  CHECK_FALSE(genid.load_state(other_version, 2).ok());
  std::vector<uint8_t> short_state(saved.begin(), saved.end() - 1);
  StateReader truncated(short_state);
  CHECK_FALSE(genid.load_state(truncated, 1).ok());
  std::vector<uint8_t> long_state = saved;
  long_state.push_back(0);
  StateReader trailing(long_state);
  CHECK_FALSE(genid.load_state(trailing, 1).ok());
  std::vector<uint8_t> wrong_length = saved;
  wrong_length[0] = 15;  // a 15-byte ID
  StateReader wrong(wrong_length);
  CHECK_FALSE(genid.load_state(wrong, 1).ok());
  CHECK(f.line->rises == 0);
  CHECK(in_ram(f.memory) == block(0x10));

  f.entropy->blocks.clear();  // the source fails: the restore fails rather than keep the old ID
  StateReader good(saved);
  auto loaded = genid.load_state(good, 1);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message.find("no entropy left") != std::string::npos);
  CHECK(f.line->rises == 0);
}

TEST_CASE("vmgenid: guest RAM that does not reach the ID's address is an error, not a crash") {
  base::GuestMemory small;
  REQUIRE(small.add_region(0, 0x10000).ok());
  auto entropy = std::make_shared<ScriptedEntropy>();
  entropy->blocks = {block(1)};
  VmGenId genid(small, entropy, nullptr);
  CHECK_FALSE(genid.start().ok());
}
