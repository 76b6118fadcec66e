// The protocol against a fake target: what gdb-multiarch sends when it attaches, reads registers and
// memory, sets breakpoints, steps and continues; and hostile input (bad checksums, oversized packets,
// random bytes) that must end in protocol errors, never in a crash or a stuck session.
#include "debug/gdbstub/session.h"

#include <doctest/doctest.h>

#include <random>
#include <string>

#include "debug/gdbstub/fake_target.h"
#include "debug/gdbstub/riscv_registers.h"
#include "debug/gdbstub/x86_registers.h"

namespace {

using gdbstub::Session;
using gdbstub::StopEvent;
using gdbstub::testing::FakeTarget;

struct Client {
  FakeTarget target;
  Session session{target};
  Client() { session.attached(); }

  // Sends one well-formed packet; returns the reply's payload ("" for an empty reply), checking the
  // ack and the reply's framing and checksum.
  std::string ask(const std::string& payload) {
    std::string out;
    const std::string framed = Session::frame(payload);
    session.receive(std::span(reinterpret_cast<const uint8_t*>(framed.data()), framed.size()), out);
    REQUIRE(!out.empty());
    CHECK(out[0] == '+');
    return unframe(out.substr(1));
  }
  static std::string unframe(const std::string& framed) {
    if (framed.empty()) return "<none>";
    REQUIRE(framed.front() == '$');
    const size_t hash = framed.rfind('#');
    REQUIRE(hash != std::string::npos);
    REQUIRE(hash + 3 == framed.size());
    std::string payload;
    uint8_t sum = 0;
    for (size_t i = 1; i < hash; ++i) {
      sum += static_cast<uint8_t>(framed[i]);
      if (framed[i] == '}') {
        ++i;
        sum += static_cast<uint8_t>(framed[i]);
        payload += static_cast<char>(framed[i] ^ 0x20);
      } else {
        payload += framed[i];
      }
    }
    CHECK(std::stoul(framed.substr(hash + 1), nullptr, 16) == sum);
    return payload;
  }
  std::string raw(const std::string& bytes) {
    std::string out;
    session.receive(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), out);
    return out;
  }
};

std::string le64(uint64_t v) {
  char buf[17];
  std::string out;
  for (int i = 0; i < 8; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>((v >> (8 * i)) & 0xff));
    out += buf;
  }
  return out;
}

}  // namespace

TEST_CASE("gdbstub: attach, target description, threads and the stop reason") {
  Client c;
  CHECK(c.target.stopped());  // attaching stops the machine (all-stop)
  CHECK(c.ask("qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+").find("qXfer:features:read+") !=
        std::string::npos);
  std::string xml;
  for (size_t offset = 0;;) {
    char request[64];
    std::snprintf(request, sizeof request, "qXfer:features:read:target.xml:%zx,200", offset);
    std::string part = c.ask(request);
    REQUIRE(!part.empty());
    xml += part.substr(1);
    offset += part.size() - 1;
    if (part[0] == 'l') break;
    REQUIRE(part[0] == 'm');
  }
  CHECK(xml == gdbstub::riscv::target_xml());
  CHECK(xml.find("<architecture>riscv:rv64</architecture>") != std::string::npos);
  CHECK(xml.find("org.gnu.gdb.riscv.fpu") != std::string::npos);
  CHECK(xml.find("name=\"satp\" bitsize=\"64\" regnum=\"449\"") != std::string::npos);  // 65 + 0x180
  CHECK(c.ask("qXfer:features:read:other.xml:0,100") == "E00");
  CHECK(c.ask("?") == "T05thread:1;");
  CHECK(c.ask("qfThreadInfo") == "m1,2");
  CHECK(c.ask("qsThreadInfo") == "l");
  CHECK(c.ask("T2") == "OK");
  CHECK(c.ask("T3") == "E01");
  CHECK(c.ask("T0") == "E01");
  CHECK(c.ask("Hg2") == "OK");
  CHECK(c.ask("qC") == "QC2");
  CHECK(c.ask("Hg99") == "E01");
  CHECK(c.ask("qAttached") == "1");
  CHECK(c.ask("vMustReplyEmpty").empty());
}

