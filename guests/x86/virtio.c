// virtio-mmio discovery as Linux does it on microvm: a transport is named by an LNRO0005 device in the
// DSDT (its _CRS: Memory32Fixed registers, IRQNoFlags) or by virtio_mmio.device=<size>@<base>:<irq>
// on the command line. Linux registers what it finds in both places twice, so each transport must be
// announced in exactly one; each must answer with the virtio magic, version 2 and a device id.
// Prints one line per transport and where it was found.
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

#define MAX_TRANSPORTS 32
static uint32_t seen_base[MAX_TRANSPORTS];
static int seen_count;

// Probes one announced transport; returns 1 when it answers as a virtio device.
static int probe(const char* where, uint32_t base, uint32_t size, uint32_t irq) {
  int again = 0;
  for (int i = 0; i < seen_count; ++i) again |= seen_base[i] == base;
  if (!again && seen_count < MAX_TRANSPORTS) seen_base[seen_count++] = base;
  volatile uint32_t* regs = (volatile uint32_t*)(uintptr_t)base;
  uint32_t magic = regs[0], version = regs[1], device = regs[2];
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
  puts_serial(" (");
  puts_serial(where);
  puts_serial(again ? ", ANNOUNCED TWICE)\n" : ")\n");
  return !again && magic == 0x74726976 && version == 2 && device != 0;
}

// The DSDT through RSDP -> XSDT -> FACP: each "LNRO0005" string is a _HID; the _CRS buffer after it
// holds Memory32Fixed (0x86) and IRQNoFlags (0x22). Reads stay inside the DSDT's length.
static int scan_dsdt(const struct hvm_start_info* info, int* good) {
  if (!info->rsdp_paddr) return 0;
  const uint8_t* rsdp = (const uint8_t*)(uintptr_t)info->rsdp_paddr;
  const uint8_t* xsdt = (const uint8_t*)(uintptr_t) * (const uint32_t*)(rsdp + 24);
  uint32_t xsdt_length = *(const uint32_t*)(xsdt + 4);
  const uint8_t* dsdt = 0;
  for (uint32_t at = 36; at + 8 <= xsdt_length; at += 8) {
    const uint8_t* table = (const uint8_t*)(uintptr_t) * (const uint32_t*)(xsdt + at);
    if (table[0] == 'F' && table[1] == 'A' && table[2] == 'C' && table[3] == 'P')
      dsdt = (const uint8_t*)(uintptr_t) * (const uint32_t*)(table + 40);
  }
  if (!dsdt) return 0;
  uint32_t length = *(const uint32_t*)(dsdt + 4), found = 0;
  for (uint32_t at = 36; at + 8 <= length; ++at) {
    const char* hid = "LNRO0005";
    uint32_t k = 0;
    while (k < 8 && dsdt[at + k] == (uint8_t)hid[k]) ++k;
    if (k < 8) continue;
    uint32_t base = 0, size = 0, irq = 0;
    int have_mem = 0, have_irq = 0;
    // Each descriptor is read only when all of it lies inside the DSDT (the last device's _CRS ends
    // the table).
    for (uint32_t r = at + 8; r < length && r < at + 80 && !(have_mem && have_irq); ++r) {
      if (!have_mem && r + 12 <= length && dsdt[r] == 0x86 && dsdt[r + 1] == 9 && dsdt[r + 2] == 0) {
        base = *(const uint32_t*)(dsdt + r + 4);
        size = *(const uint32_t*)(dsdt + r + 8);
        have_mem = 1;
        r += 11;
      } else if (have_mem && r + 3 <= length && dsdt[r] == 0x22) {
        uint16_t mask = (uint16_t)(dsdt[r + 1] | dsdt[r + 2] << 8);
        while (irq < 16 && !(mask & (1u << irq))) ++irq;
        have_irq = 1;
      }
    }
    if (!have_mem || !have_irq) continue;
    ++found;
    *good += probe("DSDT", base, size, irq);
  }
  return (int)found;
}

// Whether the command line has the word `word` (as Linux's acpi=off: then no ACPI table is read).
static int cmdline_has(const char* s, const char* word) {
  for (const char* at = s; *at; ++at) {
    if (at != s && at[-1] != ' ') continue;
    const char* k = word;
    const char* p = at;
    while (*k && *p == *k) ++k, ++p;
    if (!*k && (*p == ' ' || *p == 0)) return 1;
  }
  return 0;
}

int guest_main(const struct hvm_start_info* info) {
  int good = 0;
  const char* s = (const char*)(uintptr_t)info->cmdline_paddr;
  int found = cmdline_has(s, "acpi=off") ? 0 : scan_dsdt(info, &good);
  const char* key = "virtio_mmio.device=";
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
    ++found;
    good += probe("command line", base, size, irq);
  }
  puts_serial("virtio: ");
  put_dec((uint32_t)good);
  puts_serial(" of ");
  put_dec((uint32_t)found);
  puts_serial(" transports answer, each announced once\n");
  return found > 0 && good == found ? 0 : 1;
}
