// PCI INTx end to end: finds a virtio-rng-pci function by a CF8/CFC scan of bus 0, reads its
// firmware-assigned BAR and interrupt line, checks the MP table routes its INTA# to that IOAPIC pin,
// drives the device through its modern virtio capabilities (one buffer on queue 0), and waits in HLT
// for the level-triggered interrupt through the IOAPIC. Like irq.c it finishes inside the handler
// (PVM cannot emulate a 32-bit IRET).
#include "lib.h"

#define IOAPIC 0xfec00000u
#define LAPIC 0xfee00000u
#define VECTOR 0x30

extern void pci_irq_entry(void);
__asm__(".text\n.code32\n.globl pci_irq_entry\npci_irq_entry:\n cld\n call pci_irq_handler\n1: hlt\n jmp 1b\n");

static uint32_t config_read(uint32_t dev, uint32_t reg) {
  outl(0xcf8, 0x80000000u | dev << 11 | (reg & 0xfc));
  return inl(0xcfc) >> (8 * (reg & 3));
}

struct desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags, next;
};
static struct desc ring_desc[8] __attribute__((aligned(4096)));
static struct {
  uint16_t flags, idx, ring[8], used_event;
} avail __attribute__((aligned(4096)));
static struct {
  uint16_t flags, idx;
  struct {
    uint32_t id, len;
  } ring[8];
  uint16_t avail_event;
} used __attribute__((aligned(4096)));
static uint8_t buffer[16];

static volatile uint8_t* bar;
static uint32_t common_off, notify_off, notify_mult, isr_off, gsi;

static volatile uint8_t* common8(uint32_t r) { return bar + common_off + r; }
static volatile uint16_t* common16(uint32_t r) { return (volatile uint16_t*)(bar + common_off + r); }
static volatile uint32_t* common32(uint32_t r) { return (volatile uint32_t*)(bar + common_off + r); }

void pci_irq_handler(void) {
  uint8_t isr = bar[isr_off];  // reading acknowledges and drops INTx
  *(volatile uint32_t*)(uintptr_t)(LAPIC + 0xb0) = 0;
  puts_serial("virtio-pci: interrupt on vector 0x30 from pin ");
  put_dec(gsi);
  puts_serial(", isr ");
  put_dec(isr);
  puts_serial(", used idx ");
  put_dec(used.idx);
  puts_serial(", ");
  put_dec(used.ring[0].len);
  puts_serial(" random bytes\n");
  outb(0x501, (isr & 1) && used.idx == 1 && used.ring[0].len == sizeof buffer ? 0 : 1);
}