TEST_CASE("gdbstub: registers by g/p and written by G/P, for the selected thread") {
  Client c;
  c.target.regs[0].x[1] = 0x1122334455667788;
  c.target.regs[0].pc = 0x80200000;
  c.target.regs[1].pc = 0xffffffff80001000;
  c.target.regs[0].mstatus = 0xa00000000 | (1 << 1) | (1 << 3);
  c.target.regs[0].priv = 1;
  const std::string g = c.ask("g");
  REQUIRE(g.size() == 33 * 16);
  CHECK(g.substr(0, 16) == le64(0));
  CHECK(g.substr(16, 16) == "8877665544332211");
  CHECK(g.substr(32 * 16) == le64(0x80200000));
  CHECK(c.ask("p20") == le64(0x80200000));    // pc
  CHECK(c.ask("p341") == le64(0xa0000000a));  // mstatus (65 + 0x300)
  CHECK(c.ask("p141") == le64(0x200000002));  // sstatus: SIE and UXL only, MIE hidden
  CHECK(c.ask("p1041") == le64(1));           // priv
  CHECK(c.ask("p1000") == "E01");             // a number gdb was not told about
  CHECK(c.ask("pzz") == "E02");
  CHECK(c.ask("P5=" + le64(42)) == "OK");
  CHECK(c.target.regs[0].x[5] == 42);
  CHECK(c.ask("P0=" + le64(42)) == "OK");  // x0 ignores writes
  CHECK(c.target.regs[0].x[0] == 0);
  CHECK(c.ask("P1041=" + le64(2)) == "E01");  // no such privilege level
  CHECK(c.ask("P1041=" + le64(3)) == "OK");
  CHECK(c.target.regs[0].priv == 3);
  CHECK(c.ask("P5=12") == "E02");
  CHECK(c.ask("Hg2") == "OK");
  CHECK(c.ask("p20") == le64(0xffffffff80001000));
  CHECK(c.ask("pf55") == le64(1));  // mhartid (65 + 0xf14) of the second thread
  std::string all = c.ask("g");
  all.replace(32 * 16, 16, le64(0x1234));
  CHECK(c.ask("G" + all) == "OK");
  CHECK(c.target.regs[1].pc == 0x1234);
  CHECK(c.ask("G1234") == "E02");
}

std::string le(uint64_t v, unsigned bytes) {
  return le64(v).substr(0, 2 * bytes);
}

