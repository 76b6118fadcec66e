// Application-processor bring-up: finds the CPUs in the MP table, starts every AP with INIT/SIPI
// through the local APIC, and checks each one came up with an APIC id the table lists; the ACPI MADT
// must list the same ids.
#include "lib.h"

extern char ap_trampoline[], ap_trampoline_end[];

#define LAPIC 0xfee00000u
static volatile uint32_t* lapic(uint32_t reg) { return (volatile uint32_t*)(uintptr_t)(LAPIC + reg); }

static void send_ipi(uint32_t apic_id, uint32_t command) {
  *lapic(0x310) = apic_id << 24;
  *lapic(0x300) = command;
  for (int i = 0; i < 100000 && (*lapic(0x300) & (1u << 12)); ++i) {
  }
}

static void delay(int n) {
  for (volatile int i = 0; i < n; ++i) {
  }
}

int guest_main(const struct hvm_start_info* info) {
  // The MP floating pointer: EBDA first (where vmlaunch puts it), then the BIOS area.
  const uint8_t* mp = 0;
  for (uint32_t at = 0x9fc00; at < 0x100000 && !mp; at += 16) {
    if (at == 0xa0000) at = 0xf0000;
    const uint8_t* p = (const uint8_t*)(uintptr_t)at;
    if (p[0] == '_' && p[1] == 'M' && p[2] == 'P' && p[3] == '_') mp = p;
  }
  if (!mp) {
    puts_serial("smp: no MP table\n");
    return 2;
  }
  const uint8_t* table = (const uint8_t*)(uintptr_t) * (const uint32_t*)(mp + 4);
  uint16_t entries = *(const uint16_t*)(table + 34);
  const uint8_t* e = table + 44;
  uint32_t ids[64];
  uint32_t cpus = 0;
  for (uint16_t i = 0; i < entries && cpus < 64; ++i) {
    if (e[0] == 0) {
      ids[cpus++] = e[1];
      e += 20;
    } else {
      e += 8;
    }
  }
  puts_serial("smp: MP table lists ");
  put_dec(cpus);
  puts_serial(" cpus\n");

  // ACPI (RSDP from hvm_start_info -> XSDT -> MADT) must list the same APIC ids.
  uint32_t madt_cpus = 0, madt_matches = 0;
  if (info->rsdp_paddr) {
    const uint8_t* rsdp = (const uint8_t*)(uintptr_t)info->rsdp_paddr;
    const uint8_t* xsdt = (const uint8_t*)(uintptr_t) * (const uint32_t*)(rsdp + 24);
    uint32_t xsdt_length = *(const uint32_t*)(xsdt + 4);
    for (uint32_t at = 36; at + 8 <= xsdt_length; at += 8) {
      const uint8_t* table = (const uint8_t*)(uintptr_t) * (const uint32_t*)(xsdt + at);
      if (table[0] != 'A' || table[1] != 'P' || table[2] != 'I' || table[3] != 'C') continue;
      uint32_t length = *(const uint32_t*)(table + 4);
      for (uint32_t e = 44; e + 2 <= length && table[e + 1]; e += table[e + 1]) {
        if (table[e] != 0 || !(table[e + 4] & 1)) continue;
        ++madt_cpus;
        for (uint32_t j = 0; j < cpus; ++j) madt_matches += ids[j] == table[e + 3];
      }
    }
  }
  puts_serial("smp: ACPI MADT lists ");
  put_dec(madt_cpus);
  puts_serial(madt_cpus == cpus && madt_matches == cpus ? " cpus, the same APIC ids\n" : " cpus, DIFFERENT APIC ids\n");
  if (madt_cpus != cpus || madt_matches != cpus) return 3;

  uint8_t* trampoline = (uint8_t*)0x8000;
  for (char* p = ap_trampoline; p < ap_trampoline_end; ++p) *trampoline++ = (uint8_t)*p;
  volatile uint16_t* counter = (volatile uint16_t*)0x7ff0;
  *counter = 0;
  *lapic(0xf0) = 0x1ff;  // software-enable the BSP's LAPIC
  uint32_t own_id = *lapic(0x20) >> 24;
  for (uint32_t i = 0; i < cpus; ++i) {
    if (ids[i] == own_id) continue;
    send_ipi(ids[i], 0x4500);  // INIT
    delay(10000);
    send_ipi(ids[i], 0x4608);  // STARTUP, vector 0x08 -> 0x8000
    delay(10000);
    send_ipi(ids[i], 0x4608);
  }
  // Wait by the TSC, not a spin count: on a loaded host the AP threads may take a while to be
  // scheduled. 20e9 cycles is 5-20 s at any plausible TSC rate.
  uint64_t deadline = rdtsc() + 20000000000ull;
  while (*counter < cpus - 1 && rdtsc() < deadline) {
  }
  uint32_t started = *counter;
  puts_serial("smp: ");
  put_dec(started + 1);
  puts_serial(" cpus running, APIC ids: ");
  put_dec(own_id);
  int ok = started == cpus - 1;
  for (uint32_t i = 0; i < started; ++i) {
    uint32_t id = ((volatile uint32_t*)0x7f00)[i];
    putc_serial(' ');
    put_dec(id);
    int listed = 0;
    for (uint32_t j = 0; j < cpus; ++j) listed |= ids[j] == id && id != own_id;
    ok = ok && listed;
  }
  puts_serial(ok ? "\nsmp: ok\n" : "\nsmp: FAILED\n");
  return ok ? 0 : 1;
}
