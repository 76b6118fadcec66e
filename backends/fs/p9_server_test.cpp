// The 9P2000.L server driven the way Linux's v9fs client drives it, plus hostile messages: escapes
// out of the share (.., names with '/', symlinks relative and absolute), read-only shares, and
// truncated, oversized and random messages, which must all get an answer and never a crash.
#include "backends/fs/p9_server.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace stdfs = std::filesystem;
using backends::fs::P9Server;

constexpr uint32_t kNoFid = ~0u;

// A scratch tree: <top>/outside.txt is the host file the guest must never reach, <top>/share is
// the shared directory.
struct Tree {
  stdfs::path top;
  stdfs::path share;
  Tree() {
    char tmpl[] = "/tmp/p9test.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    top = tmpl;
    share = top / "share";
    stdfs::create_directory(share);
    write(top / "outside.txt", "host secret");
    write(share / "hello.txt", "hello from the host\n");
    stdfs::create_directory(share / "sub");
    write(share / "sub" / "deep.txt", "deep");
    stdfs::create_symlink("../outside.txt", share / "up-link");
    stdfs::create_symlink("/etc", share / "abs-link");
    stdfs::create_symlink("..", share / "dotdot-link");
  }
  ~Tree() {
    std::error_code ignored;
    stdfs::permissions(top, stdfs::perms::owner_all, ignored);
    stdfs::remove_all(top, ignored);
  }
  static void write(const stdfs::path& p, const std::string& text) { std::ofstream(p) << text; }
  static std::string read(const stdfs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

// Builds T-messages and parses R-messages (little-endian, as 9P is).
struct Msg {
  std::vector<uint8_t> bytes;
  explicit Msg(uint8_t type, uint16_t tag = 1) {
    u32(0);
    bytes.push_back(type);
    u16(tag);
  }
  Msg& u8(uint8_t v) {
    bytes.push_back(v);
    return *this;
  }
  Msg& u16(uint16_t v) {
    for (int i = 0; i < 2; ++i) bytes.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  Msg& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  Msg& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  Msg& str(const std::string& s) {
    u16(uint16_t(s.size()));
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  std::vector<uint8_t> done() const {
    std::vector<uint8_t> out = bytes;
    uint32_t size = uint32_t(out.size());
    for (int i = 0; i < 4; ++i) out[i] = uint8_t(size >> (8 * i));
    return out;
  }
};

struct Reply {
  std::vector<uint8_t> bytes;
  size_t at = 7;
  uint8_t type() const { return bytes.size() > 4 ? bytes[4] : 0; }
  // Rlerror's errno, 0 for any other reply.
  uint32_t error() const {
    if (type() != 7 || bytes.size() < 11) return 0;
    return uint32_t(bytes[7]) | uint32_t(bytes[8]) << 8 | uint32_t(bytes[9]) << 16 |
           uint32_t(bytes[10]) << 24;
  }
  uint64_t get(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(bytes.at(at + i)) << (8 * i);
    at += n;
    return v;
  }
  std::string str() {
    size_t n = get(2);
    std::string s(bytes.begin() + long(at), bytes.begin() + long(at + n));
    at += n;
    return s;
  }
};

struct Client {
  std::shared_ptr<P9Server> server;
  size_t room = 65536;
  explicit Client(const stdfs::path& share, bool read_only = false) {
    auto made = P9Server::open(share.string(), read_only);
    REQUIRE(made.ok());
    server = made.value();
    Reply r = send(Msg(100).u32(65536).str("9P2000.L"));
    REQUIRE(r.type() == 101);
    r = send(Msg(104).u32(0).u32(kNoFid).str("root").str("").u32(0));
    REQUIRE(r.type() == 105);
  }
  Reply send_raw(const std::vector<uint8_t>& request) {
    Reply r;
    r.bytes.assign(room, 0xee);
    size_t n = server->serve(request, r.bytes);
    REQUIRE(n <= room);
    r.bytes.resize(n);
    if (n >= 4) {
      uint32_t size = uint32_t(r.bytes[0]) | uint32_t(r.bytes[1]) << 8 | uint32_t(r.bytes[2]) << 16;
      CHECK(size == n);
    }
    return r;
  }
  Reply send(const Msg& m) { return send_raw(m.done()); }

  // Twalk from `fid` to `newfid`; returns the error (0 = every name walked).
  uint32_t walk(uint32_t fid, uint32_t newfid, const std::vector<std::string>& names,
                size_t* walked = nullptr) {
    Msg m(110);
    m.u32(fid).u32(newfid).u16(uint16_t(names.size()));
    for (const auto& n : names) m.str(n);
    Reply r = send(m);
    if (r.error()) return r.error();
    REQUIRE(r.type() == 111);
    size_t count = r.get(2);
    if (walked) *walked = count;
    return count == names.size() ? 0 : ENOENT;
  }
  uint32_t lopen(uint32_t fid, uint32_t flags) { return send(Msg(12).u32(fid).u32(flags)).error(); }
  std::string read(uint32_t fid, uint64_t offset = 0, uint32_t count = 4096) {
    Reply r = send(Msg(116).u32(fid).u64(offset).u32(count));
    REQUIRE(r.type() == 117);
    uint32_t n = uint32_t(r.get(4));
    return std::string(r.bytes.begin() + 11, r.bytes.begin() + 11 + n);
  }
  uint32_t clunk(uint32_t fid) { return send(Msg(120).u32(fid)).error(); }
  uint64_t qid_path(uint32_t fid) {
    Reply r = send(Msg(24).u32(fid).u64(0x7ff));
    REQUIRE(r.type() == 25);
    r.get(8);
    r.get(1);
    r.get(4);
    return r.get(8);
  }
};

}  // namespace

TEST_CASE("9p: a session reads a host file") {
  Tree tree;
  Client c(tree.share);
  REQUIRE(c.walk(0, 1, {"hello.txt"}) == 0);
  REQUIRE(c.lopen(1, 0) == 0);
  CHECK(c.read(1) == "hello from the host\n");
  CHECK(c.read(1, 6, 4) == "from");
  CHECK(c.read(1, 1000) == "");
  CHECK(c.clunk(1) == 0);
  CHECK(c.clunk(1) == EBADF);
  // getattr: a regular file of the right size.
  REQUIRE(c.walk(0, 2, {"sub", "deep.txt"}) == 0);
  Reply r = c.send(Msg(24).u32(2).u64(0x7ff));
  REQUIRE(r.type() == 25);
  r.get(8);
  CHECK(r.get(1) == 0);  // qid type: file
  r.get(12);
  uint32_t mode = uint32_t(r.get(4));
  CHECK(S_ISREG(mode));
  r.get(4 + 4 + 8 + 8);
  CHECK(r.get(8) == 4);  // size
}

TEST_CASE("9p: the guest writes files the host then reads") {
  Tree tree;
  Client c(tree.share);
  REQUIRE(c.walk(0, 1, {"sub"}) == 0);
  Reply r = c.send(Msg(14).u32(1).str("new.txt").u32(0102 /*O_RDWR|O_CREAT*/).u32(0644).u32(0));
  REQUIRE(r.type() == 15);
  std::string text = "written by the guest";
  Msg w(118);
  w.u32(1).u64(0).u32(uint32_t(text.size()));
  for (char ch : text) w.u8(uint8_t(ch));
  r = c.send(w);
  REQUIRE(r.type() == 119);
  CHECK(r.get(4) == text.size());
  CHECK(c.send(Msg(50).u32(1).u32(0)).type() == 51);
  CHECK(c.clunk(1) == 0);
  CHECK(Tree::read(tree.share / "sub" / "new.txt") == text);
  // mkdir, renameat, unlinkat, setattr (truncate).
  CHECK(c.send(Msg(72).u32(0).str("dir").u32(0755).u32(0)).type() == 73);
  CHECK(stdfs::is_directory(tree.share / "dir"));
  REQUIRE(c.walk(0, 2, {"sub"}) == 0);
  REQUIRE(c.walk(0, 3, {"dir"}) == 0);
  CHECK(c.send(Msg(74).u32(2).str("new.txt").u32(3).str("moved.txt")).type() == 75);
  CHECK(Tree::read(tree.share / "dir" / "moved.txt") == text);
  REQUIRE(c.walk(3, 4, {"moved.txt"}) == 0);
  CHECK(c.send(Msg(26).u32(4).u32(0x8).u32(0).u32(0).u32(0).u64(7).u64(0).u64(0).u64(0).u64(0)).type() == 27);
  CHECK(Tree::read(tree.share / "dir" / "moved.txt") == "written");
  CHECK(c.send(Msg(76).u32(3).str("moved.txt").u32(0)).type() == 77);
  CHECK(!stdfs::exists(tree.share / "dir" / "moved.txt"));
  CHECK(c.send(Msg(76).u32(0).str("dir").u32(0x200)).type() == 77);
  CHECK(!stdfs::exists(tree.share / "dir"));
  // symlink + readlink: the target is stored as text.
  CHECK(c.send(Msg(16).u32(0).str("ln").str("/anywhere/at/all").u32(0)).type() == 17);
  REQUIRE(c.walk(0, 5, {"ln"}) == 0);
  Reply link = c.send(Msg(22).u32(5));
  REQUIRE(link.type() == 23);
  CHECK(link.str() == "/anywhere/at/all");
  // Hard links: of regular files only (a link's target could lie outside the share).
  REQUIRE(c.walk(0, 6, {"hello.txt"}) == 0);
  CHECK(c.send(Msg(70).u32(0).u32(6).str("hard.txt")).type() == 71);
  CHECK(Tree::read(tree.share / "hard.txt") == "hello from the host\n");
  CHECK(stdfs::hard_link_count(tree.share / "hello.txt") == 2);
  REQUIRE(c.walk(0, 7, {"up-link"}) == 0);
  CHECK(c.send(Msg(70).u32(0).u32(7).str("hard-outside")).error() == EPERM);
  CHECK(!stdfs::exists(tree.share / "hard-outside"));
  CHECK(c.send(Msg(70).u32(0).u32(6).str("../hard")).error() == EINVAL);
  // statfs answers.
  CHECK(c.send(Msg(8).u32(0)).type() == 9);
}

TEST_CASE("9p: readdir lists the directory across several calls") {
  Tree tree;
  for (int i = 0; i < 40; ++i) Tree::write(tree.share / "sub" / ("file-" + std::to_string(i)), "x");
  Client c(tree.share);
  REQUIRE(c.walk(0, 1, {"sub"}) == 0);
  REQUIRE(c.lopen(1, 0200000) == 0);
  std::vector<std::string> names;
  uint64_t offset = 0;
  for (int call = 0; call < 100; ++call) {
    Reply r = c.send(Msg(40).u32(1).u64(offset).u32(200));  // small count: several calls
    REQUIRE(r.type() == 41);
    uint32_t count = uint32_t(r.get(4));
    if (count == 0) break;
    size_t end = r.at + count;
    while (r.at < end) {
      r.get(13);
      offset = r.get(8);
      r.get(1);
      names.push_back(r.str());
    }
  }
  std::sort(names.begin(), names.end());
  CHECK(names.size() == 43);  // ., .., deep.txt and 40 files
  CHECK(std::count(names.begin(), names.end(), "deep.txt") == 1);
  CHECK(std::count(names.begin(), names.end(), "file-39") == 1);
}

TEST_CASE("9p: walking out of the share is impossible") {
  Tree tree;
  Client c(tree.share);
  uint64_t root = c.qid_path(0);
  // ".." at the root is the root, however often.
  REQUIRE(c.walk(0, 1, {"..", "..", ".."}) == 0);
  CHECK(c.qid_path(1) == root);
  CHECK(c.walk(0, 2, {"..", "outside.txt"}) == ENOENT);
  CHECK(c.walk(0, 2, {"sub", "..", "..", "outside.txt"}) == ENOENT);
  REQUIRE(c.walk(0, 2, {"sub", ".."}) == 0);
  CHECK(c.qid_path(2) == root);
  // Names that would move by themselves.
  CHECK(c.walk(0, 3, {"sub/../../outside.txt"}) == EINVAL);
  CHECK(c.walk(0, 3, {"../outside.txt"}) == EINVAL);
  CHECK(c.walk(0, 3, {"/etc"}) == EINVAL);
  CHECK(c.walk(0, 3, {""}) == EINVAL);
  CHECK(c.walk(0, 3, {std::string("hello.txt\0x", 11)}) == EINVAL);
  // Symlinks: the link itself is reachable (the guest reads it), never followed by the server.
  REQUIRE(c.walk(0, 4, {"up-link"}) == 0);
  CHECK(c.lopen(4, 0) == ELOOP);
  Reply target = c.send(Msg(22).u32(4));
  REQUIRE(target.type() == 23);
  CHECK(target.str() == "../outside.txt");
  // A walk through a link stops at the link (9P: a partial Rwalk, newfid not created).
  size_t walked = 0;
  CHECK(c.walk(0, 5, {"abs-link", "passwd"}, &walked) == ENOENT);
  CHECK(walked == 1);
  CHECK(c.walk(0, 5, {"dotdot-link", "outside.txt"}, &walked) == ENOENT);
  CHECK(walked == 1);
  REQUIRE(c.walk(0, 5, {"abs-link"}) == 0);
  CHECK(c.walk(5, 6, {"passwd"}) == ENOTDIR);
  REQUIRE(c.walk(0, 6, {"dotdot-link"}) == 0);
  CHECK(c.walk(6, 7, {"outside.txt"}) == ENOTDIR);
  CHECK(c.lopen(5, 0200000) == ELOOP);
  CHECK(c.send(Msg(40).u32(5).u64(0).u32(4096)).error() == EBADF);
  // Creating through a link's name does not create its target on the host.
  CHECK(c.send(Msg(14).u32(0).str("up-link").u32(0102).u32(0644).u32(0)).error() == ELOOP);
  CHECK(Tree::read(tree.top / "outside.txt") == "host secret");
  // *at operations refuse names with '/' too.
  CHECK(c.send(Msg(72).u32(0).str("../escaped").u32(0755).u32(0)).error() == EINVAL);
  CHECK(c.send(Msg(76).u32(0).str("../outside.txt").u32(0)).error() == EINVAL);
  CHECK(c.send(Msg(74).u32(0).str("hello.txt").u32(0).str("../stolen.txt")).error() == EINVAL);
  CHECK(c.send(Msg(16).u32(0).str("..").str("x").u32(0)).error() == EINVAL);
  CHECK(stdfs::exists(tree.top / "outside.txt"));
  CHECK(!stdfs::exists(tree.top / "escaped"));
  CHECK(!stdfs::exists(tree.top / "stolen.txt"));
  // Attributes of a link are not applied to its target.
  CHECK(c.send(Msg(26).u32(4).u32(0x8).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0)).error() ==
        ELOOP);
  CHECK(Tree::read(tree.top / "outside.txt") == "host secret");
}

TEST_CASE("9p: a directory renamed into a symlink does not lead out on ..") {
  Tree tree;
  stdfs::create_directory(tree.share / "a");
  stdfs::create_directory(tree.share / "a" / "b");
  Client c(tree.share);
  REQUIRE(c.walk(0, 1, {"a", "b"}) == 0);
  // Behind the fid's back, "a" becomes a link to the host's directory above the share.
  stdfs::rename(tree.share / "a", tree.share / "c");
  stdfs::create_directory_symlink(tree.top, tree.share / "a");
  // ".." from a/b reopens "a" without following it: the link itself, not the host directory.
  size_t walked = 0;
  CHECK(c.walk(1, 2, {"..", "outside.txt"}, &walked) == ENOENT);
  CHECK(walked == 1);
  REQUIRE(c.walk(1, 3, {".."}) == 0);
  CHECK(c.lopen(3, 0200000) == ELOOP);
}

TEST_CASE("9p: a read-only share refuses every change with EROFS") {
  Tree tree;
  Client c(tree.share, /*read_only=*/true);
  REQUIRE(c.walk(0, 1, {"hello.txt"}) == 0);
  CHECK(c.lopen(1, 1) == EROFS);      // O_WRONLY
  CHECK(c.lopen(1, 2) == EROFS);      // O_RDWR
  CHECK(c.lopen(1, 01000) == EROFS);  // O_TRUNC
  CHECK(c.lopen(1, 0) == 0);          // reading is fine
  CHECK(c.read(1, 0, 5) == "hello");
  CHECK(c.send(Msg(118).u32(1).u64(0).u32(1).u8('x')).error() == EROFS);
  CHECK(c.send(Msg(14).u32(0).str("new").u32(0102).u32(0644).u32(0)).error() == EROFS);
  CHECK(c.send(Msg(72).u32(0).str("d").u32(0755).u32(0)).error() == EROFS);
  CHECK(c.send(Msg(16).u32(0).str("l").str("x").u32(0)).error() == EROFS);
  CHECK(c.send(Msg(70).u32(0).u32(1).str("hard")).error() == EROFS);
  CHECK(c.send(Msg(76).u32(0).str("hello.txt").u32(0)).error() == EROFS);
  CHECK(c.send(Msg(74).u32(0).str("hello.txt").u32(0).str("x")).error() == EROFS);
  REQUIRE(c.walk(0, 2, {"hello.txt"}) == 0);
  CHECK(c.send(Msg(26).u32(2).u32(0x8).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0)).error() ==
        EROFS);
  CHECK(c.send(Msg(26).u32(2).u32(0x1).u32(0777).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0)).error() ==
        EROFS);
  CHECK(Tree::read(tree.share / "hello.txt") == "hello from the host\n");
  CHECK(!stdfs::exists(tree.share / "new"));
  CHECK(!stdfs::exists(tree.share / "d"));
}

