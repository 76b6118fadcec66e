// x86_64 registers as gdb's amd64 target numbers them (features org.gnu.gdb.i386.core, .sse and
// .segments, as gdbserver and QEMU describe them) plus the control registers, and the target
// description XML that tells gdb so. A `g` packet carries every register, in this order.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "accel/accelerator.h"

namespace gdbstub::x86 {

inline constexpr unsigned kRip = 16;
inline constexpr unsigned kEflags = 17;
inline constexpr unsigned kFirstSt = 24;   // st0..st7: 80-bit x87 registers
inline constexpr unsigned kFirstXmm = 40;  // xmm0..xmm15
inline constexpr unsigned kMxcsr = 56;
inline constexpr unsigned kFsBase = 57;
inline constexpr unsigned kCr0 = 59;  // cr0 cr2 cr3 cr4 cr8 efer (read-only)
inline constexpr unsigned kRegisters = 65;

const std::string& target_xml();
// Bytes of register `regnum` in a packet (0: no such register).
unsigned register_size(unsigned regnum);
// The register's little-endian bytes, or nullopt for a number gdb was not told about.
std::optional<std::vector<uint8_t>> read_register(const accel::X86VcpuState& state, unsigned regnum);
// false: no such register, a wrong size, or a register written only by the guest itself (segment
// selectors, whose descriptors gdb cannot give; control registers).
bool write_register(accel::X86VcpuState& state, unsigned regnum, std::span<const uint8_t> bytes);

}  // namespace gdbstub::x86