TEST_CASE("gdbstub: x86_64 target description and registers in gdb's amd64 order") {
  Client c;
  c.target.x86 = true;
  std::string xml;
  for (size_t offset = 0;;) {
    char request[64];
    std::snprintf(request, sizeof request, "qXfer:features:read:target.xml:%zx,200", offset);
    std::string part = c.ask(request);
    REQUIRE(!part.empty());
    xml += part.substr(1);
    offset += part.size() - 1;
    if (part[0] == 'l') break;
  }
  CHECK(xml == gdbstub::x86::target_xml());
  CHECK(xml.find("<architecture>i386:x86-64</architecture>") != std::string::npos);
  CHECK(xml.find("name=\"st7\" bitsize=\"80\" regnum=\"31\" type=\"i387_ext\"") != std::string::npos);
  CHECK(xml.find("name=\"xmm15\" bitsize=\"128\" regnum=\"55\"") != std::string::npos);
  CHECK(xml.find("org.gnu.gdb.i386.segments") != std::string::npos);

  accel::X86VcpuState& s = c.target.x86_regs[0];
  for (unsigned i = 0; i < 16; ++i) s.gpr[i] = 0x1000 + i;  // KVM order: rsp is 6, rbp 7
  s.rip = 0xffffffff81000000;
  s.rflags = 0x246;
  s.cs.selector = 0x10;
  s.fs.base = 0x7000;
  s.cr3 = 0x9000;
  s.xsave.assign(4096, 0);
  s.xsave[0] = 0x7f, s.xsave[1] = 0x03;    // fctrl 0x37f
  s.xsave[24] = 0x80, s.xsave[25] = 0x1f;  // mxcsr 0x1f80
  s.xsave[160 + 16] = 0xab;                // xmm1's low byte
  const std::string g = c.ask("g");
  // 16 GPRs, rip, eflags, 6 selectors, st0-7, 8 x87 control, xmm0-15, mxcsr, fs/gs base, 6 control.
  REQUIRE(g.size() == 2 * (16 * 8 + 8 + 4 + 6 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4 + 2 * 8 + 6 * 8));
  CHECK(g.substr(6 * 16, 16) == le64(0x1007));  // rbp
  CHECK(g.substr(7 * 16, 16) == le64(0x1006));  // rsp
  CHECK(g.substr(16 * 16, 16) == le64(0xffffffff81000000));
  CHECK(g.substr(17 * 16, 8) == le(0x246, 4));
  CHECK(c.ask("p7") == le64(0x1006));
  CHECK(c.ask("p12") == le(0x10, 4));                  // cs
  CHECK(c.ask("p20") == le(0x37f, 4));                 // fctrl
  CHECK(c.ask("p22") == le(0xffff, 4));                // ftag: all empty
  CHECK(c.ask("p29") == "ab" + std::string(30, '0'));  // xmm1
  CHECK(c.ask("p38") == le(0x1f80, 4));                // mxcsr
  CHECK(c.ask("p39") == le64(0x7000));                 // fs_base
  CHECK(c.ask("p3d") == le64(0x9000));                 // cr3
  CHECK(c.ask("p41") == "E02");                        // beyond the description
  CHECK(c.ask("P0=" + le64(42)) == "OK");
  CHECK(s.gpr[0] == 42);
  CHECK(c.ask("P6=" + le64(0x5000)) == "OK");
  CHECK(s.gpr[7] == 0x5000);
  CHECK(c.ask("P0=" + le(1, 4)) == "E02");                     // a wrong size
  CHECK(c.ask("P12=" + le(0x18, 4)) == "E01");                 // selectors are the guest's
  CHECK(c.ask("P3d=" + le64(0)) == "E01");                     // so are the control registers
  CHECK(c.ask("P28=" + std::string(30, '0') + "cd") == "OK");  // xmm0's top byte
  CHECK(s.xsave[160 + 15] == 0xcd);
  CHECK((s.xsave[512] & 2) != 0);  // XSTATE_BV: SSE state in use
  std::string all = c.ask("g");
  all.replace(16 * 16, 16, le64(0x1234));
  CHECK(c.ask("G" + all) == "OK");
  CHECK(s.rip == 0x1234);
  CHECK(s.cs.selector == 0x10);
  CHECK(c.ask("G" + all.substr(0, 100)) == "E02");
}

TEST_CASE("gdbstub: the debug trigger CSRs, tdata1/tdata2 through tselect") {
  Client c;
  const unsigned kTselect = gdbstub::riscv::kFirstCsr + 0x7a0;
  const unsigned kTdata1 = gdbstub::riscv::kFirstCsr + 0x7a1;
  c.target.regs[0].tdata1[1] = 0x2000000000000044;
  char request[64];
  std::snprintf(request, sizeof request, "P%x=0100000000000000", kTselect);
  CHECK(c.ask(request) == "OK");
  CHECK(c.target.regs[0].tselect == 1);
  std::snprintf(request, sizeof request, "p%x", kTdata1);
  CHECK(c.ask(request) == "4400000000000020");  // trigger 1's, little-endian
  std::snprintf(request, sizeof request, "P%x=0900000000000000", kTselect);
  CHECK(c.ask(request) == "OK");
  CHECK(c.target.regs[0].tselect == 1);  // out of range: kept
  std::snprintf(request, sizeof request, "P%x=0000000000000000", kTdata1);
  CHECK(c.ask(request) == "OK");
  CHECK(c.target.regs[0].tdata1[1] == 0);
  CHECK(gdbstub::riscv::target_xml().find("name=\"tdata1\"") != std::string::npos);
}

TEST_CASE("gdbstub: memory by virtual address, and by physical address in QEMU's PhyMemMode") {
  Client c;
  c.target.ram[0x100] = 0xab;
  c.target.ram[0x101] = 0xcd;
  CHECK(c.ask("mffffffc000000100,2") == "abcd");
  CHECK(c.ask("m80000100,2") == "E14");  // not a mapped virtual address
  CHECK(c.ask("Qqemu.PhyMemMode:1") == "OK");
  CHECK(c.ask("m80000100,2") == "abcd");
  CHECK(c.ask("M80000200,3:010203") == "OK");
  CHECK(c.target.ram[0x202] == 3);
  CHECK(c.ask("M80000200,3:0102") == "E02");  // length and data disagree
  CHECK(c.ask("M80000200,2:01zz") == "E02");
  CHECK(c.ask("m8000fffe,4") == "E14");  // runs off the end of RAM: nothing partial
  CHECK(c.ask("m80000000,ffffffff").size() == 2 * Session::kMaxMemory);  // clamped, gdb asks again
  CHECK(c.ask("mffffffffffffffff,ffffffffffffffff") == "E14");
  CHECK(c.ask("m1ffffffffffffffff,1") == "E02");  // 17 digits
  CHECK(c.ask("m,") == "E02");
  CHECK(c.ask("X80000000,0:").empty());  // binary writes: unsupported, gdb uses M
}

