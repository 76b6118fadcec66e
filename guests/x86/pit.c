// The legacy PC timer and interrupt controller as the machine built them: probes the 8254 PIT
// (channel 0 counting down) and the 8259 master PIC's mask register the way Linux does
// (arch/x86/kernel/i8259.c probe_8259A: write 0xfb, read it back), prints what it found, and
// exits 0 when that matches want_pit=N (command line; both come and go together).
#include "lib.h"

static uint16_t pit_latch_channel0(void) {
  outb(0x43, 0x00);  // counter latch command, channel 0
  uint8_t lo = inb(0x40);
  uint8_t hi = inb(0x40);
  return (uint16_t)(lo | (hi << 8));
}

int guest_main(const struct hvm_start_info* info) {
  // Channel 0, lo/hi byte access, mode 2 (rate generator), binary, reload 0xffff.
  outb(0x43, 0x34);
  outb(0x40, 0xff);
  outb(0x40, 0xff);
  uint16_t first = pit_latch_channel0();
  uint64_t start = rdtsc();
  while (rdtsc() - start < 2000000) {  // ~1 ms at 2 GHz: the 1.19 MHz counter moves by hundreds
  }
  uint16_t second = pit_latch_channel0();
  // No PIT: both reads float to 0xffff. A PIT counts down from 0xffff (and wraps every 55 ms).
  int pit = !(first == 0xffff && second == 0xffff) && first != second;

  outb(0xa1, 0xff);  // mask the slave, as Linux's probe does
  outb(0x21, 0xfb);
  int pic = inb(0x21) == 0xfb;
  outb(0x21, 0xff);

  puts_serial("pit: ");
  puts_serial(pit ? "present" : "absent");
  puts_serial(" (0x");
  put_hex(first, 4);
  puts_serial(" then 0x");
  put_hex(second, 4);
  puts_serial("), pic: ");
  puts_serial(pic ? "present" : "absent");
  puts_serial("\n");
  uint32_t want = cmdline_number(info, "want_pit", 2);
  if (want > 1) return 2;  // the test must say what it expects
  return (pit == (int)want && pic == (int)want) ? 0 : 1;
}
