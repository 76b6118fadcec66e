// virtio-mmio discovery as Linux does it on microvm: every virtio_mmio.device=<size>@<base>:<irq> on
// the command line names a transport; each must answer with the virtio magic, version 2 and a device
// id. Prints one line per transport.
#include "lib.h"

static const char* parse_number(const char* s, uint32_t* out) {
  uint32_t v = 0, base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) base = 16, s += 2;
  for (;; ++s) {
    uint32_t d;
    if (*s >= '0' && *s <= '9')
      d = (uint32_t)(*s - '0');
    else if (base == 16 && *s >= 'a' && *s <= 'f')
      d = (uint32_t)(*s - 'a' + 10);
    else if (base == 16 && *s >= 'A' && *s <= 'F')
      d = (uint32_t)(*s - 'A' + 10);
    else
      break;
    v = v * base + d;
  }
  if (*s == 'K' || *s == 'k') v <<= 10, ++s;
  *out = v;
  return s;
}

int guest_main(const struct hvm_start_info* info) {
  const char* s = (const char*)(uintptr_t)info->cmdline_paddr;
  const char* key = "virtio_mmio.device=";
  int found = 0, good = 0;
  for (; *s; ++s) {
    const char* k = key;
    const char* p = s;
    while (*k && *p == *k) ++k, ++p;
    if (*k) continue;
    uint32_t size, base, irq;
    p = parse_number(p, &size);
    if (*p++ != '@') continue;
    p = parse_number(p, &base);
    if (*p++ != ':') continue;
    parse_number(p, &irq);
    volatile uint32_t* regs = (volatile uint32_t*)(uintptr_t)base;
    uint32_t magic = regs[0], version = regs[1], device = regs[2];
    ++found;
    puts_serial("virtio-mmio 0x");
    put_hex(base, 8);
    puts_serial(" size ");
    put_dec(size);
    puts_serial(" irq ");
    put_dec(irq);
    puts_serial(magic == 0x74726976 ? ": magic ok" : ": BAD MAGIC");
    puts_serial(" version ");
    put_dec(version);
    puts_serial(" device ");
    put_dec(device);
    puts_serial("\n");
    if (magic == 0x74726976 && version == 2 && device != 0) ++good;
  }
  puts_serial("virtio: ");
  put_dec((uint32_t)good);
  puts_serial(" of ");
  put_dec((uint32_t)found);
  puts_serial(" transports answer\n");
  return found > 0 && good == found ? 0 : 1;
}
