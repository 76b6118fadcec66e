#include "debug/gdbstub/x86_registers.h"

#include <cstdio>
#include <cstring>

namespace gdbstub::x86 {
namespace {

using State = accel::X86VcpuState;

// gdb's order rax rbx rcx rdx rsi rdi rbp rsp r8..r15 as indexes into KVM's order (rsp before rbp).
constexpr unsigned kGprIndex[16] = {0, 1, 2, 3, 4, 5, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
const char* const kGprNames[16] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                   "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
const char* const kSegNames[6] = {"cs", "ss", "ds", "es", "fs", "gs"};
const char* const kFpNames[8] = {"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"};
const char* const kSysNames[6] = {"cr0", "cr2", "cr3", "cr4", "cr8", "efer"};

// The legacy (FXSAVE) region at the start of the XSAVE area: where x87 and SSE state lives.
constexpr size_t kFcw = 0, kFsw = 2, kFtw = 4, kFop = 6, kFip = 8, kFcs = 12, kFdp = 16, kFds = 20;
constexpr size_t kMxcsrAt = 24, kStAt = 32, kXmmAt = 160, kXstateBv = 512;

const accel::X86Segment& segment(const State& s, unsigned i) {
  const accel::X86Segment* const segs[6] = {&s.cs, &s.ss, &s.ds, &s.es, &s.fs, &s.gs};
  return *segs[i];
}

uint64_t load(const std::vector<uint8_t>& area, size_t at, size_t size) {
  uint64_t v = 0;
  if (at + size <= area.size()) std::memcpy(&v, area.data() + at, size);
  return v;
}

// gdb wants the full x87 tag word (2 bits a register: valid, zero, special, empty); FXSAVE keeps one
// bit a physical register (empty or not). The rest is worked out from the value, as gdb's own
// i387_supply_fxsave does.
uint64_t full_tag_word(const std::vector<uint8_t>& area) {
  const unsigned abridged = static_cast<unsigned>(load(area, kFtw, 1));
  const unsigned top = static_cast<unsigned>(load(area, kFsw, 2) >> 11) & 7;
  uint64_t tags = 0;
  for (unsigned physical = 0; physical < 8; ++physical) {
    unsigned tag = 3;  // empty
    if (abridged & (1u << physical)) {
      const size_t at = kStAt + 16 * ((physical - top) & 7);
      const uint64_t mantissa = load(area, at, 8);
      const unsigned exponent = static_cast<unsigned>(load(area, at + 8, 2)) & 0x7fff;
      if (exponent == 0x7fff)
        tag = 2;
      else if (exponent == 0)
        tag = mantissa == 0 ? 1 : 2;
      else
        tag = (mantissa >> 63) ? 0 : 2;
    }
    tags |= uint64_t{tag} << (2 * physical);
  }
  return tags;
}

std::vector<uint8_t> bytes_of(uint64_t v, unsigned size) {
  std::vector<uint8_t> out(size);
  std::memcpy(out.data(), &v, std::min<size_t>(size, 8));
  return out;
}

std::string make_xml() {
  std::string xml =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target>\n"
      "<architecture>i386:x86-64</architecture>\n<feature name=\"org.gnu.gdb.i386.core\">\n"
      "<flags id=\"i386_eflags\" size=\"4\"><field name=\"CF\" start=\"0\" end=\"0\"/>"
      "<field name=\"\" start=\"1\" end=\"1\"/><field name=\"PF\" start=\"2\" end=\"2\"/>"
      "<field name=\"AF\" start=\"4\" end=\"4\"/><field name=\"ZF\" start=\"6\" end=\"6\"/>"
      "<field name=\"SF\" start=\"7\" end=\"7\"/><field name=\"TF\" start=\"8\" end=\"8\"/>"
      "<field name=\"IF\" start=\"9\" end=\"9\"/><field name=\"DF\" start=\"10\" end=\"10\"/>"
      "<field name=\"OF\" start=\"11\" end=\"11\"/><field name=\"NT\" start=\"14\" end=\"14\"/>"
      "<field name=\"RF\" start=\"16\" end=\"16\"/><field name=\"VM\" start=\"17\" end=\"17\"/>"
      "<field name=\"AC\" start=\"18\" end=\"18\"/><field name=\"VIF\" start=\"19\" end=\"19\"/>"
      "<field name=\"VIP\" start=\"20\" end=\"20\"/><field name=\"ID\" start=\"21\" end=\"21\"/></flags>\n";
  char line[200];
  auto reg = [&](const char* name, unsigned bits, unsigned regnum, const char* type, const char* group) {
    std::snprintf(line, sizeof line, "<reg name=\"%s\" bitsize=\"%u\" regnum=\"%u\" type=\"%s\"%s%s%s/>\n",
                  name, bits, regnum, type, group ? " group=\"" : "", group ? group : "", group ? "\"" : "");
    xml += line;
  };
  for (unsigned i = 0; i < 16; ++i)
    reg(kGprNames[i], 64, i, i == 6 || i == 7 ? "data_ptr" : "int64", nullptr);
  reg("rip", 64, kRip, "code_ptr", nullptr);
  reg("eflags", 32, kEflags, "i386_eflags", nullptr);
  for (unsigned i = 0; i < 6; ++i) reg(kSegNames[i], 32, 18 + i, "int32", nullptr);
  for (unsigned i = 0; i < 8; ++i) {
    std::snprintf(line, sizeof line, "st%u", i);
    const std::string name = line;
    reg(name.c_str(), 80, kFirstSt + i, "i387_ext", nullptr);
  }
  for (unsigned i = 0; i < 8; ++i) reg(kFpNames[i], 32, kFirstSt + 8 + i, "int", "float");
  xml +=
      "</feature>\n<feature name=\"org.gnu.gdb.i386.sse\">\n"
      "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/><vector id=\"v2d\" type=\"ieee_double\" "
      "count=\"2\"/>"
      "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/><vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
      "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/><vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
      "<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>"
      "<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>"
      "<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>"
      "<field name=\"uint128\" type=\"uint128\"/></union>\n";
  for (unsigned i = 0; i < 16; ++i) {
    std::snprintf(line, sizeof line, "xmm%u", i);
    const std::string name = line;
    reg(name.c_str(), 128, kFirstXmm + i, "vec128", "vector");
  }
  reg("mxcsr", 32, kMxcsr, "int", "vector");
  xml += "</feature>\n<feature name=\"org.gnu.gdb.i386.segments\">\n";
  reg("fs_base", 64, kFsBase, "int", nullptr);
  reg("gs_base", 64, kFsBase + 1, "int", nullptr);
  xml += "</feature>\n<feature name=\"org.vmlaunch.x86.sys\">\n";
  for (unsigned i = 0; i < 6; ++i) reg(kSysNames[i], 64, kCr0 + i, "int", "system");
  xml += "</feature>\n</target>\n";
  return xml;
}

}  // namespace

const std::string& target_xml() {
  static const std::string xml = make_xml();
  return xml;
}

unsigned register_size(unsigned regnum) {
  if (regnum < 17) return 8;
  if (regnum < kFirstSt) return 4;
  if (regnum < kFirstSt + 8) return 10;
  if (regnum < kFirstXmm) return 4;
  if (regnum < kMxcsr) return 16;
  if (regnum == kMxcsr) return 4;
  if (regnum < kRegisters) return 8;
  return 0;
}

std::optional<std::vector<uint8_t>> read_register(const State& s, unsigned regnum) {
  const unsigned size = register_size(regnum);
  if (size == 0) return std::nullopt;
  if (regnum < 16) return bytes_of(s.gpr[kGprIndex[regnum]], 8);
  if (regnum == kRip) return bytes_of(s.rip, 8);
  if (regnum == kEflags) return bytes_of(s.rflags, 4);
  if (regnum < kFirstSt) return bytes_of(segment(s, regnum - 18).selector, 4);
  if (regnum < kFirstXmm || (regnum >= kFirstXmm && regnum <= kMxcsr)) {
    std::vector<uint8_t> out(size);
    size_t at = 0, len = 0;
    if (regnum < kFirstSt + 8) {
      at = kStAt + 16 * (regnum - kFirstSt), len = 10;
    } else if (regnum < kFirstXmm) {
      switch (regnum - kFirstSt - 8) {
        case 0:
          return bytes_of(load(s.xsave, kFcw, 2), 4);
        case 1:
          return bytes_of(load(s.xsave, kFsw, 2), 4);
        case 2:
          return bytes_of(full_tag_word(s.xsave), 4);
        case 3:
          return bytes_of(load(s.xsave, kFcs, 2), 4);
        case 4:
          return bytes_of(load(s.xsave, kFip, 4), 4);
        case 5:
          return bytes_of(load(s.xsave, kFds, 2), 4);
        case 6:
          return bytes_of(load(s.xsave, kFdp, 4), 4);
        default:
          return bytes_of(load(s.xsave, kFop, 2) & 0x7ff, 4);
      }
    } else if (regnum < kMxcsr) {
      at = kXmmAt + 16 * (regnum - kFirstXmm), len = 16;
    } else {
      at = kMxcsrAt, len = 4;
    }
    if (at + len <= s.xsave.size()) std::memcpy(out.data(), s.xsave.data() + at, len);
    return out;
  }
  if (regnum == kFsBase) return bytes_of(s.fs.base, 8);
  if (regnum == kFsBase + 1) return bytes_of(s.gs.base, 8);
  const uint64_t sys[6] = {s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer};
  return bytes_of(sys[regnum - kCr0], 8);
}

bool write_register(State& s, unsigned regnum, std::span<const uint8_t> bytes) {
  const unsigned size = register_size(regnum);
  if (size == 0 || bytes.size() != size) return false;
  uint64_t v = 0;
  std::memcpy(&v, bytes.data(), std::min<size_t>(size, 8));
  if (regnum < 16) {
    s.gpr[kGprIndex[regnum]] = v;
    return true;
  }
  if (regnum == kRip) {
    s.rip = v;
    return true;
  }
  if (regnum == kEflags) {
    s.rflags = (v & 0xffffffff) | 2;  // bit 1 always reads as one
    return true;
  }
  if (regnum == kFsBase || regnum == kFsBase + 1) {
    (regnum == kFsBase ? s.fs : s.gs).base = v;
    return true;
  }
  // x87 and SSE registers live in the XSAVE area (its legacy region); the x87 control words other
  // than fctrl and fstat are left to the guest.
  size_t at = 0, len = 0;
  if (regnum >= kFirstSt && regnum < kFirstSt + 8) {
    at = kStAt + 16 * (regnum - kFirstSt), len = 10;
  } else if (regnum == kFirstSt + 8) {
    at = kFcw, len = 2;
  } else if (regnum == kFirstSt + 9) {
    at = kFsw, len = 2;
  } else if (regnum >= kFirstXmm && regnum < kMxcsr) {
    at = kXmmAt + 16 * (regnum - kFirstXmm), len = 16;
  } else if (regnum == kMxcsr) {
    at = kMxcsrAt, len = 4;
  } else {
    return false;
  }
  if (s.xsave.size() < kXstateBv + 8) return false;
  std::memcpy(s.xsave.data() + at, bytes.data(), len);
  // The component is in use now (XSTATE_BV: bit 0 x87, bit 1 SSE), or XRSTOR would load its reset state.
  s.xsave[kXstateBv] |= regnum >= kFirstXmm ? 2 : 1;
  return true;
}

}  // namespace gdbstub::x86