TEST_CASE("9p: malformed messages get Rlerror, never a crash") {
  Tree tree;
  Client c(tree.share);
  // Every prefix of valid requests, with the size field claiming the prefix length.
  std::vector<Msg> valid = {
      Msg(110).u32(0).u32(9).u16(2).str("sub").str("deep.txt"),
      Msg(104).u32(7).u32(kNoFid).str("u").str("a").u32(0),
      Msg(14).u32(0).str("x").u32(2).u32(0644).u32(0),
      Msg(118).u32(0).u64(0).u32(4).u32(0),
      Msg(26).u32(0).u32(0x30).u32(0).u32(0).u32(0).u64(0).u64(1).u64(2).u64(3).u64(4),
      Msg(74).u32(0).str("a").u32(0).str("b"),
      Msg(100).u32(8192).str("9P2000.L"),
  };
  for (const Msg& m : valid) {
    std::vector<uint8_t> full = m.done();
    for (size_t len = 0; len < full.size(); ++len) {
      std::vector<uint8_t> cut(full.begin(), full.begin() + long(len));
      if (len >= 4)
        for (int i = 0; i < 4; ++i) cut[i] = uint8_t(len >> (8 * i));
      Reply r = c.send_raw(cut);
      if (len < 7) {
        CHECK(r.bytes.empty());  // not even a tag to answer
      } else {
        CHECK(r.type() == 7);
        CHECK(r.error() != 0);
      }
    }
  }
  // Tversion above started a new session: attach again.
  REQUIRE(c.send(Msg(100).u32(65536).str("9P2000.L")).type() == 101);
  REQUIRE(c.send(Msg(104).u32(0).u32(kNoFid).str("").str("").u32(0)).type() == 105);
  // A size field larger than the message, or than msize, or smaller than a header.
  std::vector<uint8_t> lie = Msg(120).u32(0).done();
  lie[0] = 0xff;
  lie[1] = 0xff;
  CHECK(c.send_raw(lie).error() == EINVAL);
  lie[0] = 3;
  lie[1] = 0;
  CHECK(c.send_raw(lie).error() == EINVAL);
  // Strings longer than the message.
  std::vector<uint8_t> long_name = Msg(110).u32(0).u32(1).u16(1).u16(0xffff).u8('a').done();
  CHECK(c.send_raw(long_name).error() == EPROTO);
  // A write whose count exceeds the data that came with it.
  REQUIRE(c.walk(0, 1, {"hello.txt"}) == 0);
  REQUIRE(c.lopen(1, 2) == 0);
  CHECK(c.send(Msg(118).u32(1).u64(0).u32(1000000).u8('x')).error() == EPROTO);
  CHECK(Tree::read(tree.share / "hello.txt") == "hello from the host\n");
  // Offsets beyond what a file offset can hold.
  CHECK(c.send(Msg(118).u32(1).u64(~0ull).u32(1).u8('x')).error() == EINVAL);
  CHECK(c.send(Msg(116).u32(1).u64(~0ull).u32(1)).error() == EINVAL);
  // A read count far beyond the reply room is cut to the room.
  c.room = 16;
  Reply r = c.send(Msg(116).u32(1).u64(0).u32(0xffffffff));
  REQUIRE(r.type() == 117);
  CHECK(r.get(4) == 16 - 11);
  c.room = 65536;
  // Too many walk elements, unknown fids, fids in use, no room for a reply at all.
  Msg many(110);
  many.u32(0).u32(2).u16(17);
  for (int i = 0; i < 17; ++i) many.str("sub");
  CHECK(c.send(many).error() == E2BIG);
  CHECK(c.walk(77, 78, {"sub"}) == EBADF);
  CHECK(c.walk(0, 1, {"sub"}) == EBADF);  // newfid 1 exists
  CHECK(c.walk(1, 2, {"x"}) == EBADF);    // fid 1 is open
  CHECK(c.send(Msg(104).u32(0).u32(kNoFid).str("").str("").u32(0)).error() == EBADF);
  CHECK(c.send(Msg(116).u32(0).u64(0).u32(10)).error() == EBADF);  // not open
  CHECK(c.send(Msg(200).u32(0)).error() == EOPNOTSUPP);
  c.room = 8;
  CHECK(c.send(Msg(120).u32(1)).bytes.empty());
  c.room = 65536;
  CHECK(c.lopen(1, 0) == EBADF);  // still open, the unanswered clunk did nothing
}

