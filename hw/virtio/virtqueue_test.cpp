#include "hw/virtio/virtqueue.h"

#include <doctest/doctest.h>

#include "hw/virtio/test_driver.h"

using namespace hw::virtio;
using namespace hw::virtio::testing;

namespace {

struct Fixture {
  base::GuestMemory memory;
  TestDriver driver;
  explicit Fixture(uint32_t size = 8)
      : driver((memory.add_region(kRamBase, kRamSize).value(), memory), size) {}
  Virtqueue queue(Virtqueue::Features features = {true, false}) {
    return Virtqueue::create(memory, driver.layout(), features).value();
  }
};

std::string fault_of(Virtqueue& queue) {
  auto popped = queue.pop();
  REQUIRE_FALSE(popped.ok());
  CHECK(queue.broken());
  return popped.error().message;
}

}  // namespace

TEST_CASE("virtqueue: empty queue pops nothing") {
  Fixture f;
  auto q = f.queue();
  auto popped = q.pop();
  REQUIRE(popped.ok());
  CHECK_FALSE(popped->has_value());
  CHECK_FALSE(q.has_available());
}

TEST_CASE("virtqueue: a direct chain with readable then writable parts") {
  Fixture f;
  auto q = f.queue();
  uint64_t header = f.driver.alloc(4, "head");
  uint64_t body = f.driver.alloc(5, "world");
  uint64_t reply = f.driver.alloc(8);
  uint16_t head = f.driver.offer({{header, 4, false}, {body, 5, false}, {reply, 8, true}});
  auto popped = q.pop();
  REQUIRE(popped.ok());
  REQUIRE(popped->has_value());
  const Chain& chain = **popped;
  CHECK(chain.head == head);
  CHECK(chain.readable == 9);
  CHECK(chain.writable == 8);
  std::string text(9, '\0');
  CHECK(chain.read(0, {reinterpret_cast<uint8_t*>(text.data()), 9}) == 9);
  CHECK(text == "headworld");
  CHECK(chain.read(3, {reinterpret_cast<uint8_t*>(text.data()), 3}) == 3);
  CHECK(text.substr(0, 3) == "dwo");
  const char answer[] = "answer!!";
  CHECK(chain.write(0, {reinterpret_cast<const uint8_t*>(answer), 8}) == 8);
  CHECK(f.driver.read_string(reply, 8) == "answer!!");
  q.push(chain.head, 8);
  CHECK(f.driver.used_idx() == 1);
  CHECK(f.driver.used(0) == std::pair<uint32_t, uint32_t>{head, 8});
}

TEST_CASE("virtqueue: indirect chain") {
  Fixture f;
  auto q = f.queue();
  uint64_t a = f.driver.alloc(3, "abc");
  uint64_t b = f.driver.alloc(4);
  f.driver.offer_indirect({{a, 3, false}, {b, 4, true}});
  auto popped = q.pop();
  REQUIRE(popped.ok());
  REQUIRE(popped->has_value());
  CHECK((*popped)->segments.size() == 2);
  CHECK((*popped)->readable == 3);
  CHECK((*popped)->writable == 4);
}

TEST_CASE("virtqueue: chains complete in order and wrap around the ring") {
  Fixture f(4);
  auto q = f.queue();
  for (int round = 0; round < 10; ++round) {
    uint64_t buffer = f.driver.alloc(1, "x");
    uint16_t head = f.driver.offer({{buffer, 1, false}});
    auto popped = q.pop();
    REQUIRE(popped.ok());
    REQUIRE(popped->has_value());
    CHECK((*popped)->head == head);
    q.push(head, 0);
  }
  CHECK(f.driver.used_idx() == 10);
}

TEST_CASE("hostile: queue size not a power of two") {
  Fixture f(8);
  auto layout = f.driver.layout();
  layout.size = 6;
  auto q = Virtqueue::create(f.memory, layout, {});
  REQUIRE_FALSE(q.ok());
  CHECK(q.error().message.find("power of two") != std::string::npos);
}