TEST_CASE("gdbstub: breakpoints, continue, step, vCont and Ctrl-C") {
  Client c;
  CHECK(c.ask("Z0,ffffffff80001000,2") == "OK");
  CHECK(c.ask("Z1,ffffffff80002000,4") == "OK");  // a hardware breakpoint: also by address, host-side
  CHECK(c.ask("Z0,ffffffff80001000,2") == "OK");  // twice is once
  CHECK(c.ask("Z5,ffffffff80003000,8").empty());  // unknown kinds: unsupported
  CHECK(c.ask("Z0,zz,2") == "E02");
  CHECK(c.ask("Z9") == "E02");
  CHECK(c.ask("Z9,1000,4").empty());  // a kind we do not know: unsupported
  CHECK(c.ask("c") == "<none>");      // no reply until the target stops
  CHECK(c.session.running());
  CHECK(c.target.last_step == -1);
  CHECK(c.target.breakpoints == std::vector<uint64_t>{0xffffffff80001000, 0xffffffff80002000});
  CHECK(c.ask("g") == "E01");  // all-stop: nothing but Ctrl-C while it runs
  std::string out;
  c.session.on_stop({StopEvent::Reason::kBreakpoint, 1}, out);
  CHECK(Client::unframe(out) == "T05thread:2;");
  CHECK(c.ask("qC") == "QC2");  // the stopping thread becomes the current one

  CHECK(c.ask("z0,ffffffff80001000,2") == "OK");
  CHECK(c.ask("vCont?") == "vCont;c;C;s;S");
  CHECK(c.ask("vCont;s:1;c") == "<none>");
  CHECK(c.target.last_step == 0);
  CHECK(c.target.breakpoints == std::vector<uint64_t>{0xffffffff80002000});
  out.clear();
  c.session.on_stop({StopEvent::Reason::kStep, 0}, out);
  CHECK(Client::unframe(out) == "T05thread:1;");
  out.clear();
  c.session.on_stop({StopEvent::Reason::kStep, 0}, out);  // not running: a late event is dropped
  CHECK(out.empty());

  CHECK(c.ask("s") == "<none>");
  CHECK(c.target.last_step == 0);
  c.session.on_stop({StopEvent::Reason::kStep, 0}, out);
  CHECK(c.ask("vCont;x") == "E02");
  CHECK(c.ask("vCont;c:9") == "E01");
  CHECK(c.ask("vCont;t") == "E02");  // nothing to resume

  CHECK(c.ask("c") == "<none>");
  const int stops = c.target.stops;
  out = c.raw("\x03");
  CHECK(c.target.stops == stops + 1);
  CHECK(Client::unframe(out) == "T02thread:1;");
  CHECK_FALSE(c.session.running());
}

TEST_CASE("gdbstub: Z1 hardware breakpoints are host-side too; stops say hwbreak or swbreak when asked") {
  Client c;
  CHECK(c.ask("qSupported:multiprocess+;swbreak+;hwbreak+").find(";swbreak+;hwbreak+") != std::string::npos);
  CHECK(c.ask("Z0,80001000,4") == "OK");
  CHECK(c.ask("Z1,80002000,4") == "OK");
  CHECK(c.ask("Z1,80001000,4") == "OK");  // both kinds at one address: one breakpoint on the target
  CHECK(c.ask("c") == "<none>");
  CHECK(c.target.breakpoints == std::vector<uint64_t>{0x80001000, 0x80002000});
  std::string out;
  c.session.on_stop({StopEvent::Reason::kBreakpoint, 0, 0, 0x80002000}, out);
  CHECK(Client::unframe(out) == "T05hwbreak:;thread:1;");
  CHECK(c.ask("z1,80001000,4") == "OK");
  CHECK(c.ask("c") == "<none>");
  out.clear();
  c.session.on_stop({StopEvent::Reason::kBreakpoint, 1, 0, 0x80001000}, out);
  CHECK(Client::unframe(out) == "T05swbreak:;thread:2;");
  CHECK(c.ask("z1,80002000,4") == "OK");
  CHECK(c.ask("c") == "<none>");
  CHECK(c.target.breakpoints == std::vector<uint64_t>{0x80001000});
  out.clear();
  c.session.on_stop({StopEvent::Reason::kBreakpoint, 0, 0, 0x80003000}, out);  // none of ours
  CHECK(Client::unframe(out) == "T05thread:1;");

  Client old;  // a client that did not offer them gets neither
  CHECK(old.ask("qSupported:multiprocess+").find("hwbreak+") != std::string::npos);
  CHECK(old.ask("Z1,80002000,4") == "OK");
  CHECK(old.ask("c") == "<none>");
  out.clear();
  old.session.on_stop({StopEvent::Reason::kBreakpoint, 0, 0, 0x80002000}, out);
  CHECK(Client::unframe(out) == "T05thread:1;");
}