TEST_CASE("9p: random bytes never crash the server and every reply fits") {
  Tree tree;
  Client c(tree.share);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const uint8_t types[] = {8,  12, 14, 16,  22,  24,  26,  40,  50,  70,
                           72, 74, 76, 100, 104, 108, 110, 116, 118, 120};
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> m(7 + next() % 64);
    for (uint8_t& b : m) b = uint8_t(next());
    uint32_t size = (next() % 4) ? uint32_t(m.size()) : uint32_t(next());
    for (int k = 0; k < 4; ++k) m[k] = uint8_t(size >> (8 * k));
    m[4] = types[next() % sizeof types];
    if (m[4] == 100) continue;  // keep the session (a version resets it; covered above)
    // Small fids and names so that some requests reach the file system.
    if (m.size() >= 11) m[7] = uint8_t(next() % 4), m[8] = m[9] = m[10] = 0;
    c.room = 11 + next() % 512;
    Reply r = c.send_raw(m);
    CHECK(r.bytes.size() <= c.room);
  }
  CHECK(Tree::read(tree.top / "outside.txt") == "host secret");
}

TEST_CASE("9p: a guest cannot hold unbounded fids") {
  Tree tree;
  Client c(tree.share);
  uint32_t error = 0;
  uint32_t fid = 1;
  for (; fid < backends::fs::kMaxFids + 10 && error == 0; ++fid) error = c.walk(0, fid, {});
  CHECK(error == EMFILE);
  CHECK(c.server->fid_count() == backends::fs::kMaxFids);
  // Tversion starts a new session and releases them all.
  REQUIRE(c.send(Msg(100).u32(65536).str("9P2000.L")).type() == 101);
  CHECK(c.server->fid_count() == 0);
}

