// Reset through the i8042 (0xFE on port 0x64). The machine comes back with fresh RAM, so the test
// sees this banner once per boot.
#include "lib.h"

int guest_main(const struct hvm_start_info* info) {
  (void)info;
  puts_serial("reset guest: booted\n");
  outb(0x64, 0xfe);
  for (volatile int i = 0; i < 1000000; ++i) {
  }
  puts_serial("reset guest: still running after reset request\n");
  return 1;
}
