// CSR numbers the interpreter implements (privileged spec 1.12, table 2.2-2.6), named once so the
// interpreter, a translator and tests agree on them.
#pragma once

#include <cstdint>

namespace jit::csr {

// Unprivileged floating point and counters.
inline constexpr uint16_t kFflags = 0x001, kFrm = 0x002, kFcsr = 0x003;
inline constexpr uint16_t kCycle = 0xc00, kTime = 0xc01, kInstret = 0xc02;
inline constexpr uint16_t kHpmcounter3 = 0xc03, kHpmcounter31 = 0xc1f;

// Supervisor.
inline constexpr uint16_t kSstatus = 0x100, kSie = 0x104, kStvec = 0x105, kScounteren = 0x106,
                          kSenvcfg = 0x10a;
inline constexpr uint16_t kSscratch = 0x140, kSepc = 0x141, kScause = 0x142, kStval = 0x143, kSip = 0x144,
                          kStimecmp = 0x14d;
inline constexpr uint16_t kSatp = 0x180;

// Machine information.
inline constexpr uint16_t kMvendorid = 0xf11, kMarchid = 0xf12, kMimpid = 0xf13, kMhartid = 0xf14,
                          kMconfigptr = 0xf15;

// Machine trap setup and handling.
inline constexpr uint16_t kMstatus = 0x300, kMisa = 0x301, kMedeleg = 0x302, kMideleg = 0x303, kMie = 0x304,
                          kMtvec = 0x305, kMcounteren = 0x306, kMenvcfg = 0x30a;
inline constexpr uint16_t kMcountinhibit = 0x320, kMhpmevent3 = 0x323, kMhpmevent31 = 0x33f;
inline constexpr uint16_t kMscratch = 0x340, kMepc = 0x341, kMcause = 0x342, kMtval = 0x343, kMip = 0x344;

// Physical memory protection: pmpcfg0..15 (only the even ones on RV64), pmpaddr0..63.
inline constexpr uint16_t kPmpcfg0 = 0x3a0, kPmpcfg15 = 0x3af, kPmpaddr0 = 0x3b0, kPmpaddr63 = 0x3ef;

// Debug triggers (Sdtrig, debug spec 1.0 chapter 5): M-mode CSRs. tcontrol (0x7a5) and mcontext
// are not implemented (QEMU 7.2 has neither).
inline constexpr uint16_t kTselect = 0x7a0, kTdata1 = 0x7a1, kTdata2 = 0x7a2, kTdata3 = 0x7a3, kTinfo = 0x7a4;

// Machine counters.
inline constexpr uint16_t kMcycle = 0xb00, kMinstret = 0xb02, kMhpmcounter3 = 0xb03, kMhpmcounter31 = 0xb1f;

// Instruction encodings reported in mtval when a privileged instruction is illegal.
inline constexpr uint32_t kMretBits = 0x30200073, kSretBits = 0x10200073, kWfiBits = 0x10500073,
                          kSfenceVmaBits = 0x12000073;

}  // namespace jit::csr
