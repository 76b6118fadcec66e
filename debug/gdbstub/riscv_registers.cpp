#include "debug/gdbstub/riscv_registers.h"

#include <cstdio>

namespace gdbstub::riscv {
namespace {

using State = accel::RiscvVcpuState;

// sstatus is a view of mstatus: SIE SPIE UBE SPP VS FS XS SUM MXR UXL SD.
constexpr uint64_t kSstatusMask = 0x80000003000de762ull;
// rv64 with I M A F D C, S and U modes.
constexpr uint64_t kMisa = (2ull << 62) | (1u << 0) | (1u << 2) | (1u << 3) | (1u << 5) | (1u << 8) |
                           (1u << 12) | (1u << 18) | (1u << 20);

struct Csr {
  const char* name;
  uint16_t number;
  uint64_t (*get)(const State&, unsigned hart);
  void (*set)(State&, uint64_t);  // null: read-only
};

uint64_t pmpcfg(const State& s, unsigned first) {
  uint64_t v = 0;
  for (unsigned i = 0; i < 8; ++i) v |= static_cast<uint64_t>(s.pmpcfg[first + i]) << (8 * i);
  return v;
}
void set_pmpcfg(State& s, unsigned first, uint64_t v) {
  for (unsigned i = 0; i < 8; ++i) s.pmpcfg[first + i] = static_cast<uint8_t>(v >> (8 * i));
}

#define FIELD(name, number, field)                                              \
  Csr {                                                                         \
    name, number, [](const State& s, unsigned) -> uint64_t { return s.field; }, \
        [](State& s, uint64_t v) { s.field = v; }                               \
  }
#define PMPADDR(n) FIELD("pmpaddr" #n, 0x3b0 + n, pmpaddr[n])

const Csr kCsrs[] = {
    {"fflags", 0x001, [](const State& s, unsigned) -> uint64_t { return s.fflags; },
     [](State& s, uint64_t v) { s.fflags = static_cast<uint32_t>(v & 0x1f); }},
    {"frm", 0x002, [](const State& s, unsigned) -> uint64_t { return s.frm; },
     [](State& s, uint64_t v) { s.frm = static_cast<uint32_t>(v & 7); }},
    {"fcsr", 0x003, [](const State& s, unsigned) -> uint64_t { return s.fflags | (s.frm << 5); },
     [](State& s, uint64_t v) {
       s.fflags = static_cast<uint32_t>(v & 0x1f);
       s.frm = static_cast<uint32_t>((v >> 5) & 7);
     }},
    {"sstatus", 0x100, [](const State& s, unsigned) { return s.mstatus & kSstatusMask; },
     [](State& s, uint64_t v) { s.mstatus = (s.mstatus & ~kSstatusMask) | (v & kSstatusMask); }},
    {"sie", 0x104, [](const State& s, unsigned) { return s.mie & s.mideleg; },
     [](State& s, uint64_t v) { s.mie = (s.mie & ~s.mideleg) | (v & s.mideleg); }},
    FIELD("stvec", 0x105, stvec),
    FIELD("scounteren", 0x106, scounteren),
    FIELD("senvcfg", 0x10a, senvcfg),
    FIELD("sscratch", 0x140, sscratch),
    FIELD("sepc", 0x141, sepc),
    FIELD("scause", 0x142, scause),
    FIELD("stval", 0x143, stval),
    {"sip", 0x144, [](const State& s, unsigned) { return s.mip & s.mideleg; },
     [](State& s, uint64_t v) { s.mip = (s.mip & ~s.mideleg) | (v & s.mideleg); }},
    FIELD("stimecmp", 0x14d, stimecmp),
    FIELD("satp", 0x180, satp),
    FIELD("mstatus", 0x300, mstatus),
    {"misa", 0x301, [](const State&, unsigned) { return kMisa; }, nullptr},
    FIELD("medeleg", 0x302, medeleg),
    FIELD("mideleg", 0x303, mideleg),
    FIELD("mie", 0x304, mie),
    FIELD("mtvec", 0x305, mtvec),
    FIELD("mcounteren", 0x306, mcounteren),
    FIELD("menvcfg", 0x30a, menvcfg),
    FIELD("mcountinhibit", 0x320, mcountinhibit),
    FIELD("mscratch", 0x340, mscratch),
    FIELD("mepc", 0x341, mepc),
    FIELD("mcause", 0x342, mcause),
    FIELD("mtval", 0x343, mtval),
    FIELD("mip", 0x344, mip),
    {"pmpcfg0", 0x3a0, [](const State& s, unsigned) { return pmpcfg(s, 0); },
     [](State& s, uint64_t v) { set_pmpcfg(s, 0, v); }},
    {"pmpcfg2", 0x3a2, [](const State& s, unsigned) { return pmpcfg(s, 8); },
     [](State& s, uint64_t v) { set_pmpcfg(s, 8, v); }},
    PMPADDR(0),
    PMPADDR(1),
    PMPADDR(2),
    PMPADDR(3),
    PMPADDR(4),
    PMPADDR(5),
    PMPADDR(6),
    PMPADDR(7),
    PMPADDR(8),
    PMPADDR(9),
    PMPADDR(10),
    PMPADDR(11),
    PMPADDR(12),
    PMPADDR(13),
    PMPADDR(14),
    PMPADDR(15),
    // Debug triggers: tdata1/tdata2 are the selected trigger's, as on hardware behind OpenOCD. A
    // write from gdb is a debugger's (it may set dmode and action 1: the hart then stops for gdb).
    {"tselect", 0x7a0, [](const State& s, unsigned) { return s.tselect; },
     [](State& s, uint64_t v) {
       if (v < State::kTriggers) s.tselect = v;
     }},
    {"tdata1", 0x7a1, [](const State& s, unsigned) { return s.tdata1[s.tselect % State::kTriggers]; },
     [](State& s, uint64_t v) { s.tdata1[s.tselect % State::kTriggers] = v; }},
    {"tdata2", 0x7a2, [](const State& s, unsigned) { return s.tdata2[s.tselect % State::kTriggers]; },
     [](State& s, uint64_t v) { s.tdata2[s.tselect % State::kTriggers] = v; }},
    {"tdata3", 0x7a3, [](const State&, unsigned) -> uint64_t { return 0; }, nullptr},
    {"tinfo", 0x7a4, [](const State&, unsigned) -> uint64_t { return (1u << 2) | (1u << 6); }, nullptr},
    FIELD("mcycle", 0xb00, cycle),
    FIELD("minstret", 0xb02, instret),
    {"cycle", 0xc00, [](const State& s, unsigned) { return s.cycle; }, nullptr},
    {"instret", 0xc02, [](const State& s, unsigned) { return s.instret; }, nullptr},
    {"mhartid", 0xf14, [](const State&, unsigned hart) -> uint64_t { return hart; }, nullptr},
};
#undef PMPADDR
#undef FIELD

const char* const kXNames[32] = {"zero", "ra", "sp", "gp", "tp",  "t0",  "t1", "t2", "fp", "s1", "a0",
                                 "a1",   "a2", "a3", "a4", "a5",  "a6",  "a7", "s2", "s3", "s4", "s5",
                                 "s6",   "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"};
const char* const kFNames[32] = {"ft0", "ft1", "ft2",  "ft3",  "ft4", "ft5", "ft6",  "ft7",
                                 "fs0", "fs1", "fa0",  "fa1",  "fa2", "fa3", "fa4",  "fa5",
                                 "fa6", "fa7", "fs2",  "fs3",  "fs4", "fs5", "fs6",  "fs7",
                                 "fs8", "fs9", "fs10", "fs11", "ft8", "ft9", "ft10", "ft11"};

const Csr* find_csr(unsigned regnum) {
  if (regnum < kFirstCsr) return nullptr;
  for (const Csr& csr : kCsrs)
    if (csr.number == regnum - kFirstCsr) return &csr;
  return nullptr;
}

std::string make_xml() {
  std::string xml =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target>\n"
      "<architecture>riscv:rv64</architecture>\n<feature name=\"org.gnu.gdb.riscv.cpu\">\n";
  char line[160];
  for (unsigned i = 0; i < 32; ++i) {
    std::snprintf(line, sizeof line, "<reg name=\"%s\" bitsize=\"64\" regnum=\"%u\" type=\"%s\"/>\n",
                  kXNames[i], i,
                  i == 1             ? "code_ptr"
                  : i == 2 || i == 8 ? "data_ptr"
                                     : "int");
    xml += line;
  }
  xml += "<reg name=\"pc\" bitsize=\"64\" regnum=\"32\" type=\"code_ptr\"/>\n</feature>\n";
  xml +=
      "<feature name=\"org.gnu.gdb.riscv.fpu\">\n<union id=\"riscv_double\">"
      "<field name=\"float\" type=\"ieee_single\"/><field name=\"double\" type=\"ieee_double\"/></union>\n";
  for (unsigned i = 0; i < 32; ++i) {
    std::snprintf(line, sizeof line,
                  "<reg name=\"%s\" bitsize=\"64\" regnum=\"%u\" type=\"riscv_double\"/>\n", kFNames[i],
                  kFirstFp + i);
    xml += line;
  }
  for (unsigned i = 0; i < 3; ++i) {
    std::snprintf(line, sizeof line, "<reg name=\"%s\" bitsize=\"64\" regnum=\"%u\" type=\"int\"/>\n",
                  kCsrs[i].name, kFirstCsr + kCsrs[i].number);
    xml += line;
  }
  xml += "</feature>\n<feature name=\"org.gnu.gdb.riscv.csr\">\n";
  for (size_t i = 3; i < sizeof kCsrs / sizeof kCsrs[0]; ++i) {
    std::snprintf(line, sizeof line, "<reg name=\"%s\" bitsize=\"64\" regnum=\"%u\" type=\"int\"/>\n",
                  kCsrs[i].name, kFirstCsr + kCsrs[i].number);
    xml += line;
  }
  std::snprintf(line, sizeof line,
                "</feature>\n<feature name=\"org.gnu.gdb.riscv.virtual\">\n"
                "<reg name=\"priv\" bitsize=\"64\" regnum=\"%u\" type=\"int\"/>\n</feature>\n</target>\n",
                kPriv);
  xml += line;
  return xml;
}

}  // namespace

const std::string& target_xml() {
  static const std::string xml = make_xml();
  return xml;
}

std::optional<uint64_t> read_register(const State& state, unsigned hart, unsigned regnum) {
  if (regnum < 32) return regnum == 0 ? 0 : state.x[regnum];
  if (regnum == kPc) return state.pc;
  if (regnum >= kFirstFp && regnum < kFirstFp + 32) return state.f[regnum - kFirstFp];
  if (regnum == kPriv) return state.priv;
  if (const Csr* csr = find_csr(regnum)) return csr->get(state, hart);
  return std::nullopt;
}

bool write_register(State& state, unsigned regnum, uint64_t value) {
  if (regnum < 32) {
    if (regnum != 0) state.x[regnum] = value;
    return true;
  }
  if (regnum == kPc) {
    state.pc = value;
    return true;
  }
  if (regnum >= kFirstFp && regnum < kFirstFp + 32) {
    state.f[regnum - kFirstFp] = value;
    return true;
  }
  if (regnum == kPriv) {
    if (value != 0 && value != 1 && value != 3) return false;
    state.priv = static_cast<uint8_t>(value);
    return true;
  }
  const Csr* csr = find_csr(regnum);
  if (!csr || !csr->set) return false;
  csr->set(state, value);
  return true;
}

}  // namespace gdbstub::riscv
