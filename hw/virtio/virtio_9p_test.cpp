// virtio-9p through a real virtio-mmio transport: the mount tag in config space, 9P messages split
// across segments both ways, and a reset that ends the 9P session.
#include "hw/virtio/virtio_9p.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "backends/fs/p9_server.h"
#include "hw/virtio/test_harness.h"

using namespace hw::virtio;
using namespace hw::virtio::testing;

namespace {

struct Share {
  std::filesystem::path dir;
  Share() {
    char tmpl[] = "/tmp/virtio9p.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    std::ofstream(dir / "f.txt") << "file contents";
  }
  ~Share() { std::filesystem::remove_all(dir); }
};

std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char(uint8_t(v >> (8 * i)));
  return s;
}
std::string msg(uint8_t type, const std::string& body) {
  return le(7 + body.size(), 4) + char(type) + le(1, 2) + body;
}
std::string str(const std::string& s) {
  return le(s.size(), 2) + s;
}

}  // namespace

TEST_CASE("virtio-9p: the mount tag is in config space") {
  Share share;
  auto server = backends::fs::P9Server::open(share.dir.string(), false).value();
  auto device = std::make_shared<P9Device>(server, "hostshare");
  Harness h(device);
  REQUIRE(h.bring_up());
  h.write32(0x014, 0);
  CHECK((h.read32(0x010) & 1) == 1);  // VIRTIO_9P_MOUNT_TAG offered
  CHECK(h.read32(0x008) == 9);        // device id
  uint32_t word = h.read32(0x100);
  CHECK((word & 0xffff) == 9);  // tag_len
  CHECK(char(word >> 16) == 'h');
  CHECK(char(word >> 24) == 'o');
}

TEST_CASE("virtio-9p: requests and replies across segments, reset ends the session") {
  Share share;
  auto server = backends::fs::P9Server::open(share.dir.string(), false).value();
  auto device = std::make_shared<P9Device>(server, "s");
  Harness h(device);
  REQUIRE(h.bring_up());
  auto& q = h.queue(0);
  // Tversion split in two readable segments; the reply into two writable ones.
  std::string version = msg(100, le(8192, 4) + str("9P2000.L"));
  uint64_t a = q.alloc(5, version.substr(0, 5)), b = q.alloc(uint32_t(version.size() - 5), version.substr(5));
  uint64_t r1 = q.alloc(4), r2 = q.alloc(64);
  q.offer({{a, 5, false}, {b, uint32_t(version.size() - 5), false}, {r1, 4, true}, {r2, 64, true}});
  h.kick(0);
  REQUIRE(h.wait_used(0, 1));
  CHECK(q.used(0).second == 7 + 4 + 2 + 8);
  CHECK(uint8_t(q.read_string(r1, 4)[0]) == 21);
  CHECK(uint8_t(q.read_string(r2, 1)[0]) == 101);  // Rversion
  CHECK(q.read_string(r2 + 9, 8) == "9P2000.L");
  // Attach, walk, open, read.
  std::string requests[] = {
      msg(104, le(0, 4) + le(~0u, 4) + str("") + str("") + le(0, 4)),
      msg(110, le(0, 4) + le(1, 4) + le(1, 2) + str("f.txt")),
      msg(12, le(1, 4) + le(0, 4)),
      msg(116, le(1, 4) + le(0, 8) + le(100, 4)),
  };
  uint64_t reply = 0;
  for (size_t i = 0; i < 4; ++i) {
    uint64_t in = q.alloc(uint32_t(requests[i].size()), requests[i]);
    reply = q.alloc(256);
    q.offer({{in, uint32_t(requests[i].size()), false}, {reply, 256, true}});
    h.kick(0);
    REQUIRE(h.wait_used(0, uint16_t(2 + i)));
  }
  CHECK(q.read_string(reply + 11, 13) == "file contents");
  CHECK(server->fid_count() == 2);
  // A chain without room for a reply is returned with nothing written; the queue keeps working.
  std::string clunk = msg(120, le(1, 4));
  uint64_t in = q.alloc(uint32_t(clunk.size()), clunk);
  q.offer({{in, uint32_t(clunk.size()), false}});
  h.kick(0);
  REQUIRE(h.wait_used(0, 6));
  CHECK(q.used(5).second == 0);
  CHECK(!h.needs_reset());
  // Driver reset: the server forgets the session's fids.
  h.write32(0x070, 0);
  CHECK(server->fid_count() == 0);
}

TEST_CASE("virtio-9p: a session of several MiB saves and loads through the device") {
  Share share;
  std::filesystem::path deep = share.dir;
  std::string walk = le(0, 4) + le(1, 4) + le(8, 2);
  for (int i = 0; i < 8; ++i) {
    std::string name(250, char('a' + i));
    deep /= name;
    walk += str(name);
  }
  std::filesystem::create_directories(deep);
  auto server = backends::fs::P9Server::open(share.dir.string(), false).value();
  std::vector<uint8_t> reply(8192);
  auto serve = [&](const std::string& m) {
    std::vector<uint8_t> in(m.begin(), m.end());
    size_t n = server->serve(in, reply);
    REQUIRE(n >= 5);
    return reply[4];
  };
  REQUIRE(serve(msg(100, le(8192, 4) + str("9P2000.L"))) == 101);
  REQUIRE(serve(msg(104, le(0, 4) + le(~0u, 4) + str("") + str("") + le(0, 4))) == 105);
  REQUIRE(serve(msg(110, walk)) == 111);
  // 1500 clones of a 2 KiB path: ~3 MiB of state, over what a device state held before.
  for (uint32_t fid = 2; fid < 1500; ++fid) REQUIRE(serve(msg(110, le(1, 4) + le(fid, 4) + le(0, 2))) == 111);
  auto device = std::make_shared<P9Device>(server, "s");
  REQUIRE_FALSE(device->cannot_save().has_value());
  hw::StateWriter out;
  device->save_state(out);
  CHECK(out.data().size() > (2u << 20));

  auto other = backends::fs::P9Server::open(share.dir.string(), false).value();
  auto restored = std::make_shared<P9Device>(other, "s");
  hw::StateReader in(out.data());
  REQUIRE(restored->load_state(in, 1).ok());
  CHECK(other->fid_count() == server->fid_count());
}