TEST_CASE("9p: a share that is not a directory is refused at open") {
  Tree tree;
  auto made = P9Server::open((tree.share / "hello.txt").string(), false);
  REQUIRE(!made.ok());
  CHECK(made.error().message.find("must be a directory") != std::string::npos);
  CHECK(!P9Server::open((tree.top / "missing").string(), false).ok());
}

TEST_CASE("9p: a session saved and loaded into a fresh server goes on where it was") {
  Tree tree;
  Client c(tree.share);
  REQUIRE(c.walk(0, 1, {"hello.txt"}) == 0);
  REQUIRE(c.lopen(1, 0) == 0);
  REQUIRE(c.walk(0, 2, {"sub"}) == 0);
  REQUIRE(c.walk(0, 3, {"sub", "deep.txt"}) == 0);
  CHECK_FALSE(c.server->cannot_save().has_value());
  const std::vector<uint8_t> saved = c.server->save_state();

  auto made = P9Server::open(tree.share.string(), false);
  REQUIRE(made.ok());
  Client restored(tree.share);  // a fresh server, its own session replaced below
  restored.server = made.value();
  REQUIRE(restored.server->load_state(saved).ok());
  CHECK(restored.server->fid_count() == 4);
  CHECK(restored.server->msize() == c.server->msize());
  CHECK(restored.read(1, 6, 4) == "from");               // fid 1 is open again, read-only
  CHECK(restored.lopen(1, 0) == EBADF);                  // and still counts as open
  CHECK(restored.walk(2, 4, {"deep.txt"}) == 0);         // fid 2 is sub/
  CHECK(restored.qid_path(3) == c.qid_path(3));          // fid 3 the same file
  CHECK(restored.walk(2, 5, {"..", "hello.txt"}) == 0);  // components survive for ".."

  SUBCASE("a held file deleted since makes the session unsaveable, naming it") {
    stdfs::remove(tree.share / "sub" / "deep.txt");
    auto why = c.server->cannot_save();
    REQUIRE(why.has_value());
    CHECK(why->find("/sub/deep.txt (fid 3)") != std::string::npos);
    // A snapshot taken before the deletion cannot be loaded now either: the path is gone.
    auto fresh = P9Server::open(tree.share.string(), false);
    REQUIRE(fresh.ok());
    auto loaded = fresh.value()->load_state(saved);
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().message.find("fid 3 (/sub/deep.txt)") != std::string::npos);
    CHECK(fresh.value()->fid_count() == 0);  // nothing half-loaded
  }
}

