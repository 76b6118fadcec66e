// A guest for snapshots (tests/kvm/x86_snapshot_test.sh): counts LAPIC timer interrupts in 64-bit
// mode and prints COUNT=n every `every` ticks (default 20) until COUNT=`limit` (default 60), then
// exits with status 0. State a restore must bring back is checked at every line: an SSE register
// (the XSAVE area), CR4's OSFXSR, two syscall MSRs (LSTAR, KERNEL_GS_BASE) and the counter in RAM;
// the timer itself (LAPIC state) keeps the count going, and the guest waits in HLT between ticks
// (the vCPU's run state). A lost piece prints STATE-LOST and exits 91.
#include "lib.h"

extern void isr_entry(void);
static volatile uint32_t ticks;

void isr_handler(void) {
  ++ticks;
  *(volatile uint32_t*)(uintptr_t)0xfee000b0u = 0;  // EOI
}


static inline void wrmsr(uint32_t index, uint64_t value) {
  __asm__ volatile("wrmsr" ::"c"(index), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}
static inline uint64_t rdmsr(uint32_t index) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
  return (uint64_t)hi << 32 | lo;
}
static inline uint64_t xmm5(void) {
  uint64_t v;
  __asm__ volatile("movq %%xmm5, %0" : "=r"(v));
  return v;
}

static uint32_t cmdline_value(const char* s, const char* key, uint32_t fallback) {
  struct hvm_start_info fake = {0};
  fake.cmdline_paddr = (uint64_t)(uintptr_t)s;
  return cmdline_number(&fake, key, fallback);
}

#define LAPIC(reg) (*(volatile uint32_t*)(uintptr_t)(0xfee00000u + (reg)))

int guest_main(const uint8_t* params) {
  const char* cmdline = (const char*)(uintptr_t) * (const uint32_t*)(params + 0x228);
  const uint32_t every = cmdline_value(cmdline, "every", 20), limit = cmdline_value(cmdline, "limit", 60);
  const uint64_t magic_xmm = 0x5eed5eed12345678ull, magic_lstar = 0xffffffff81234560ull,
                 magic_gs = 0xffff888012345000ull;

  // SSE on (CR4.OSFXSR | OSXMMEXCPT, CR0.MP, no EM) and a value in xmm5 no code here touches again.
  uint64_t cr0, cr4;
  __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
  __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
  __asm__ volatile("mov %0, %%cr0" ::"r"((cr0 & ~4ull) | 2));
  __asm__ volatile("mov %0, %%cr4" ::"r"(cr4 | (3u << 9)));
  __asm__ volatile("movq %0, %%xmm5" ::"r"(magic_xmm));
  wrmsr(0xc0000082, magic_lstar);
  wrmsr(0xc0000102, magic_gs);

  idt_set_gate64(0x40, isr_entry);

  // The LAPIC timer, periodic at vector 0x40: divide by 16, 625000 counts (10 ms at KVM's 1 GHz
  // APIC bus).
  LAPIC(0xf0) = 0x1ff;
  LAPIC(0x3e0) = 0x3;
  LAPIC(0x320) = 0x40 | (1u << 17);
  LAPIC(0x380) = 625000;
  puts_serial("count64: timer started\n");

  uint32_t printed = 0;
  while (printed < limit) {
    __asm__ volatile("sti; hlt; cli");
    if (ticks < (printed + 1) * every) continue;
    ++printed;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    if (xmm5() != magic_xmm || rdmsr(0xc0000082) != magic_lstar || rdmsr(0xc0000102) != magic_gs ||
        !(cr4 & (1u << 9))) {
      puts_serial("STATE-LOST\n");
      return 91;
    }
    puts_serial("COUNT=");
    put_dec(printed);
    puts_serial("\n");
  }
  LAPIC(0x320) = 1u << 16;  // timer masked
  puts_serial("count-done\n");
  return 0;
}