TEST_CASE("hostile: queue size above 32768") {
  CHECK(Virtqueue::check_size(65536).has_value());
  CHECK(Virtqueue::check_size(0).has_value());
  CHECK_FALSE(Virtqueue::check_size(32768).has_value());
}

TEST_CASE("hostile: rings outside guest RAM or misaligned") {
  Fixture f;
  auto layout = f.driver.layout();
  layout.used = kRamBase + kRamSize - 8;  // starts inside, ends outside
  CHECK_FALSE(Virtqueue::create(f.memory, layout, {}).ok());
  layout = f.driver.layout();
  layout.desc += 8;
  CHECK_FALSE(Virtqueue::create(f.memory, layout, {}).ok());
  layout = f.driver.layout();
  layout.avail = 0x1000;  // no RAM there
  CHECK_FALSE(Virtqueue::create(f.memory, layout, {}).ok());
}

TEST_CASE("hostile: head index outside the table") {
  Fixture f;
  auto q = f.queue();
  f.driver.publish(8);
  CHECK(fault_of(q).find("head index") != std::string::npos);
}

TEST_CASE("hostile: descriptor loop") {
  Fixture f;
  auto q = f.queue();
  uint64_t buffer = f.driver.alloc(4);
  f.driver.write_desc(f.driver.desc_table(), 0, buffer, 4, kDescNext, 1);
  f.driver.write_desc(f.driver.desc_table(), 1, buffer, 4, kDescNext, 0);
  f.driver.publish(0);
  CHECK(fault_of(q).find("loop") != std::string::npos);
}

TEST_CASE("hostile: self loop on one descriptor") {
  Fixture f;
  auto q = f.queue();
  uint64_t buffer = f.driver.alloc(4);
  f.driver.write_desc(f.driver.desc_table(), 3, buffer, 4, kDescNext, 3);
  f.driver.publish(3);
  CHECK(fault_of(q).find("loop") != std::string::npos);
}

TEST_CASE("hostile: chain longer than the queue size is refused") {
  Fixture f(4);
  auto q = f.queue();
  uint64_t buffer = f.driver.alloc(4);
  // 4 descriptors chained, the last pointing back to the first: 5th visit exceeds the table.
  for (uint16_t i = 0; i < 4; ++i)
    f.driver.write_desc(f.driver.desc_table(), i, buffer, 4, kDescNext, (i + 1) % 4);
  f.driver.publish(0);
  CHECK(fault_of(q).find("longer than its table") != std::string::npos);
}

TEST_CASE("hostile: next index outside the table") {
  Fixture f;
  auto q = f.queue();
  uint64_t buffer = f.driver.alloc(4);
  f.driver.write_desc(f.driver.desc_table(), 0, buffer, 4, kDescNext, 200);
  f.driver.publish(0);
  CHECK(fault_of(q).find("next index") != std::string::npos);
}

TEST_CASE("hostile: INDIRECT together with NEXT") {
  Fixture f;
  auto q = f.queue();
  uint64_t table = f.driver.alloc(32);
  f.driver.write_desc(f.driver.desc_table(), 0, table, 32, kDescIndirect | kDescNext, 1);
  f.driver.publish(0);
  CHECK(fault_of(q).find("INDIRECT and NEXT") != std::string::npos);
}

TEST_CASE("hostile: nested indirect table") {
  Fixture f;
  auto q = f.queue();
  uint64_t inner = f.driver.alloc(16);
  uint64_t outer = f.driver.alloc(16);
  f.driver.write_desc(outer, 0, inner, 16, kDescIndirect, 0);
  f.driver.write_desc(f.driver.desc_table(), 0, outer, 16, kDescIndirect, 0);
  f.driver.publish(0);
  CHECK(fault_of(q).find("inside an indirect table") != std::string::npos);
}

