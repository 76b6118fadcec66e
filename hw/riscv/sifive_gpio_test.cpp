#include "hw/riscv/sifive_gpio.h"

#include <doctest/doctest.h>

#include <memory>
#include <vector>

namespace {

using hw::riscv::SifiveGpio;

struct Line : hw::IrqLine {
  bool level = false;
  int raises = 0;
  void set_level(bool asserted) override {
    if (asserted && !level) ++raises;
    level = asserted;
  }
};

void w32(hw::Device& d, uint64_t off, uint32_t v) {
  uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
  d.write(off, b);
}
uint32_t r32(hw::Device& d, uint64_t off) {
  uint8_t b[4] = {};
  d.read(off, b);
  return b[0] | b[1] << 8 | b[2] << 16 | uint32_t{b[3]} << 24;
}

}  // namespace

// What Linux's gpio-sifive + gpio-keys do with the power button pin: input enabled, both edges
// enabled, and each interrupt acknowledged by writing 1 to all four pending registers.
TEST_CASE("sifive_gpio: a press and a release each raise the pin's line until acknowledged") {
  auto line = std::make_shared<Line>();
  SifiveGpio gpio({line});
  w32(gpio, SifiveGpio::kInputEn, 1);
  w32(gpio, SifiveGpio::kRiseIe, 1);
  w32(gpio, SifiveGpio::kFallIe, 1);
  CHECK_FALSE(line->level);
  CHECK(r32(gpio, SifiveGpio::kInputVal) == 0);

  gpio.set_pin(0, true);
  CHECK(line->level);
  CHECK(r32(gpio, SifiveGpio::kInputVal) == 1);
  CHECK(r32(gpio, SifiveGpio::kRiseIp) == 1);
  for (uint32_t reg : {SifiveGpio::kRiseIp, SifiveGpio::kFallIp, SifiveGpio::kHighIp, SifiveGpio::kLowIp})
    w32(gpio, reg, 1);
  CHECK_FALSE(line->level);
  CHECK(r32(gpio, SifiveGpio::kRiseIp) == 0);

  gpio.set_pin(0, false);
  CHECK(line->level);
  CHECK(r32(gpio, SifiveGpio::kFallIp) == 1);
  CHECK(r32(gpio, SifiveGpio::kInputVal) == 0);
  CHECK(line->raises == 2);
}

TEST_CASE("sifive_gpio: nothing is raised while interrupts are disabled; input_en gates input_val") {
  auto line = std::make_shared<Line>();
  SifiveGpio gpio({line});
  gpio.set_pin(0, true);
  CHECK_FALSE(line->level);
  CHECK(r32(gpio, SifiveGpio::kInputVal) == 0);  // input stage off
  w32(gpio, SifiveGpio::kInputEn, 1);
  CHECK(r32(gpio, SifiveGpio::kInputVal) == 1);
  // The rising edge latched while disabled: enabling it raises the line (as the hardware does).
  w32(gpio, SifiveGpio::kRiseIe, 1);
  CHECK(line->level);
}

TEST_CASE("sifive_gpio: hostile accesses: pins that do not exist, odd widths, offsets past the end") {
  auto line = std::make_shared<Line>();
  SifiveGpio gpio({line});
  gpio.set_pin(5, true);  // only pin 0 exists
  w32(gpio, SifiveGpio::kInputEn, 0xffffffff);
  CHECK(r32(gpio, SifiveGpio::kInputEn) == 1);
  CHECK(r32(gpio, SifiveGpio::kInputVal) == 0);
  uint8_t byte = 0xff;
  gpio.write(SifiveGpio::kHighIe + 1, std::span<const uint8_t>(&byte, 1));  // a byte of bits 8..15
  CHECK(r32(gpio, SifiveGpio::kHighIe) == 0);
  uint8_t wide[16] = {};
  gpio.read(SifiveGpio::kSize - 2, wide);  // runs past the end: zeros, no crash
  gpio.write(SifiveGpio::kSize - 2, wide);
  gpio.write(0xfffffffffffffff0ull, wide);
  CHECK_FALSE(line->level);
}