TEST_CASE("9p: a hostile saved session is refused, every truncation and flipped byte handled") {
  Tree tree;
  Client c(tree.share);
  REQUIRE(c.walk(0, 1, {"sub", "deep.txt"}) == 0);
  REQUIRE(c.lopen(1, 0) == 0);
  const std::vector<uint8_t> saved = c.server->save_state();
  auto fresh = P9Server::open(tree.share.string(), true);
  REQUIRE(fresh.ok());
  P9Server& server = *fresh.value();
  for (size_t n = 0; n < saved.size(); ++n)
    CHECK_FALSE(server.load_state(std::span<const uint8_t>(saved).first(n)).ok());
  for (size_t i = 0; i < saved.size(); ++i) {
    auto altered = saved;
    altered[i] ^= 0xff;
    (void)server.load_state(altered);  // either refused or a valid session: never a crash
  }
  // A component that escapes the share is refused like a walk.
  auto escape = saved;
  // Layout: version, msize, count, then fid 0 (root: id, depth 0, open, flags), then fid 1.
  const size_t fid1 = 12 + 13;
  REQUIRE(escape.size() > fid1 + 8 + 3);
  escape[fid1 + 8] = 2;  // first name length 2: "su" -> make it ".."
  escape.erase(escape.begin() + long(fid1 + 12), escape.begin() + long(fid1 + 13));
  escape[fid1 + 12] = '.';
  escape[fid1 + 13] = '.';
  CHECK_FALSE(server.load_state(escape).ok());
  CHECK(server.fid_count() == 0);
  // Open for writing on a read-only share: refused.
  auto writing = saved;
  writing[writing.size() - 4] = 2;  // the last fid's flags: O_RDWR
  auto loaded = server.load_state(writing);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message.find("open flags") != std::string::npos);
}

