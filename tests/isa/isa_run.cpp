// isa_run IMAGE [HARTS]: runs one flat test image like isa_test does and prints the verdict.
#include <cstdio>
#include <cstdlib>

#include "tests/isa/isa_harness.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: isa_run IMAGE [HARTS]\n");
    return 2;
  }
  const unsigned harts = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1;
  const auto r = isa::run_image(argv[1], harts);
  if (!r.error.empty()) {
    std::fprintf(stderr, "isa_run: %s\n", r.error.c_str());
    return 2;
  }
  std::printf("finished=%d tohost=%#llx (test %llu) %.3fs\n", r.finished,
              static_cast<unsigned long long>(r.tohost), static_cast<unsigned long long>(r.tohost >> 1),
              r.seconds);
  return r.finished && r.tohost == 1 ? 0 : 1;
}
