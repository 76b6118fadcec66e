// libFuzzer target: arbitrary client bytes into a Session over the fake target (two harts, 64 KiB of
// RAM). A 0xfe byte splits the input into reads; after each, a running session gets a stop event
// (thread index sometimes out of range). Nothing may crash, read out of bounds or grow unbounded.
#include <cstddef>
#include <cstdint>
#include <string>

#include "debug/gdbstub/fake_target.h"
#include "debug/gdbstub/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gdbstub::testing::FakeTarget target;
  gdbstub::Session session(target);
  session.attached();
  std::string out;
  size_t start = 0;
  for (size_t i = 0; i <= size; ++i) {
    if (i < size && data[i] != 0xfe) continue;
    session.receive(std::span<const uint8_t>(data + start, i - start), out);
    if (session.running())
      session.on_stop({gdbstub::StopEvent::Reason::kBreakpoint, static_cast<unsigned>(i % 3)}, out);
    if (out.size() > (1u << 20)) out.clear();
    start = i + 1;
  }
  return 0;
}
