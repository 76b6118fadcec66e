// riscv64 registers as gdb numbers them (gdb's riscv-tdep: x0..x31 0..31, pc 32, f0..f31 33..64,
// CSR n at 65 + n, the virtual `priv` register at 65 + 4096) and the target description XML that
// tells gdb so (features org.gnu.gdb.riscv.{cpu,fpu,csr,virtual}, as QEMU describes them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "accel/accelerator.h"

namespace gdbstub::riscv {

inline constexpr unsigned kPc = 32;
inline constexpr unsigned kFirstFp = 33;
inline constexpr unsigned kFirstCsr = 65;
inline constexpr unsigned kPriv = kFirstCsr + 4096;
// Registers in a `g` packet: x0..x31 and pc (the rest go through p/P, as with QEMU).
inline constexpr unsigned kGRegisters = 33;

const std::string& target_xml();
// The register's value, or nullopt for a number gdb was not told about. `hart` is mhartid.
std::optional<uint64_t> read_register(const accel::RiscvVcpuState& state, unsigned hart, unsigned regnum);
// false: no such register, or it is read-only.
bool write_register(accel::RiscvVcpuState& state, unsigned regnum, uint64_t value);

}  // namespace gdbstub::riscv
