// A guest for the VM generation ID (tests/kvm/x86_snapshot_test.sh, device `vmgenid`): finds the
// ID the way an OS does, through ACPI (RSDP at 0xe0000 -> XSDT -> FADT -> DSDT, the VGEN device's
// ADDR method and the two 32-bit halves it returns), prints it as GENID=<32 hex digits>, routes
// IOAPIC pin 16 (the GED's interrupt for VGEN) to a vector and waits in HLT. Each interrupt is a
// change notification: it prints NOTIFIED=n GENID=<the ID now> and, after `notifications` of them
// (default 1), exits 0. Anything missing prints GENID-ERROR and exits 92.
#include "lib.h"

extern void isr_entry(void);
static volatile uint32_t notifications;

void isr_handler(void) {
  ++notifications;
  *(volatile uint32_t*)(uintptr_t)0xfee000b0u = 0;  // EOI
}

static uint32_t read32(uint64_t at) {
  return *(volatile const uint32_t*)(uintptr_t)at;
}
static uint64_t read64(uint64_t at) {
  return (uint64_t)read32(at + 4) << 32 | read32(at);
}
static int same(const volatile uint8_t* at, const char* text, int n) {
  for (int i = 0; i < n; ++i)
    if (at[i] != (uint8_t)text[i]) return 0;
  return 1;
}

static int fail(const char* why) {
  puts_serial("GENID-ERROR ");
  puts_serial(why);
  puts_serial("\n");
  return 92;
}

// The ADDR method's package: "ADDR" 0 ReturnOp PackageOp PkgLength 2 DWordConst low DWordConst high.
static uint64_t genid_address(void) {
  for (uint64_t rsdp = 0xe0000; rsdp < 0x100000; rsdp += 16) {
    if (!same((const volatile uint8_t*)(uintptr_t)rsdp, "RSD PTR ", 8)) continue;
    const uint64_t xsdt = read64(rsdp + 24);
    const uint32_t entries = (read32(xsdt + 4) - 36) / 8;
    for (uint32_t i = 0; i < entries; ++i) {
      const uint64_t table = read64(xsdt + 36 + 8 * i);
      if (!same((const volatile uint8_t*)(uintptr_t)table, "FACP", 4)) continue;
      const uint64_t dsdt = read64(table + 140);
      const uint32_t length = read32(dsdt + 4);
      const volatile uint8_t* b = (const volatile uint8_t*)(uintptr_t)dsdt;
      for (uint32_t at = 36; at + 20 < length; ++at) {
        if (!same(b + at, "ADDR\0\xa4\x12", 7) || b[at + 8] != 2 || b[at + 9] != 0x0c || b[at + 14] != 0x0c)
          continue;
        return (uint64_t)read32(dsdt + at + 15) << 32 | read32(dsdt + at + 10);
      }
    }
  }
  return 0;
}

static void print_id(uint64_t address) {
  puts_serial("GENID=");
  for (int i = 0; i < 16; ++i) put_hex(*(volatile const uint8_t*)(uintptr_t)(address + i), 2);
  puts_serial("\n");
}

static uint32_t cmdline_value(const char* s, const char* key, uint32_t fallback) {
  struct hvm_start_info fake = {0};
  fake.cmdline_paddr = (uint64_t)(uintptr_t)s;
  return cmdline_number(&fake, key, fallback);
}

#define LAPIC(reg) (*(volatile uint32_t*)(uintptr_t)(0xfee00000u + (reg)))
static void ioapic_write(uint32_t reg, uint32_t value) {
  *(volatile uint32_t*)(uintptr_t)0xfec00000u = reg;
  *(volatile uint32_t*)(uintptr_t)0xfec00010u = value;
}

int guest_main(const uint8_t* params) {
  const char* cmdline = (const char*)(uintptr_t) * (const uint32_t*)(params + 0x228);
  const uint32_t wanted = cmdline_value(cmdline, "notifications", 1);
  const uint64_t address = genid_address();
  if (!address) return fail("no VGEN ADDR in the DSDT");
  puts_serial("genid64: ADDR=0x");
  put_hex((uint32_t)address, 8);
  puts_serial("\n");
  print_id(address);

  // GSI 16 -> vector 0x41 on APIC id 0: edge, active high, fixed delivery, unmasked.
  idt_set_gate64(0x41, isr_entry);
  LAPIC(0xf0) = 0x1ff;
  ioapic_write(0x10 + 2 * 16 + 1, 0);
  ioapic_write(0x10 + 2 * 16, 0x41);
  puts_serial("genid64: waiting\n");

  uint32_t seen = 0;
  while (seen < wanted) {
    __asm__ volatile("sti; hlt; cli");
    if (notifications == seen) continue;
    seen = notifications;
    puts_serial("NOTIFIED=");
    put_dec(seen);
    puts_serial(" ");
    print_id(address);
  }
  puts_serial("genid-done\n");
  return 0;
}
