// QEMU's edu device (docs/specs/edu.rst) passed through with vfio-pci: finds 1234:11e8 by a CF8/CFC
// scan of bus 0, turns on memory decoding and bus mastering, reads the id register, computes a
// factorial, copies a buffer through the device's DMA engine (guest RAM -> edu -> other guest RAM,
// which needs the IOMMU mapping of guest RAM) and takes the DMA-done interrupt as an MSI through the
// LAPIC. Like irq.c it finishes inside the handler. Exit 0 when every step worked.
//
// intx=1: MSI stays off, so edu raises INTx (its pin, level-triggered): the guest routes the GSI in
// the interrupt line register through the IOAPIC (level, unmasked) and takes two interrupts. The
// first (DMA done) is acknowledged in edu and EOIed, then the handler raises a second one through
// edu's raise register: it only arrives if the EOI re-armed the host INTx (VFIO unmasks it when
// KVM's resample eventfd fires). The second is acknowledged and EOIed, and nothing more may arrive
// (the line was deasserted at the EOI).
// hold=1: after the checks it stays running instead of exiting (a machine that holds edu).
// rom=1: sizes the expansion ROM register, maps the ROM after BAR0, checks its signature (55 aa)
// and prints the text the test put at offset 0x40.
// reads=N: times N reads of the id register (rdtsc) and prints the cycles per read: trapped
// (each read an exit to the VMM and a VFIO pread) or mmapped (no exit), as the VMM placed BAR0.
#include "lib.h"

#define IOAPIC 0xfec00000u
#define LAPIC 0xfee00000u
#define VECTOR 0x41
#define EDU_BUFFER 0x40000u
#define LEVEL (1u << 15)

extern void edu_msi_entry(void);
__asm__(".text\n.code32\n.globl edu_msi_entry\nedu_msi_entry:\n cld\n call edu_msi_handler\n1: hlt\n jmp 1b\n");

static int intx_mode, hold;
static volatile uint32_t interrupts;

static uint32_t config_read(uint32_t dev, uint32_t reg) {
  outl(0xcf8, 0x80000000u | dev << 11 | (reg & 0xfc));
  return inl(0xcfc) >> (8 * (reg & 3));
}
static void config_write(uint32_t dev, uint32_t reg, uint32_t value) {
  outl(0xcf8, 0x80000000u | dev << 11 | (reg & 0xfc));
  outl(0xcfc, value);
}

static volatile uint32_t* bar;
static volatile uint32_t* reg(uint32_t offset) { return bar + offset / 4; }
static void reg64(uint32_t offset, uint32_t value) {
  reg(offset)[0] = value;
  reg(offset)[1] = 0;
}

static uint8_t source[256] __attribute__((aligned(4096)));
static volatile uint8_t copy[256] __attribute__((aligned(4096)));

static void finish(int status) {
  if (hold) {
    puts_serial("edu: holding the device\n");
    for (;;) __asm__ volatile("cli; hlt");
  }
  outb(0x501, (uint8_t)status);
}

void edu_msi_handler(void) {
  uint32_t n = ++interrupts;
  uint32_t status = *reg(0x24);
  *reg(0x64) = status;  // acknowledge: edu lowers its INTx (nothing for MSI)
  *(volatile uint32_t*)(uintptr_t)(LAPIC + 0xb0) = 0;
  if (intx_mode && n == 1) {
    int same = 1;
    for (unsigned i = 0; i < sizeof source; ++i) same &= copy[i] == source[i];
    puts_serial("edu: INTx on vector 0x41, interrupt status 0x");
    put_hex(status, 8);
    puts_serial(same ? ", DMA copy matches\n" : ", DMA copy DIFFERS\n");
    if (!same || status != 0x100) finish(7);
    *reg(0x60) = 0x1;                            // raise another one
    for (;;) __asm__ volatile("sti; hlt; cli");  // it nests here, once the EOI re-armed the host INTx
  }
  if (intx_mode) {
    for (int i = 0; i < 1000; ++i) __asm__ volatile("sti; nop; cli");  // nothing more may arrive
    puts_serial("edu: INTx again after the EOI, interrupt status 0x");
    put_hex(status, 8);
    puts_serial(", then no more: ");
    put_dec(interrupts);
    puts_serial(" interrupts\n");
    finish(status == 0x1 && interrupts == 2 ? 0 : 7);
  }
  int same = 1;
  for (unsigned i = 0; i < sizeof source; ++i) same &= copy[i] == source[i];
  puts_serial("edu: MSI on vector 0x41, interrupt status 0x");
  put_hex(status, 8);
  puts_serial(same ? ", DMA copy matches\n" : ", DMA copy DIFFERS\n");
  finish(same && status == 0x100 ? 0 : 7);
}

static int dma(uint32_t src, uint32_t dst, uint32_t count, uint32_t command) {
  reg64(0x80, src);
  reg64(0x88, dst);
  reg64(0x90, count);
  reg64(0x98, command | 1);
  if (command & 4) return 0;  // the interrupt says when it is done
  for (uint32_t spins = 0; *reg(0x98) & 1; ++spins)
    if (spins > 100000000u) return 1;
  return 0;
}

