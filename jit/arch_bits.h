// Bit layouts of riscv64 privileged state (privileged spec 1.12) that both execution tiers use:
// mstatus fields, mip/mie bits, exception causes, PTE bits.
#pragma once

#include <cstdint>

namespace jit {

// Exception causes (mcause values without the interrupt bit).
enum Cause : uint64_t {
  kInstMisaligned = 0,
  kInstAccessFault = 1,
  kIllegalInstruction = 2,
  kBreakpoint = 3,
  kLoadMisaligned = 4,
  kLoadAccessFault = 5,
  kStoreMisaligned = 6,
  kStoreAccessFault = 7,
  kEcallU = 8,
  kEcallS = 9,
  kEcallM = 11,
  kInstPageFault = 12,
  kLoadPageFault = 13,
  kStorePageFault = 15,
};

// mip/mie bits.
inline constexpr uint64_t kSSIP = 1 << 1, kMSIP = 1 << 3, kSTIP = 1 << 5, kMTIP = 1 << 7, kSEIP = 1 << 9,
                          kMEIP = 1 << 11;
inline constexpr uint64_t kSInterrupts = kSSIP | kSTIP | kSEIP;
inline constexpr uint64_t kAllInterrupts = kSSIP | kMSIP | kSTIP | kMTIP | kSEIP | kMEIP;

// mstatus fields.
inline constexpr uint64_t kSIE = 1ull << 1, kMIE = 1ull << 3, kSPIE = 1ull << 5, kMPIE = 1ull << 7,
                          kSPP = 1ull << 8;
inline constexpr uint64_t kMPP = 3ull << 11, kFS = 3ull << 13, kMPRV = 1ull << 17, kSUM = 1ull << 18,
                          kMXR = 1ull << 19, kTVM = 1ull << 20, kTW = 1ull << 21, kTSR = 1ull << 22;
inline constexpr uint64_t kUXL_SXL = (2ull << 32) | (2ull << 34);
inline constexpr uint64_t kMstatusWritable =
    kSIE | kMIE | kSPIE | kMPIE | kSPP | kMPP | kFS | kMPRV | kSUM | kMXR | kTVM | kTW | kTSR;
inline constexpr uint64_t kSstatusMask =
    kSIE | kSPIE | kSPP | kFS | kSUM | kMXR | (3ull << 32) | (1ull << 63);
inline constexpr uint64_t kMenvcfgSTCE = 1ull << 63;

// RV64 with I M A F D C S U.
inline constexpr uint64_t kMisa =
    (2ull << 62) | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);

// Sv39/Sv48 page table entries.
inline constexpr uint64_t kPteV = 1, kPteR = 2, kPteW = 4, kPteX = 8, kPteU = 16, kPteA = 64, kPteD = 128;
inline constexpr uint64_t kPpnMask = (1ull << 44) - 1;

}  // namespace jit
