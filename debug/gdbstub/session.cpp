#include "debug/gdbstub/session.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "debug/gdbstub/riscv_registers.h"
#include "debug/gdbstub/x86_registers.h"

namespace gdbstub {
namespace {

constexpr unsigned kMaxBreakpoints = 1024;
constexpr unsigned kMaxNacks = 8;  // a client that keeps nacking gets the reply no more

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A hex number of 1..16 digits, all of `text`.
std::optional<uint64_t> parse_hex(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    const int d = hex_digit(c);
    if (d < 0) return std::nullopt;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

// "ADDR,LEN" with both parts hex.
bool parse_addr_len(std::string_view text, uint64_t* addr, uint64_t* len) {
  const size_t comma = text.find(',');
  if (comma == std::string_view::npos) return false;
  auto a = parse_hex(text.substr(0, comma));
  auto l = parse_hex(text.substr(comma + 1));
  if (!a || !l) return false;
  *addr = *a;
  *len = *l;
  return true;
}

bool decode_bytes(std::string_view hex, std::vector<uint8_t>* out) {
  if (hex.size() % 2) return false;
  out->resize(hex.size() / 2);
  for (size_t i = 0; i < out->size(); ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

void append_hex_bytes(std::string& out, const uint8_t* data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
}

// The register layer of the target's architecture: how many go in a `g` packet (in register number
// order), each one's size, its bytes (little-endian, as gdb expects from both).
unsigned g_registers(Target::Arch arch) {
  return arch == Target::Arch::kX86_64 ? x86::kRegisters : riscv::kGRegisters;
}
bool known_regnum(Target::Arch arch, uint64_t regnum) {
  return arch == Target::Arch::kX86_64 ? regnum < x86::kRegisters : regnum <= riscv::kPriv;
}
unsigned register_size(Target::Arch arch, unsigned regnum) {
  return arch == Target::Arch::kX86_64 ? x86::register_size(regnum) : 8;
}
std::optional<std::vector<uint8_t>> get_register(const accel::VcpuState& state, unsigned thread,
                                                 unsigned regnum) {
  if (const auto* x = std::get_if<accel::X86VcpuState>(&state)) return x86::read_register(*x, regnum);
  auto value = riscv::read_register(std::get<accel::RiscvVcpuState>(state), thread, regnum);
  if (!value) return std::nullopt;
  std::vector<uint8_t> bytes(8);
  for (unsigned i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(*value >> (8 * i));
  return bytes;
}
bool set_register(accel::VcpuState& state, unsigned regnum, const std::vector<uint8_t>& bytes) {
  if (auto* x = std::get_if<accel::X86VcpuState>(&state)) return x86::write_register(*x, regnum, bytes);
  if (bytes.size() != 8) return false;
  uint64_t v = 0;
  for (unsigned i = 0; i < 8; ++i) v |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return riscv::write_register(std::get<accel::RiscvVcpuState>(state), regnum, v);
}

std::string hex_of(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%x", v);
  return buf;
}

const std::string kError = "E01";
const std::string kBadArgs = "E02";
const std::string kMemoryError = "E14";  // EFAULT: gdb says "Cannot access memory"

}  // namespace

std::string Session::frame(std::string_view payload) {
  std::string out = "$";
  uint8_t sum = 0;
  for (char c : payload) {
    if (c == '$' || c == '#' || c == '}' || c == '*') {
      out += '}';
      sum += '}';
      c = static_cast<char>(c ^ 0x20);
    }
    out += c;
    sum += static_cast<uint8_t>(c);
  }
  char tail[4];
  std::snprintf(tail, sizeof tail, "#%02x", sum);
  return out + tail;
}

void Session::attached() {
  (void)m_target.stop();
  m_running = false;
  m_last_stop = {StopEvent::Reason::kStep, 0};  // reported as SIGTRAP, like a machine held at reset
}

void Session::disconnected() {
  if (m_closed) return;
  m_breakpoints.clear();
  m_hw_breakpoints.clear();
  m_watchpoints.clear();
  m_target.detach();
  m_closed = true;
}

void Session::receive(std::span<const uint8_t> bytes, std::string& out) {
  for (uint8_t byte : bytes) {
    if (m_closed) return;
    const char c = static_cast<char>(byte);
    switch (m_rx) {
      case Rx::kIdle:
        if (c == '$') {
          m_rx = Rx::kData;
          m_packet.clear();
          m_overflow = false;
          m_sum = 0;
        } else if (byte == 0x03) {
          interrupt(out);
        } else if (c == '-') {
          if (!m_last_reply.empty() && m_nacks++ < kMaxNacks) out += m_last_reply;
        } else if (c != '+') {
          ++m_errors;  // noise between packets
        }
        break;
      case Rx::kData:
        if (c == '#') {
          m_rx = Rx::kSum1;
        } else if (c == '$') {  // a new packet before this one ended: drop this one
          ++m_errors;
          m_packet.clear();
          m_overflow = false;
          m_sum = 0;
        } else {
          m_sum += byte;
          if (c == '}')
            m_rx = Rx::kEscape;
          else
            append(byte);
        }
        break;
      case Rx::kEscape:
        m_sum += byte;
        m_rx = Rx::kData;
        append(static_cast<uint8_t>(byte ^ 0x20));
        break;
      case Rx::kSum1: {
        const int d = hex_digit(c);
        m_sent_sum = static_cast<uint8_t>(d < 0 ? 0 : d << 4);
        m_rx = d < 0 ? Rx::kIdle : Rx::kSum2;
        if (d < 0) {
          ++m_errors;
          out += '-';
        }
        break;
      }
      case Rx::kSum2: {
        m_rx = Rx::kIdle;
        const int d = hex_digit(c);
        if (d < 0 || static_cast<uint8_t>(m_sent_sum | d) != m_sum) {
          ++m_errors;
          out += '-';  // gdb resends
          break;
        }
        out += '+';
        if (m_overflow) {
          ++m_errors;
          m_last_reply = frame("E.packet too long");
          m_nacks = 0;
          out += m_last_reply;
          break;
        }
        handle(m_packet, out);
        break;
      }
    }
  }
}

void Session::interrupt(std::string& out) {
  if (!m_running) return;
  if (auto stopped = m_target.stop(); !stopped.ok()) {
    ++m_errors;
    return;  // still running; gdb may press Ctrl-C again
  }
  m_running = false;
  m_last_stop = {StopEvent::Reason::kInterrupt, m_g_thread};
  m_last_reply = frame(stop_reply(m_last_stop));
  m_nacks = 0;
  out += m_last_reply;
}

void Session::exited(int status, std::string& out) {
  if (!m_running || m_closed) return;
  char reply[8];
  std::snprintf(reply, sizeof reply, "W%02x", static_cast<unsigned>(status) & 0xff);
  out += frame(reply);
  m_running = false;
  m_closed = true;
}

void Session::on_stop(const StopEvent& event, std::string& out) {
  if (!m_running || m_closed) return;  // already stopped (an interrupt won the race)
  m_running = false;
  m_last_stop = event;
  if (event.thread < m_target.thread_count()) m_g_thread = event.thread;
  m_last_reply = frame(stop_reply(m_last_stop));
  m_nacks = 0;
  out += m_last_reply;
}

std::string Session::stop_reply(const StopEvent& event) const {
  const char* signal = event.reason == StopEvent::Reason::kInterrupt ? "02" : "05";
  std::string watch;
  if (event.reason == StopEvent::Reason::kWatchpoint) {
    // Named after the kind gdb set at that address: watch (write), rwatch (read), awatch (both).
    const char* kind = "watch";
    for (const Watchpoint& w : m_watchpoints)
      if (event.data_address >= w.address && event.data_address - w.address < w.length) {
        kind = w.read && w.write ? "awatch" : w.read ? "rwatch" : "watch";
        break;
      }
    char text[48];
    std::snprintf(text, sizeof text, "%s:%llx;", kind, static_cast<unsigned long long>(event.data_address));
    watch = text;
  } else if (event.reason == StopEvent::Reason::kBreakpoint) {
    // Which kind of breakpoint (Z0 or Z1) is at the pc, for a client that asked to be told.
    if (m_client_hwbreak && m_hw_breakpoints.count(event.pc))
      watch = "hwbreak:;";
    else if (m_client_swbreak && m_breakpoints.count(event.pc))
      watch = "swbreak:;";
  }
  return std::string("T") + signal + watch + "thread:" + hex_of(event.thread + 1) + ";";
}

void Session::handle(std::string_view packet, std::string& out) {
  std::optional<std::string> reply = dispatch(packet);
  if (!reply) return;
  m_last_reply = frame(*reply);
  m_nacks = 0;
  out += m_last_reply;
}

std::optional<unsigned> Session::thread_of(std::string_view id, bool allow_any) const {
  if (id == "-1" || id == "0") {
    if (allow_any) return m_g_thread;
    return std::nullopt;
  }
  auto n = parse_hex(id);
  if (!n || *n == 0 || *n > m_target.thread_count()) return std::nullopt;
  return static_cast<unsigned>(*n - 1);
}

void Session::sync_breakpoints() {
  // Z1 (and Z0 where the target plants no int3) are host-side or debug-register breakpoints by
  // address (none is taken from the guest's own debug triggers, as with QEMU's gdbstub).
  // A target with software breakpoints has its Z0s planted already.
  std::set<uint64_t> all = m_hw_breakpoints;
  if (!m_target.software_breakpoints()) all.insert(m_breakpoints.begin(), m_breakpoints.end());
  m_target.set_breakpoints(std::vector<uint64_t>(all.begin(), all.end()));
  m_target.set_watchpoints(std::vector<Watchpoint>(m_watchpoints.begin(), m_watchpoints.end()));
}

std::optional<std::string> Session::resume(int step_thread) {
  sync_breakpoints();
  if (auto resumed = m_target.resume(step_thread); !resumed.ok()) return kError;
  m_running = true;
  return std::nullopt;  // the stop reply comes when the target stops
}

std::optional<std::string> Session::dispatch(std::string_view packet) {
  if (packet.empty()) return std::string();
  const char command = packet[0];
  const std::string_view args = packet.substr(1);
  if (m_running && command != 'k' && packet != "vKill") return kError;  // all-stop: nothing while it runs
  switch (command) {
    case '?':
      return stop_reply(m_last_stop);
    case 'g':
      return read_registers();
    case 'G':
      return write_registers(args);
    case 'p':
      return read_register(args);
    case 'P':
      return write_register(args);
    case 'm':
      return read_memory(args);
    case 'M':
      return write_memory(args);
    case 'Z':
    case 'z':
      return breakpoint(args, command == 'Z');
    case 'c':
    case 'C':
      return resume(-1);  // a resume address or signal is not supported; gdb does not send one
    case 's':
    case 'S':
      return resume(static_cast<int>(m_g_thread));
    case 'H': {
      if (args.empty()) return kBadArgs;
      auto thread = thread_of(args.substr(1), true);
      if (!thread) return kError;
      if (args[0] == 'g') m_g_thread = *thread;
      return std::string("OK");
    }
    case 'T':
      return thread_of(args, false) ? std::string("OK") : kError;
    case 'D':
      m_breakpoints.clear();
      m_hw_breakpoints.clear();
      m_watchpoints.clear();
      m_target.detach();
      m_closed = true;
      return std::string("OK");
    case 'k':
      m_target.kill();
      m_closed = true;
      return std::nullopt;
    case 'q':
    case 'Q':
      return query(packet);
    case 'v':
      return v_packet(packet);
    default:
      return std::string();  // unsupported (X, !, R, ...): gdb falls back or says so
  }
}

std::string Session::read_registers() {
  auto state = m_target.read_registers(m_g_thread);
  if (!state.ok()) return kError;
  std::string out;
  for (unsigned r = 0; r < g_registers(m_target.arch()); ++r) {
    auto bytes = get_register(state.value(), m_g_thread, r);
    if (!bytes) return kError;
    append_hex_bytes(out, bytes->data(), bytes->size());
  }
  return out;
}

std::string Session::write_registers(std::string_view hex) {
  const Target::Arch arch = m_target.arch();
  size_t total = 0;
  for (unsigned r = 0; r < g_registers(arch); ++r) total += 2 * register_size(arch, r);
  if (hex.size() < total) return kBadArgs;
  auto state = m_target.read_registers(m_g_thread);
  if (!state.ok()) return kError;
  size_t at = 0;
  for (unsigned r = 0; r < g_registers(arch); ++r) {
    const size_t len = 2 * register_size(arch, r);
    std::vector<uint8_t> bytes;
    if (!decode_bytes(hex.substr(at, len), &bytes)) return kBadArgs;
    at += len;
    set_register(state.value(), r, bytes);  // read-only ones keep their value, as with a real `G`
  }
  return m_target.write_registers(m_g_thread, state.value()).ok() ? "OK" : kError;
}

std::string Session::read_register(std::string_view args) {
  auto regnum = parse_hex(args);
  if (!regnum || !known_regnum(m_target.arch(), *regnum)) return kBadArgs;
  auto state = m_target.read_registers(m_g_thread);
  if (!state.ok()) return kError;
  auto bytes = get_register(state.value(), m_g_thread, static_cast<unsigned>(*regnum));
  if (!bytes) return kError;
  std::string out;
  append_hex_bytes(out, bytes->data(), bytes->size());
  return out;
}

std::string Session::write_register(std::string_view args) {
  const size_t eq = args.find('=');
  if (eq == std::string_view::npos) return kBadArgs;
  auto regnum = parse_hex(args.substr(0, eq));
  std::vector<uint8_t> bytes;
  if (!regnum || !known_regnum(m_target.arch(), *regnum) || !decode_bytes(args.substr(eq + 1), &bytes) ||
      bytes.size() != register_size(m_target.arch(), static_cast<unsigned>(*regnum)))
    return kBadArgs;
  auto state = m_target.read_registers(m_g_thread);
  if (!state.ok()) return kError;
  if (!set_register(state.value(), static_cast<unsigned>(*regnum), bytes)) return kError;
  return m_target.write_registers(m_g_thread, state.value()).ok() ? "OK" : kError;
}

std::string Session::read_memory(std::string_view args) {
  uint64_t addr = 0, len = 0;
  if (!parse_addr_len(args, &addr, &len)) return kBadArgs;
  len = std::min<uint64_t>(len, kMaxMemory);  // gdb asks again for the rest
  if (len == 0) return std::string();
  std::vector<uint8_t> bytes(len);
  if (!m_target.read_memory(m_g_thread, addr, bytes, m_physical).ok()) return kMemoryError;
  std::string out;
  append_hex_bytes(out, bytes.data(), bytes.size());
  return out;
}

std::string Session::write_memory(std::string_view args) {
  const size_t colon = args.find(':');
  uint64_t addr = 0, len = 0;
  if (colon == std::string_view::npos || !parse_addr_len(args.substr(0, colon), &addr, &len)) return kBadArgs;
  std::vector<uint8_t> bytes;
  if (len > kMaxMemory || !decode_bytes(args.substr(colon + 1), &bytes) || bytes.size() != len)
    return kBadArgs;
  if (len == 0) return std::string("OK");
  return m_target.write_memory(m_g_thread, addr, bytes, m_physical).ok() ? "OK" : kMemoryError;
}

std::string Session::breakpoint(std::string_view args, bool insert) {
  // TYPE,ADDR,KIND[;cond...]: conditions are evaluated by gdb (we do not advertise them). KIND is
  // the instruction size for breakpoints and the byte count for watchpoints.
  if (args.size() < 2 || args[1] != ',') return kBadArgs;
  const char type = args[0];
  if (type < '0' || type > '4') return std::string();  // unknown kinds: unsupported
  std::string_view rest = args.substr(2);
  rest = rest.substr(0, rest.find(';'));
  uint64_t addr = 0, kind = 0;
  if (!parse_addr_len(rest, &addr, &kind)) return kBadArgs;
  if (type == '0' || type == '1') {
    std::set<uint64_t>& set = type == '0' ? m_breakpoints : m_hw_breakpoints;
    // Z0 on a target that plants int3: in guest memory now (an address that is no RAM is an error).
    const bool planted = type == '0' && m_target.software_breakpoints();
    if (insert) {
      if (set.size() >= kMaxBreakpoints && !set.count(addr)) return "E0c";
      if (planted && !m_target.insert_sw_breakpoint(m_g_thread, addr).ok()) return kMemoryError;
      set.insert(addr);
    } else {
      if (planted && set.count(addr) && !m_target.remove_sw_breakpoint(m_g_thread, addr).ok())
        return kMemoryError;
      set.erase(addr);
    }
    return "OK";
  }
  if (kind == 0 || kind > kMaxMemory || addr + kind < addr) return kBadArgs;
  const Watchpoint watch{addr, kind, type != '2', type != '3'};
  if (insert) {
    if (m_watchpoints.size() >= kMaxBreakpoints && !m_watchpoints.count(watch)) return "E0c";
    m_watchpoints.insert(watch);
  } else {
    m_watchpoints.erase(watch);
  }
  return "OK";
}

std::string Session::query(std::string_view packet) {
  auto starts = [&](std::string_view prefix) { return packet.substr(0, prefix.size()) == prefix; };
  if (starts("qSupported")) {
    // The client's features: qSupported:f1;f2;... (gdb offers swbreak+ and hwbreak+).
    std::string_view features =
        packet.substr(packet.find(':') == std::string_view::npos ? packet.size() : packet.find(':') + 1);
    m_client_swbreak = m_client_hwbreak = false;
    while (!features.empty()) {
      const std::string_view feature = features.substr(0, features.find(';'));
      if (feature == "swbreak+") m_client_swbreak = true;
      if (feature == "hwbreak+") m_client_hwbreak = true;
      features.remove_prefix(std::min(features.size(), feature.size() + 1));
    }
    char reply[128];
    std::snprintf(reply, sizeof reply,
                  "PacketSize=%zx;qXfer:features:read+;vContSupported+;swbreak+;hwbreak+", kMaxPacket);
    return reply;
  }
  if (starts("qXfer:features:read:")) {
    std::string_view rest = packet.substr(sizeof("qXfer:features:read:") - 1);
    const size_t colon = rest.find(':');
    if (colon == std::string_view::npos || rest.substr(0, colon) != "target.xml") return "E00";
    uint64_t offset = 0, len = 0;
    if (!parse_addr_len(rest.substr(colon + 1), &offset, &len)) return kBadArgs;
    const std::string& xml =
        m_target.arch() == Target::Arch::kX86_64 ? x86::target_xml() : riscv::target_xml();
    if (offset >= xml.size()) return "l";
    // Escapes can double the size; half a packet always fits.
    len = std::min<uint64_t>(len, kMaxPacket / 2 - 8);
    const std::string part = xml.substr(offset, len);
    return (offset + part.size() >= xml.size() ? "l" : "m") + part;
  }
  if (packet == "qfThreadInfo") {
    std::string out = "m";
    for (unsigned t = 0; t < m_target.thread_count(); ++t) out += (t ? "," : "") + hex_of(t + 1);
    return out;
  }
  if (packet == "qsThreadInfo") return "l";
  if (packet == "qC") return "QC" + hex_of(m_g_thread + 1);
  if (starts("qAttached")) return "1";
  if (starts("qThreadExtraInfo,")) {
    auto thread = thread_of(packet.substr(sizeof("qThreadExtraInfo,") - 1), false);
    if (!thread) return kError;
    const std::string text =
        (m_target.arch() == Target::Arch::kX86_64 ? "vCPU " : "hart ") + std::to_string(*thread);
    std::string out;
    append_hex_bytes(out, reinterpret_cast<const uint8_t*>(text.data()), text.size());
    return out;
  }
  if (starts("qSymbol")) return "OK";
  if (packet == "Qqemu.PhyMemMode:1" || packet == "Qqemu.PhyMemMode:0") {
    m_physical = packet.back() == '1';
    return "OK";
  }
  if (packet == "qqemu.PhyMemMode") return m_physical ? "1" : "0";
  return std::string();
}

std::optional<std::string> Session::v_packet(std::string_view packet) {
  if (packet == "vCont?") return std::string("vCont;c;C;s;S");
  if (packet == "vKill" || packet.substr(0, 6) == "vKill;") {
    m_target.kill();
    m_closed = true;
    return std::string("OK");
  }
  if (packet.substr(0, 6) != "vCont;") return std::string();
  // Actions a[:thread] separated by ';'. Every vCPU resumes (all-stop); a step action picks the
  // vCPU that steps. The first action that applies to a thread wins, as the protocol says.
  int step = -1;
  bool any = false;
  std::string_view rest = packet.substr(6);
  while (!rest.empty()) {
    const size_t semi = rest.find(';');
    std::string_view action = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    const size_t colon = action.find(':');
    std::string_view verb = action.substr(0, colon);
    if (verb.empty()) return kBadArgs;
    if (verb[0] == 'C' || verb[0] == 'S') {
      if (!parse_hex(verb.substr(1))) return kBadArgs;
    } else if (verb.size() != 1 || (verb[0] != 'c' && verb[0] != 's' && verb[0] != 't')) {
      return kBadArgs;
    }
    std::optional<unsigned> thread = m_g_thread;
    if (colon != std::string_view::npos) {
      thread = thread_of(action.substr(colon + 1), true);
      if (!thread) return kError;
    }
    if ((verb[0] == 's' || verb[0] == 'S') && step < 0) step = static_cast<int>(*thread);
    if (verb[0] != 't') any = true;
  }
  if (!any) return kBadArgs;
  return resume(step);
}

}  // namespace gdbstub