int guest_main(const struct hvm_start_info* info) {
  (void)info;
  uint32_t dev = 0;
  for (dev = 0; dev < 32; ++dev)
    if (config_read(dev, 0) == 0x10441af4u) break;
  if (dev == 32) {
    puts_serial("virtio-pci: no virtio-rng-pci on bus 0\n");
    return 2;
  }
  gsi = config_read(dev, 0x3c) & 0xff;
  uint32_t pin = (config_read(dev, 0x3d) & 0xff);
  // Modern virtio capabilities (vendor-specific, id 9): type, BAR, offset.
  uint32_t bar_index = 0;
  for (uint32_t cap = config_read(dev, 0x34) & 0xfc; cap; cap = (config_read(dev, cap + 1) & 0xfc)) {
    if ((config_read(dev, cap) & 0xff) != 9) continue;
    uint32_t type = config_read(dev, cap + 3) & 0xff, offset = config_read(dev, cap + 8);
    bar_index = config_read(dev, cap + 4) & 0xff;
    if (type == 1) common_off = offset;
    if (type == 2) notify_off = offset, notify_mult = config_read(dev, cap + 16);
    if (type == 3) isr_off = offset;
  }
  bar = (volatile uint8_t*)(uintptr_t)(config_read(dev, 0x10 + 4 * bar_index) & ~0xfu);
  puts_serial("virtio-pci: 00:");
  put_hex(dev, 2);
  puts_serial(".0 BAR");
  put_dec(bar_index);
  puts_serial(" at 0x");
  put_hex((uint32_t)(uintptr_t)bar, 8);
  puts_serial(", INT");
  putc_serial((char)('A' + pin - 1));
  puts_serial("# line ");
  put_dec(gsi);
  puts_serial("\n");

  // The MP table must route this slot's INTA# to the same IOAPIC pin.
  const uint8_t* mp = 0;
  for (uint32_t at = 0x9fc00; at < 0xa0000 && !mp; at += 16)
    if (*(const uint32_t*)(uintptr_t)at == 0x5f504d5fu) mp = (const uint8_t*)(uintptr_t)at;
  int routed = 0;
  if (mp) {
    const uint8_t* table = (const uint8_t*)(uintptr_t) * (const uint32_t*)(mp + 4);
    const uint8_t* e = table + 44;
    for (uint16_t i = 0; i < *(const uint16_t*)(table + 34); ++i) {
      if (e[0] == 0) {
        e += 20;
        continue;
      }
      if (e[0] == 3 && e[4] == 0 && e[5] == (dev << 2) && e[7] == gsi) routed = 1;
      e += 8;
    }
  }
  puts_serial(routed ? "virtio-pci: MP table routes it to that pin\n" : "virtio-pci: MP table routing MISSING\n");
  if (!routed) return 3;

  // Interrupt plumbing: PIC masked, IDT gate, LAPIC on, IOAPIC pin level-triggered active high.
  outb(0x21, 0xff);
  outb(0xa1, 0xff);
  idt_set_gate32(VECTOR, pci_irq_entry);
  *(volatile uint32_t*)(uintptr_t)(LAPIC + 0xf0) = 0x1ff;
  uint32_t apic_id = *(volatile uint32_t*)(uintptr_t)(LAPIC + 0x20) >> 24;
  *(volatile uint32_t*)(uintptr_t)IOAPIC = 0x10 + 2 * gsi + 1;
  *(volatile uint32_t*)(uintptr_t)(IOAPIC + 0x10) = apic_id << 24;
  *(volatile uint32_t*)(uintptr_t)IOAPIC = 0x10 + 2 * gsi;
  *(volatile uint32_t*)(uintptr_t)(IOAPIC + 0x10) = VECTOR | (1u << 15);  // level, active high

  // Virtio 1.x initialisation (section 3.1) with one queue.
  *common8(0x14) = 0;
  *common8(0x14) = 1 | 2;
  *common32(0x00) = 1;
  if (!(*common32(0x04) & 1)) return 4;  // VIRTIO_F_VERSION_1
  *common32(0x08) = 1;
  *common32(0x0c) = 1;
  *common32(0x08) = 0;
  *common32(0x0c) = 0;
  *common8(0x14) = 1 | 2 | 8;
  if (!(*common8(0x14) & 8)) return 5;
  *common16(0x16) = 0;
  *common16(0x18) = 8;
  *common32(0x20) = (uint32_t)(uintptr_t)ring_desc;
  *common32(0x24) = 0;
  *common32(0x28) = (uint32_t)(uintptr_t)&avail;
  *common32(0x2c) = 0;
  *common32(0x30) = (uint32_t)(uintptr_t)&used;
  *common32(0x34) = 0;
  uint32_t queue_notify = *common16(0x1e);
  *common16(0x1c) = 1;
  *common8(0x14) = 1 | 2 | 8 | 4;

  ring_desc[0].addr = (uint32_t)(uintptr_t)buffer;
  ring_desc[0].len = sizeof buffer;
  ring_desc[0].flags = 2;  // device writes
  avail.ring[0] = 0;
  __asm__ volatile("" ::: "memory");
  avail.idx = 1;
  *(volatile uint16_t*)(bar + notify_off + queue_notify * notify_mult) = 0;
  puts_serial("virtio-pci: request queued, waiting for the interrupt\n");
  for (;;) __asm__ volatile("sti; hlt; cli");
}