int guest_main(const struct hvm_start_info* info) {
  intx_mode = cmdline_number(info, "intx", 0) != 0;
  hold = cmdline_number(info, "hold", 0) != 0;
  uint32_t dev;
  for (dev = 0; dev < 32; ++dev)
    if (config_read(dev, 0) == 0x11e81234u) break;
  if (dev == 32) {
    puts_serial("edu: no 1234:11e8 on bus 0\n");
    return 2;
  }
  bar = (volatile uint32_t*)(uintptr_t)(config_read(dev, 0x10) & ~0xfu);
  config_write(dev, 0x04, 0x0006);  // memory decoding and bus mastering
  puts_serial("edu: 00:");
  put_hex(dev, 2);
  puts_serial(".0 BAR0 at 0x");
  put_hex((uint32_t)(uintptr_t)bar, 8);
  puts_serial(", id 0x");
  uint32_t id = *reg(0x00);
  put_hex(id, 8);
  puts_serial("\n");
  if (id != 0x010000edu) return 3;
  if (cmdline_number(info, "rom", 0)) {
    config_write(dev, 0x30, 0xfffff800u);
    uint32_t mask = config_read(dev, 0x30) & 0xfffff800u;
    uint32_t size = ~mask + 1;
    if (!mask || size > 0x100000u) {
      puts_serial("edu: no expansion ROM\n");
      return 9;
    }
    uint32_t at = (uint32_t)(uintptr_t)bar + 0x100000u;  // after BAR0 (1 MiB), aligned to the ROM
    config_write(dev, 0x30, at | 1);
    volatile uint8_t* rom = (volatile uint8_t*)(uintptr_t)at;
    puts_serial("edu: ROM of ");
    put_dec(size);
    puts_serial(" bytes, signature ");
    put_hex(rom[0], 2);
    put_hex(rom[1], 2);
    puts_serial(", says: ");
    for (uint32_t i = 0x40; i < 0x80 && rom[i]; ++i) putc_serial((char)rom[i]);
    puts_serial("\n");
    config_write(dev, 0x30, 0);
  }
  uint32_t reads = cmdline_number(info, "reads", 0);
  if (reads) {
    uint32_t sum = 0;
    uint64_t start = rdtsc();
    for (uint32_t i = 0; i < reads; ++i) sum += *reg(0x00);
    uint64_t cycles = rdtsc() - start;
    puts_serial("edu: ");
    put_dec(reads);
    puts_serial(" reads of the id register, ");
    put_dec(cycles >> 32 ? 0xffffffffu : (uint32_t)cycles / reads);  // 32-bit code: no 64-bit division
    puts_serial(" TSC cycles each\n");
    if (sum != reads * 0x010000edu) return 3;
  }
  *reg(0x04) = 0x12345678u;
  if (*reg(0x04) != ~0x12345678u) {
    puts_serial("edu: liveness check failed\n");
    return 4;
  }
  *reg(0x08) = 10;
  for (uint32_t spins = 0; *reg(0x20) & 1; ++spins)
    if (spins > 100000000u) return 5;
  uint32_t factorial = *reg(0x08);
  puts_serial("edu: 10! = ");
  put_dec(factorial);
  puts_serial("\n");
  if (factorial != 3628800u) return 5;

  uint32_t apic_id = *(volatile uint32_t*)(uintptr_t)(LAPIC + 0x20) >> 24;
  if (intx_mode) {
    // INTx: the pin's GSI (interrupt line register) through the IOAPIC, level, active high.
    uint32_t pin = config_read(dev, 0x3d) & 0xff, gsi = config_read(dev, 0x3c) & 0xff;
    puts_serial("edu: INTx pin ");
    put_dec(pin);
    puts_serial(", GSI ");
    put_dec(gsi);
    puts_serial("\n");
    if (pin == 0 || gsi >= 24) return 6;
    *(volatile uint32_t*)(uintptr_t)IOAPIC = 0x10 + 2 * gsi + 1;
    *(volatile uint32_t*)(uintptr_t)(IOAPIC + 0x10) = apic_id << 24;
    *(volatile uint32_t*)(uintptr_t)IOAPIC = 0x10 + 2 * gsi;
    *(volatile uint32_t*)(uintptr_t)(IOAPIC + 0x10) = VECTOR | LEVEL;
  } else {
    // MSI: the capability's address (this CPU's LAPIC) and data (the vector, fixed, edge).
    uint32_t cap;
    for (cap = config_read(dev, 0x34) & 0xfc; cap; cap = config_read(dev, cap + 1) & 0xfc)
      if ((config_read(dev, cap) & 0xff) == 5) break;
    if (!cap) {
      puts_serial("edu: no MSI capability\n");
      return 6;
    }
    int is64 = (config_read(dev, cap + 2) & 0x80) != 0;
    config_write(dev, cap + 4, LAPIC | apic_id << 12);
    if (is64) config_write(dev, cap + 8, 0);
    config_write(dev, cap + (is64 ? 12 : 8), VECTOR);
    config_write(dev, cap, (config_read(dev, cap) & 0xffff) | (1u << 16));  // MSI enable
  }

  idt_set_gate32(VECTOR, edu_msi_entry);
  outb(0x21, 0xff);
  outb(0xa1, 0xff);
  *(volatile uint32_t*)(uintptr_t)(LAPIC + 0xf0) = 0x1ff;

  // DMA: guest RAM -> the device's buffer (polled), then back into other guest RAM (MSI when done).
  for (unsigned i = 0; i < sizeof source; ++i) source[i] = (uint8_t)(i * 7 + 3);
  if (dma((uint32_t)(uintptr_t)source, EDU_BUFFER, sizeof source, 0)) {
    puts_serial("edu: DMA to the device never finished\n");
    return 8;
  }
  puts_serial("edu: DMA into the device done, DMA back with an interrupt\n");
  dma(EDU_BUFFER, (uint32_t)(uintptr_t)copy, sizeof copy, 2 | 4);
  for (;;) __asm__ volatile("sti; hlt; cli");
}
