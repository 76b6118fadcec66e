// Software breakpoints planted in guest RAM: gdb's Z0 on x86_64, where the one-byte int3 (0xCC)
// replaces the first byte of the instruction and the accelerator reports the #BP it raises. Keyed
// by guest-physical address (two virtual addresses of one page share one planted byte), each
// remembers the byte it replaced: reads through the debugger see that byte (mask), writes through
// the debugger over a planted byte change the remembered byte and keep the int3 (rewritten).
// Guest input is hostile: an address that does not translate or is not RAM (device memory) is an
// error, never a write; a byte the guest itself changed since is left as the guest wrote it.
// Not thread-safe: its owner (vmm's DebugLink) serialises calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <vector>

#include "base/result.h"

namespace gdbstub {

class SoftwareBreakpoints {
 public:
  static constexpr uint8_t kInt3 = 0xcc;
  static constexpr size_t kMax = 1024;  // planted bytes at most

  // Guest RAM as the debugger reaches it.
  class Memory {
   public:
    virtual ~Memory() = default;
    // The guest-physical address of `va` as the vCPU translates it now.
    virtual base::ErrorOr<uint64_t> translate(uint64_t va) = 0;
    // The byte of guest RAM at `gpa`, or null where there is none (device memory, a hole).
    virtual uint8_t* ram(uint64_t gpa) = 0;
    // The debugger changed code at `gpa`: caches of decoded or compiled guest code drop it.
    virtual void written(uint64_t gpa) = 0;
  };

  // Plants an int3 at `va` (idempotent for a `va` already planted).
  base::ErrorOr<void> insert(Memory& memory, uint64_t va);
  // Takes the breakpoint at `va` away; the original byte returns once no other address shares it.
  // Removing one that is not planted (gdb after a machine reset) is no error.
  void remove(Memory& memory, uint64_t va);
  // Every breakpoint away (detach, kill).
  void remove_all(Memory& memory);
  // The RAM went away with its machine: nothing to restore; the addresses are kept for replant().
  void forget();
  // Around a snapshot: the original bytes back in RAM (lift), then the int3s again (replant; after
  // forget(), plants every remembered address anew where it translates). Addresses that no longer
  // translate or are no longer RAM are dropped.
  void lift(Memory& memory);
  void replant(Memory& memory);

  bool empty() const { return m_va_to_gpa.empty(); }
  bool planted_at_gpa(uint64_t gpa) const { return m_by_gpa.count(gpa) != 0; }
  // The virtual addresses gdb asked for (what the accelerator tells apart from the guest's own #BP).
  std::vector<uint64_t> addresses() const;
  // `bytes` were just read from guest RAM at `gpa`: the original bytes in place of planted int3s.
  void mask(uint64_t gpa, std::span<uint8_t> bytes) const;
  // The debugger just wrote `ram` (guest RAM at `gpa`): the written bytes where an int3 was planted
  // become the originals, and the int3s go back.
  void rewritten(uint64_t gpa, std::span<uint8_t> ram);

 private:
  struct Planted {
    uint8_t original = 0;
    bool lifted = false;  // between lift() and replant(): RAM holds `original`
    std::set<uint64_t> vas;
  };
  void restore(Memory& memory, uint64_t gpa, const Planted& planted);

  std::map<uint64_t, Planted> m_by_gpa;
  std::map<uint64_t, uint64_t> m_va_to_gpa;
  std::set<uint64_t> m_forgotten;  // addresses whose machine went away (replant plants them anew)
};

}  // namespace gdbstub