TEST_CASE("hostile: indirect without the feature, or with a bad length") {
  Fixture f;
  auto q = f.queue({false, false});
  uint64_t table = f.driver.alloc(16);
  f.driver.write_desc(f.driver.desc_table(), 0, table, 16, kDescIndirect, 0);
  f.driver.publish(0);
  CHECK(fault_of(q).find("without VIRTIO_F_RING_INDIRECT_DESC") != std::string::npos);

  Fixture g;
  auto r = g.queue();
  uint64_t odd = g.driver.alloc(24);
  g.driver.write_desc(g.driver.desc_table(), 0, odd, 24, kDescIndirect, 0);
  g.driver.publish(0);
  CHECK(fault_of(r).find("indirect table length") != std::string::npos);
}

TEST_CASE("hostile: loop inside an indirect table") {
  Fixture f;
  auto q = f.queue();
  uint64_t buffer = f.driver.alloc(4);
  uint64_t table = f.driver.alloc(32);
  f.driver.write_desc(table, 0, buffer, 4, kDescNext, 1);
  f.driver.write_desc(table, 1, buffer, 4, kDescNext, 0);
  f.driver.write_desc(f.driver.desc_table(), 0, table, 32, kDescIndirect, 0);
  f.driver.publish(0);
  CHECK(fault_of(q).find("loop") != std::string::npos);
}

TEST_CASE("hostile: descriptor address + length overflows") {
  Fixture f;
  auto q = f.queue();
  f.driver.write_desc(f.driver.desc_table(), 0, ~0ull - 2, 16, 0, 0);
  f.driver.publish(0);
  CHECK(fault_of(q).find("overflows") != std::string::npos);
}

TEST_CASE("hostile: descriptor buffer outside guest RAM") {
  Fixture f;
  auto q = f.queue();
  f.driver.write_desc(f.driver.desc_table(), 0, kRamBase + kRamSize - 4, 16, 0, 0);
  f.driver.publish(0);
  CHECK(fault_of(q).find("outside guest RAM") != std::string::npos);
}

TEST_CASE("hostile: readable descriptor after a writable one") {
  Fixture f;
  auto q = f.queue();
  uint64_t a = f.driver.alloc(4), b = f.driver.alloc(4);
  f.driver.offer({{a, 4, true}, {b, 4, false}});
  CHECK(fault_of(q).find("after a device-writable") != std::string::npos);
}

TEST_CASE("hostile: avail index jumping ahead") {
  Fixture f;
  auto q = f.queue();
  f.driver.set_avail_idx(9);  // queue size 8, nothing consumed
  CHECK(fault_of(q).find("ahead") != std::string::npos);
}

TEST_CASE("hostile: a broken queue stays broken and push is ignored") {
  Fixture f;
  auto q = f.queue();
  f.driver.publish(100);
  (void)fault_of(q);
  uint64_t buffer = f.driver.alloc(1);
  f.driver.offer({{buffer, 1, false}});
  CHECK_FALSE(q.pop().ok());
  q.push(0, 0);
  CHECK(f.driver.used_idx() == 0);
}

TEST_CASE("notifications: NO_INTERRUPT suppresses, otherwise one per batch") {
  Fixture f;
  auto q = f.queue();
  uint64_t buffer = f.driver.alloc(1);
  q.push(f.driver.offer({{buffer, 1, false}}), 0);
  CHECK(q.should_notify());
  CHECK_FALSE(q.should_notify());  // nothing new
  f.driver.set_avail_flags(kAvailNoInterrupt);
  q.push(0, 0);
  CHECK_FALSE(q.should_notify());
}

TEST_CASE("notifications: EVENT_IDX interrupts only when used_event is passed") {
  Fixture f;
  auto q = f.queue({true, true});
  f.driver.set_used_event(1);  // wake me when the second buffer is used
  q.push(0, 0);
  CHECK_FALSE(q.should_notify());
  q.push(1, 0);
  CHECK(q.should_notify());
}