TEST_CASE("gdbstub: Z0 on a target with software breakpoints is planted at once; Z1 stays hardware") {
  Client c;
  c.target.x86 = true;
  c.target.plants = true;
  CHECK(c.ask("qSupported:multiprocess+;swbreak+;hwbreak+").find("swbreak+") != std::string::npos);
  const uint64_t code = FakeTarget::kVirtBase + 0x1000;
  char z0[64], z1[64];
  std::snprintf(z0, sizeof z0, "Z0,%llx,1", static_cast<unsigned long long>(code));
  std::snprintf(z1, sizeof z1, "Z1,%llx,1", static_cast<unsigned long long>(code + 0x10));
  CHECK(c.ask(z0) == "OK");
  CHECK(c.target.planted == std::vector<uint64_t>{code});  // before any continue
  CHECK(c.ask(z1) == "OK");
  // Unmapped or device memory: an error reply gdb reports ("Cannot insert breakpoint"), nothing planted.
  CHECK(c.ask("Z0,fee00000,1") == "E14");
  CHECK(c.ask("Z0,ffffffffffffffff,1") == "E14");
  CHECK(c.target.planted == std::vector<uint64_t>{code});
  CHECK(c.ask("z0,fee00000,1") == "OK");  // removing one that is not set is no error
  CHECK(c.ask("c") == "<none>");
  CHECK(c.target.breakpoints == std::vector<uint64_t>{code + 0x10});  // only Z1 uses debug registers
  std::string out;
  c.session.on_stop({StopEvent::Reason::kBreakpoint, 1, 0, code}, out);
  CHECK(Client::unframe(out) == "T05swbreak:;thread:2;");
  char z0_remove[64];
  std::snprintf(z0_remove, sizeof z0_remove, "z0,%llx,1", static_cast<unsigned long long>(code));
  CHECK(c.ask(z0_remove) == "OK");
  CHECK(c.target.planted.empty());
  CHECK(c.ask("qThreadExtraInfo,2") == "764350552031");  // "vCPU 1"
  CHECK(c.ask("Z0,ffffffff80001000,1") == "E14");
  CHECK(c.ask("D") == "OK");
  CHECK(c.target.detached);
}

TEST_CASE("gdbstub: watchpoints reach the target and their stops name their kind") {
  Client c;
  CHECK(c.ask("Z2,ffffffc000000100,8") == "OK");  // watch: writes
  CHECK(c.ask("Z3,ffffffc000000200,4") == "OK");  // rwatch: reads
  CHECK(c.ask("Z4,ffffffc000000300,1") == "OK");  // awatch: both
  CHECK(c.ask("Z2,ffffffc000000400,0") == "E02");
  CHECK(c.ask("Z2,ffffffffffffffff,2") == "E02");  // wraps around
  CHECK(c.ask("Z2,1000,ffffffff") == "E02");       // longer than we watch
  CHECK(c.ask("c") == "<none>");
  REQUIRE(c.target.watchpoints.size() == 3);
  CHECK(c.target.watchpoints[0].address == 0xffffffc000000100);
  CHECK(c.target.watchpoints[0].length == 8);
  CHECK((c.target.watchpoints[0].write && !c.target.watchpoints[0].read));
  CHECK((c.target.watchpoints[1].read && !c.target.watchpoints[1].write));
  CHECK((c.target.watchpoints[2].read && c.target.watchpoints[2].write));
  std::string out;
  c.session.on_stop({StopEvent::Reason::kWatchpoint, 0, 0xffffffc000000104}, out);
  CHECK(Client::unframe(out) == "T05watch:ffffffc000000104;thread:1;");
  CHECK(c.ask("c") == "<none>");
  out.clear();
  c.session.on_stop({StopEvent::Reason::kWatchpoint, 1, 0xffffffc000000200}, out);
  CHECK(Client::unframe(out) == "T05rwatch:ffffffc000000200;thread:2;");
  CHECK(c.ask("c") == "<none>");
  out.clear();
  c.session.on_stop({StopEvent::Reason::kWatchpoint, 0, 0xffffffc000000300}, out);
  CHECK(Client::unframe(out) == "T05awatch:ffffffc000000300;thread:1;");
  CHECK(c.ask("z3,ffffffc000000200,4") == "OK");
  CHECK(c.ask("c") == "<none>");
  CHECK(c.target.watchpoints.size() == 2);
}

