// Runtime skips for doctest cases: a test that cannot run here (no /dev/kvm, say) says why and
// returns; tools/test counts each "[skip] ..." line as a skipped case instead of a passed one.
// Use at most once per test case, before any assertion.
#pragma once

#include <cstdio>

#define VML_SKIP(reason)                     \
  do {                                       \
    std::printf("[skip] %s\n", (reason));    \
    std::fflush(stdout);                     \
    return;                                  \
  } while (0)