TEST_CASE("9p: a rename moves the paths of the fids below it, so .. and snapshots follow") {
  Tree tree;
  Client c(tree.share);
  REQUIRE(c.walk(0, 1, {"sub"}) == 0);
  REQUIRE(c.walk(0, 2, {"sub", "deep.txt"}) == 0);
  REQUIRE(c.walk(0, 3, {"hello.txt"}) == 0);
  const uint64_t deep = c.qid_path(2);
  CHECK(c.send(Msg(74).u32(0).str("sub").u32(0).str("renamed")).type() == 75);
  // Without the fids following, a snapshot would refuse: "/sub/deep.txt ... moved since".
  CHECK_FALSE(c.server->cannot_save().has_value());
  CHECK(c.walk(1, 4, {"..", "hello.txt"}) == 0);  // fid 1 is /renamed: ".." is the root
  CHECK(c.qid_path(4) == c.qid_path(3));
  const std::vector<uint8_t> saved = c.server->save_state();
  auto fresh = P9Server::open(tree.share.string(), false);
  REQUIRE(fresh.ok());
  REQUIRE(fresh.value()->load_state(saved).ok());
  Client restored(tree.share);
  restored.server = fresh.value();
  CHECK(restored.qid_path(2) == deep);
  CHECK(restored.walk(1, 5, {"deep.txt"}) == 0);
  // An entry that only shares a prefix of the name is not moved.
  REQUIRE(c.walk(0, 6, {"hello.txt"}) == 0);
  CHECK(c.send(Msg(74).u32(0).str("hello").u32(0).str("other")).error() == ENOENT);
  CHECK_FALSE(c.server->cannot_save().has_value());
}

