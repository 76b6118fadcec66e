// Interrupt delivery: COM1's receive interrupt through the IOAPIC (pin 4) to the LAPIC and an IDT
// gate, with the PIC masked. On microvm that IOAPIC is vmlaunch's own (hw/x86/ioapic), on pc KVM's.
// PVM's instruction emulator cannot execute a 32-bit IRET (KVM_EXIT_INTERNAL_ERROR, emulation
// failure), so handlers never return: they finish the test and exit from inside.
//
// Edge mode (default): the guest sleeps in HLT until the first byte's interrupt, then reads the line
// inside the handler; exactly one interrupt is expected.
//
// Level mode (cmdline level=1): the pin is level triggered and starts masked.
//   1. a byte arrives while the pin is masked: no interrupt, no remote IRR;
//   2. unmasking delivers it; in the handler the entry shows remote IRR;
//   3. the handler sends the EOI without reading the byte: the line is still up, so the IOAPIC sends
//      the interrupt again (a nested second handler, after STI), remote IRR set again;
//   4. the second handler reads the line (the UART drops its interrupt) and sends the EOI: remote IRR
//      clears and nothing more arrives.
// Step 4 needs a LAPIC that keeps the vector in service (ISR) until the handler's EOI. PVM's does
// not: the vector's ISR bit is already clear in the handler and KVM reports its EOI at delivery (the
// same with KVM's in-kernel IOAPIC on pc), so the handler's own EOI reaches no IOAPIC. The guest
// reads ISR in the handler and, when it is clear, says so and skips step 4's remote IRR check.
#include "lib.h"

#define IOAPIC 0xfec00000u
#define LAPIC 0xfee00000u
#define VECTOR 0x24
#define PIN 4
#define REMOTE_IRR (1u << 14)
#define LEVEL (1u << 15)
#define MASKED (1u << 16)

// Interrupt entry: save the registers, run the C handler, return from the interrupt.
extern void irq_entry(void);
__asm__(".text\n.code32\n.globl irq_entry\nirq_entry:\n pusha\n cld\n call irq_handler\n popa\n iret\n");

static volatile uint32_t interrupts;
static volatile char line[64];
static volatile int length;
static volatile int level_mode;
static volatile uint32_t entry_in_handler[2];
static volatile int in_service = 1;  // the LAPIC held our vector in service in every handler
static volatile int failures;

static void ioapic_write(uint32_t reg, uint32_t value) {
  *(volatile uint32_t*)(uintptr_t)IOAPIC = reg;
  *(volatile uint32_t*)(uintptr_t)(IOAPIC + 0x10) = value;
}
static uint32_t ioapic_read(uint32_t reg) {
  *(volatile uint32_t*)(uintptr_t)IOAPIC = reg;
  return *(volatile uint32_t*)(uintptr_t)(IOAPIC + 0x10);
}
static volatile uint32_t* lapic(uint32_t reg) {
  return (volatile uint32_t*)(uintptr_t)(LAPIC + reg);
}

static void finish(void);

static void read_line(void) {
  for (;;) {
    char c = (char)getc_serial();
    if (c == '\n' || c == '\r') return;
    if (length < 63) line[length++] = c;
  }
}

static void fail(const char* why) {
  puts_serial("irq guest: FAIL: ");
  puts_serial(why);
  puts_serial("\n");
  ++failures;
}

// A short window with interrupts enabled: anything pending is taken here.
static void open_window(void) {
  for (int i = 0; i < 100; ++i) __asm__ volatile("sti; nop; cli");
}

void irq_handler(void) {
  uint32_t n = ++interrupts;
  if (!level_mode) {
    *lapic(0xb0) = 0;  // EOI
    read_line();
    finish();
  }
  if (!(*lapic(0x100 + 0x10 * (VECTOR / 32)) & (1u << (VECTOR % 32)))) in_service = 0;
  if (n <= 2) entry_in_handler[n - 1] = ioapic_read(0x10 + 2 * PIN);
  if (n == 1) {
    // The byte is unread, the line is up: after this EOI the IOAPIC must send the vector again.
    *lapic(0xb0) = 0;
    for (;;) __asm__ volatile("sti; hlt; cli");  // the second interrupt nests here
  }
  read_line();  // the UART lowers its interrupt line
  *lapic(0xb0) = 0;
  open_window();  // nothing may arrive now
  uint32_t after = ioapic_read(0x10 + 2 * PIN);
  if (!(entry_in_handler[0] & REMOTE_IRR) || !(entry_in_handler[1] & REMOTE_IRR))
    fail("remote IRR not set while the interrupt was in service");
  if (!in_service)
    puts_serial("irq guest: level: the LAPIC did not hold the vector in service (PVM): EOI check skipped\n");
  else if (after & REMOTE_IRR)
    fail("remote IRR still set after the EOI of a deasserted line");
  if (interrupts != 2) fail("not exactly two interrupts (one, then one again at the EOI)");
  puts_serial("irq guest: level: remote IRR set in service, re-sent at the EOI while asserted\n");
  if (in_service) puts_serial("irq guest: level: remote IRR clear after the EOI of the drained line\n");
  finish();
}

int guest_main(const struct hvm_start_info* info) {
  level_mode = cmdline_number(info, "level", 0) != 0;
  outb(0x21, 0xff);  // mask both PICs: interrupts come through the IOAPIC
  outb(0xa1, 0xff);
  idt_set_gate32(VECTOR, irq_entry);

  *lapic(0xf0) = 0x1ff;  // LAPIC on, spurious vector 0xff
  uint32_t apic_id = *lapic(0x20) >> 24;
  ioapic_write(0x10 + 2 * PIN + 1, apic_id << 24);
  // Edge: active high, fixed, unmasked. Level: active high, fixed, masked for now.
  ioapic_write(0x10 + 2 * PIN, level_mode ? VECTOR | LEVEL | MASKED : VECTOR);

  outb(COM1 + 4, 0x0b);  // DTR, RTS, OUT2
  outb(COM1 + 1, 0x01);  // interrupt on received data
  puts_serial("irq guest: waiting for a line\n");
  if (!level_mode) {
    for (;;) __asm__ volatile("sti; hlt; cli");
  }
  while (!(inb(COM1 + 5) & 0x01)) {
  }
  open_window();
  if (interrupts != 0) fail("a masked level pin interrupted");
  if (ioapic_read(0x10 + 2 * PIN) & REMOTE_IRR) fail("remote IRR set on a masked pin");
  puts_serial("irq guest: level: a byte is waiting, the masked pin held it back\n");
  ioapic_write(0x10 + 2 * PIN, VECTOR | LEVEL);  // unmask: the asserted line is delivered
  for (;;) __asm__ volatile("sti; hlt; cli");
}

static void finish(void) {
  line[length] = 0;
  puts_serial("irq echo: ");
  puts_serial((const char*)line);
  puts_serial("\nirq guest: ");
  put_dec(interrupts);
  puts_serial(" interrupt(s)\n");
  outb(0x501, failures == 0 && interrupts == (level_mode ? 2u : 1u) ? 0 : 1);
  for (;;) __asm__ volatile("cli; hlt");
}
