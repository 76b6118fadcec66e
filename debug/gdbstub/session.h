// The GDB Remote Serial Protocol, one client at a time, without sockets: bytes in, bytes out, so it
// is tested (and fuzzed) directly. The server (server.h) owns the socket and the thread.
//
// Framing: `$data#xx` packets acknowledged with + (or - on a bad checksum, after which gdb resends),
// the 0x03 byte interrupts a running target. Hostile input is bounded: a packet longer than
// kMaxPacket is dropped whole and answered with an error, bytes outside packets are ignored, and
// every number, length and thread id is checked before use.
//
// Supported: qSupported, qXfer:features:read (target.xml), ?, g/G, p/P, m/M (virtual addresses as
// the selected thread translates them; physical after `maintenance packet Qqemu.PhyMemMode:1`, as
// with QEMU), Z0/z0 (int3 planted in guest RAM on a target with software breakpoints, x86_64;
// else host-side like Z1) and Z1/z1 (host-side or debug-register breakpoints by address, not taken
// from the guest's debug triggers; stop replies say swbreak/hwbreak to a client that asked), Z2/Z3/Z4
// watchpoints (write, read, access; by virtual address, any length; stop replies say
// watch/rwatch/awatch:ADDR), c/C, s/S, vCont, threads
// (qfThreadInfo, qsThreadInfo, qC, H, T, qThreadExtraInfo), qAttached, D (detach), k (kill).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "debug/gdbstub/target.h"

namespace gdbstub {

class Session {
 public:
  static constexpr size_t kMaxPacket = 16384;  // what qSupported advertises as PacketSize
  static constexpr size_t kMaxMemory = 4096;   // bytes per m/M

  explicit Session(Target& target) : m_target(target) {}

  // Bytes from the client; what to send back is appended to `out`.
  void receive(std::span<const uint8_t> bytes, std::string& out);
  // The target stopped by itself while running (breakpoint, step): the stop reply goes to `out`.
  void on_stop(const StopEvent& event, std::string& out);
  // The machine ended with `status` while the client waited for a stop: the W reply (gdb says
  // "exited with code N"), and the session is over.
  void exited(int status, std::string& out);
  // A client connected: the target is stopped (all-stop; QEMU does the same) so `?` has an answer.
  void attached();
  // The client went away without D or k: detach.
  void disconnected();

  bool running() const { return m_running; }
  bool closed() const { return m_closed; }  // after D or k: close the connection
  uint64_t protocol_errors() const { return m_errors; }

  static std::string frame(std::string_view payload);  // $payload#xx, with escapes

 private:
  void append(uint8_t byte) {
    if (m_packet.size() < kMaxPacket)
      m_packet += static_cast<char>(byte);
    else
      m_overflow = true;
  }
  void handle(std::string_view packet, std::string& out);
  std::optional<std::string> dispatch(std::string_view packet);  // nullopt: no reply (yet)
  void interrupt(std::string& out);
  std::string stop_reply(const StopEvent& event) const;
  std::optional<std::string> resume(int step_thread);
  std::string read_registers();
  std::string write_registers(std::string_view hex);
  std::string read_register(std::string_view args);
  std::string write_register(std::string_view args);
  std::string read_memory(std::string_view args);
  std::string write_memory(std::string_view args);
  std::string breakpoint(std::string_view args, bool insert);
  std::string query(std::string_view packet);
  std::optional<std::string> v_packet(std::string_view packet);
  std::optional<unsigned> thread_of(std::string_view id, bool allow_any) const;
  void sync_breakpoints();

  Target& m_target;
  enum class Rx { kIdle, kData, kEscape, kSum1, kSum2 } m_rx = Rx::kIdle;
  std::string m_packet;
  bool m_overflow = false;
  uint8_t m_sum = 0;
  uint8_t m_sent_sum = 0;
  std::string m_last_reply;  // resent on '-'
  unsigned m_nacks = 0;      // consecutive resends (bounded)

  bool m_running = false, m_closed = false, m_physical = false;
  unsigned m_g_thread = 0;  // H g: registers and memory
  StopEvent m_last_stop{StopEvent::Reason::kInterrupt, 0};
  std::set<uint64_t> m_breakpoints;     // Z0
  std::set<uint64_t> m_hw_breakpoints;  // Z1 (also host-side; kept apart to name the stop reason)
  std::set<Watchpoint> m_watchpoints;
  bool m_client_swbreak = false, m_client_hwbreak = false;  // stop reasons the client asked for
  uint64_t m_errors = 0;
};

}  // namespace gdbstub
