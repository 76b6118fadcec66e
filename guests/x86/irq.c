// Interrupt delivery: COM1's receive interrupt through the in-kernel IOAPIC (pin 4) to the LAPIC and
// an IDT gate, with the PIC masked. The guest sleeps in HLT until the first byte's interrupt, then
// finishes the line inside the handler and exits from there: PVM's instruction emulator cannot
// execute a 32-bit IRET (KVM_EXIT_INTERNAL_ERROR, emulation failure), so the handler never returns.
#include "lib.h"

#define IOAPIC 0xfec00000u
#define LAPIC 0xfee00000u
#define VECTOR 0x24

// Interrupt entry: save the registers, run the C handler, return from the interrupt.
extern void irq_entry(void);
__asm__(".text\n.code32\n.globl irq_entry\nirq_entry:\n pusha\n cld\n call irq_handler\n popa\n iret\n");

static volatile uint32_t interrupts;
static volatile char line[64];
static volatile int length;
static volatile int done;

static void ioapic_write(uint32_t reg, uint32_t value) {
  *(volatile uint32_t*)(uintptr_t)IOAPIC = reg;
  *(volatile uint32_t*)(uintptr_t)(IOAPIC + 0x10) = value;
}
static volatile uint32_t* lapic(uint32_t reg) { return (volatile uint32_t*)(uintptr_t)(LAPIC + reg); }

static void finish(void);

void irq_handler(void) {
  ++interrupts;
  *lapic(0xb0) = 0;  // EOI
  while (!done) {
    char c = (char)getc_serial();
    if (c == '\n' || c == '\r')
      done = 1;
    else if (length < 63)
      line[length++] = c;
  }
  finish();
}

static struct {
  uint16_t offset_low, selector;
  uint8_t zero, type;
  uint16_t offset_high;
} __attribute__((packed)) idt[256];

int guest_main(const struct hvm_start_info* info) {
  (void)info;
  outb(0x21, 0xff);  // mask both PICs: interrupts come through the IOAPIC
  outb(0xa1, 0xff);
  uint32_t handler = (uint32_t)(uintptr_t)irq_entry;
  idt[VECTOR].offset_low = (uint16_t)handler;
  idt[VECTOR].selector = 0x10;
  idt[VECTOR].type = 0x8e;  // present, ring 0, 32-bit interrupt gate
  idt[VECTOR].offset_high = (uint16_t)(handler >> 16);
  struct {
    uint16_t limit;
    uint32_t base;
  } __attribute__((packed)) idtr = {sizeof idt - 1, (uint32_t)(uintptr_t)idt};
  __asm__ volatile("lidt %0" ::"m"(idtr));

  *lapic(0xf0) = 0x1ff;  // LAPIC on, spurious vector 0xff
  uint32_t apic_id = *lapic(0x20) >> 24;
  ioapic_write(0x10 + 2 * 4 + 1, apic_id << 24);
  ioapic_write(0x10 + 2 * 4, VECTOR);  // edge, active high, fixed, unmasked

  outb(COM1 + 4, 0x0b);  // DTR, RTS, OUT2
  outb(COM1 + 1, 0x01);  // interrupt on received data
  puts_serial("irq guest: waiting for a line\n");
  for (;;) __asm__ volatile("sti; hlt; cli");
}

static void finish(void) {
  line[length] = 0;
  puts_serial("irq echo: ");
  puts_serial((const char*)line);
  puts_serial("\nirq guest: ");
  put_dec(interrupts);
  puts_serial(" interrupt(s)\n");
  outb(0x501, interrupts == 1 ? 0 : 1);
  for (;;) __asm__ volatile("cli; hlt");
}