TEST_CASE("9p: a session too large to load again is refused at save, with the reason") {
  Tree tree;
  // Ten levels of 250-character names: ~2.5 KiB of path per fid, 8192 fids hold ~20 MiB.
  std::vector<std::string> names;
  stdfs::path dir = tree.share;
  for (int i = 0; i < 10; ++i) {
    names.push_back(std::string(250, char('a' + i)));
    dir /= names.back();
  }
  stdfs::create_directories(dir);
  Client c(tree.share);
  REQUIRE(c.walk(0, 1, names) == 0);
  uint32_t fid = 2;
  for (; fid < 800; ++fid) REQUIRE(c.walk(1, fid, {}) == 0);
  CHECK_FALSE(c.server->cannot_save().has_value());  // ~2 MiB: saved, and loads again
  const std::vector<uint8_t> saved = c.server->save_state();
  CHECK(saved.size() > (1u << 20));
  CHECK(saved.size() <= backends::FsBackend::kMaxSavedState);
  auto fresh = P9Server::open(tree.share.string(), false);
  REQUIRE(fresh.ok());
  REQUIRE(fresh.value()->load_state(saved).ok());
  CHECK(fresh.value()->fid_count() == c.server->fid_count());
  for (; fid < backends::fs::kMaxFids; ++fid) REQUIRE(c.walk(1, fid, {}) == 0);
  auto why = c.server->cannot_save();
  REQUIRE(why.has_value());
  CHECK(why->find("MiB a snapshot keeps") != std::string::npos);
}