TEST_CASE("gdbstub: a machine that ends while gdb waits is reported as exited") {
  Client c;
  std::string out;
  c.session.exited(3, out);
  CHECK(out.empty());  // stopped: nothing to report
  CHECK(c.ask("c") == "<none>");
  c.session.exited(0x103, out);
  CHECK(Client::unframe(out) == "W03");
  CHECK(c.session.closed());
}

TEST_CASE("gdbstub: detach lets the machine run on; kill stops it") {
  Client c;
  CHECK(c.ask("Z0,1000,2") == "OK");
  CHECK(c.ask("D") == "OK");
  CHECK(c.target.detached);
  CHECK(c.session.closed());
  Client k;
  CHECK(k.ask("k") == "<none>");
  CHECK(k.target.killed);
  CHECK(k.session.closed());
  Client v;
  CHECK(v.ask("vKill;1") == "OK");
  CHECK(v.target.killed);
  Client gone;
  gone.session.disconnected();
  CHECK(gone.target.detached);
}

TEST_CASE("gdbstub: hostile input gets protocol errors and the session keeps working") {
  Client c;
  // A bad checksum is nacked, and gdb resends.
  CHECK(c.raw("$g#00") == "-");
  CHECK(c.raw("$g#zz") == "-");
  // A nack makes us resend the last reply, a bounded number of times.
  CHECK(c.ask("qC") == "QC1");
  std::string resent = c.raw("-");
  CHECK(Client::unframe(resent) == "QC1");
  for (int i = 0; i < 20; ++i) c.raw("-");
  CHECK(c.raw("-").empty());
  // A packet far larger than PacketSize is dropped whole and answered with an error.
  std::string huge = "m" + std::string(200000, '1');
  CHECK(Client::unframe(c.raw(Session::frame(huge)).substr(1)).rfind("E", 0) == 0);
  // Escapes that decode to garbage, unknown packets, empty packets.
  CHECK(c.ask(std::string("m}") + "\x5d" + ",1") == "E02");
  CHECK(c.ask("").empty());
  CHECK(c.ask("\xff\xfe").empty());
  CHECK(c.ask("H").size() > 0);
  CHECK(c.ask("P").rfind("E", 0) == 0);
  CHECK(c.ask("Pffffffffffffffffff=00") == "E02");
  CHECK(c.ask("qXfer:features:read:target.xml:ffffffffffffffff,ffffffffffffffff") == "l");
  // Random bytes: whatever they do, the stub answers a well-formed packet afterwards.
  std::mt19937 random(15);
  for (int round = 0; round < 200; ++round) {
    std::string noise(1 + random() % 3000, '\0');
    for (char& ch : noise) {
      const unsigned pick = random() % 16;
      ch = pick == 0   ? '$'
           : pick == 1 ? '#'
           : pick == 2 ? '}'
           : pick == 3 ? '\x03'
                       : static_cast<char>(random());
    }
    c.raw(noise);
    c.raw("#00");                   // ends any packet the noise left open (a bad checksum: nacked)
    if (c.session.closed()) break;  // the noise may have said k or D, validly framed: unlikely
    if (c.session.running()) c.raw("\x03");
    CHECK(c.ask("qC").rfind("QC", 0) == 0);
  }
  CHECK(c.session.protocol_errors() > 0);
}
