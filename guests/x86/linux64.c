// The Linux boot protocol path: entered in 64-bit mode with RSI -> boot_params. Prints the e820 map
// and command line the VMM put there, then takes a self-IPI through a 64-bit IDT gate and returns
// from it with IRETQ. Exits with exit=N from the command line once everything checked out.
#include "lib.h"

extern void isr_entry(void);
static volatile uint32_t interrupts;

void isr_handler(void) {
  ++interrupts;
  *(volatile uint32_t*)(uintptr_t)0xfee000b0u = 0;  // EOI
}


static uint32_t cmdline_value(const char* s, const char* key, uint32_t fallback) {
  struct hvm_start_info fake = {0};
  fake.cmdline_paddr = (uint64_t)(uintptr_t)s;
  return cmdline_number(&fake, key, fallback);
}

int guest_main(const uint8_t* params) {
  if (*(const uint32_t*)(params + 0x202) != 0x53726448) {
    puts_serial("linux64: boot_params has no HdrS\n");
    return 90;
  }
  const char* cmdline = (const char*)(uintptr_t) * (const uint32_t*)(params + 0x228);
  puts_serial("linux64: 64-bit entry, cmdline \"");
  puts_serial(cmdline);
  puts_serial("\"\n");
  uint8_t entries = params[0x1e8];
  uint64_t ram = 0;
  for (uint8_t i = 0; i < entries; ++i) {
    const uint8_t* e = params + 0x2d0 + 20 * i;
    uint64_t address = *(const uint64_t*)e, size = *(const uint64_t*)(e + 8);
    uint32_t type = *(const uint32_t*)(e + 16);
    puts_serial("linux64: e820 ");
    put_hex((uint32_t)address, 8);
    puts_serial(" size ");
    put_hex((uint32_t)size, 8);
    puts_serial(type == 1 ? " ram\n" : " reserved\n");
    if (type == 1) ram += size;
  }
  puts_serial("linux64: ");
  put_dec((uint32_t)(ram >> 10));
  puts_serial(" KiB of RAM\n");
  uint32_t initrd = *(const uint32_t*)(params + 0x218), initrd_size = *(const uint32_t*)(params + 0x21c);
  if (initrd_size) {
    puts_serial("linux64: initrd ");
    put_dec(initrd_size);
    puts_serial(" bytes, starts with \"");
    for (int i = 0; i < 8; ++i) putc_serial(((const char*)(uintptr_t)initrd)[i]);
    puts_serial("\"\n");
  }

  // A self-IPI (vector 0x40) through the LAPIC into a 64-bit interrupt gate, returning with IRETQ.
  idt_set_gate64(0x40, isr_entry);
  *(volatile uint32_t*)(uintptr_t)0xfee000f0u = 0x1ff;
  *(volatile uint32_t*)(uintptr_t)0xfee00300u = 0x40040;  // fixed, vector 0x40, shorthand self
  // Wait in HLT: PVM delivers a pending interrupt on the next entry, not in the middle of a sti window.
  __asm__ volatile("sti; hlt; cli");
  puts_serial("linux64: self-IPI handled ");
  put_dec(interrupts);
  puts_serial(" time(s), back from IRETQ\n");
  if (interrupts != 1) return 91;
  return (int)cmdline_value(cmdline, "exit", 0);
}
