// The C ABI between the engine and a compiled tier that lives in its own shared object
// (libvmlaunch_jit_llvm.so), loaded with dlopen only when a jit machine asks for it, so `validate`,
// `plan` and kvm machines never map libLLVM. Plain C types and function pointers: no C++
// exceptions, no LLVM types cross it; errors are strings written into caller buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jit/cpu_state.h"
#include "jit/decode.h"

extern "C" {

// Runs a compiled block on a hart's state: reads and writes CpuState fields, and on exit leaves
// pc and instret exactly as the interpreter would after the same instructions.
typedef void (*JitBlockFn)(jit::CpuState* state);

enum { kJitTierAbiVersion = 1 };

struct JitTierApi {
  uint32_t abi_version;  // kJitTierAbiVersion of the tier that was built
  // One line for logs and `vmlaunch accel`: "LLVM 19.1.7 ORC LLJIT, host x86_64-pc-linux-gnu".
  const char* (*describe)(void);
  // A compiler instance (one per compile thread). nullptr with a message in error on failure.
  void* (*create)(char* error, size_t error_len);
  void (*destroy)(void* tier);
  // Compiles `count` decoded instructions at guest pc `pc` (4 bytes apart in guest memory) that
  // form one straight-line block. The skeleton supports integer register ops only (RV64I ALU, LUI,
  // AUIPC, MUL/MULW); anything else gives nullptr and a message naming it. The code lives until
  // destroy().
  JitBlockFn (*compile_block)(void* tier, const jit::Insn* insns, size_t count, uint64_t pc, char* error,
                              size_t error_len);
};

// The one symbol a tier library exports.
const JitTierApi* vmlaunch_jit_tier_v1(void);
typedef const JitTierApi* (*JitTierEntry)(void);

}  // extern "C"
