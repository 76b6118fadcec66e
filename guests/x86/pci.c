// PCI enumeration through CF8/CFC as firmware and Linux do it: every bus reachable through bridges,
// functions 1-7 of multi-function devices. Prints one line per function ("pci 00:03.0 1af4:1041").
#include "lib.h"

static uint32_t config_read(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg) {
  outl(0xcf8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc));
  return inl(0xcfc);
}

static int count;

static void scan(uint32_t bus, int depth) {
  if (depth > 8) return;
  for (uint32_t dev = 0; dev < 32; ++dev) {
    for (uint32_t fn = 0; fn < 8; ++fn) {
      uint32_t ids = config_read(bus, dev, fn, 0);
      if ((ids & 0xffff) == 0xffff) {
        if (fn == 0) break;
        continue;
      }
      ++count;
      puts_serial("pci ");
      put_hex(bus, 2);
      putc_serial(':');
      put_hex(dev, 2);
      putc_serial('.');
      put_hex(fn, 1);
      putc_serial(' ');
      put_hex(ids & 0xffff, 4);
      putc_serial(':');
      put_hex(ids >> 16, 4);
      puts_serial("\n");
      uint32_t header = (config_read(bus, dev, fn, 0x0c) >> 16) & 0xff;
      if ((header & 0x7f) == 1) scan((config_read(bus, dev, fn, 0x18) >> 8) & 0xff, depth + 1);
      if (fn == 0 && !(header & 0x80)) break;
    }
  }
}

int guest_main(const struct hvm_start_info* info) {
  (void)info;
  scan(0, 0);
  puts_serial("pci: ");
  put_dec((uint32_t)count);
  puts_serial(" functions\n");
  return count > 0 ? 0 : 1;
}
