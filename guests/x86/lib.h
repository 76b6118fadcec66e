// What every freestanding x86 test guest needs: port I/O, the COM1 16550, hvm_start_info, exit.
#pragma once

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t* a, uint32_t* b, uint32_t* c, uint32_t* d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (uint64_t)hi << 32 | lo;
}

// Points interrupt `vector` at `handler` through a 32-bit interrupt gate (present, ring 0, the
// flat code segment 0x10 that the VMM's PVH entry sets up) in this guest's own IDT, and loads that IDT.
static inline void idt_set_gate32(uint8_t vector, void (*handler)(void)) {
  static struct {
    uint16_t offset_low, selector;
    uint8_t zero, type;
    uint16_t offset_high;
  } __attribute__((packed)) idt[256];
  uint32_t address = (uint32_t)(uintptr_t)handler;
  idt[vector].offset_low = (uint16_t)address;
  idt[vector].selector = 0x10;
  idt[vector].type = 0x8e;
  idt[vector].offset_high = (uint16_t)(address >> 16);
  struct {
    uint16_t limit;
    uint32_t base;
  } __attribute__((packed)) idtr = {sizeof idt - 1, (uint32_t)(uintptr_t)idt};
  __asm__ volatile("lidt %0" ::"m"(idtr));
}

#if defined(__x86_64__)
// The same for 64-bit guests: a 64-bit interrupt gate (IRETQ frame) on the flat code segment 0x10.
static inline void idt_set_gate64(uint8_t vector, void (*handler)(void)) {
  static struct {
    uint16_t offset_low, selector;
    uint8_t ist, type;
    uint16_t offset_mid;
    uint32_t offset_high, reserved;
  } __attribute__((packed)) idt[256];
  uint64_t address = (uint64_t)(uintptr_t)handler;
  idt[vector].offset_low = (uint16_t)address;
  idt[vector].selector = 0x10;
  idt[vector].type = 0x8e;
  idt[vector].offset_mid = (uint16_t)(address >> 16);
  idt[vector].offset_high = (uint32_t)(address >> 32);
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) idtr = {sizeof idt - 1, (uint64_t)(uintptr_t)idt};
  __asm__ volatile("lidt %0" ::"m"(idtr));
}
#endif

#define COM1 0x3f8

static inline void putc_serial(char c) {
  while (!(inb(COM1 + 5) & 0x20)) {
  }
  outb(COM1, (uint8_t)c);
}
static inline void puts_serial(const char* s) {
  for (; *s; ++s) {
    if (*s == '\n') putc_serial('\r');
    putc_serial(*s);
  }
}
static inline int getc_serial(void) {
  while (!(inb(COM1 + 5) & 0x01)) {
  }
  return inb(COM1);
}
static inline void put_hex(uint32_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) putc_serial("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}
static inline void put_dec(uint32_t v) {
  char buf[12];
  int n = 0;
  do {
    buf[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) putc_serial(buf[--n]);
}

struct hvm_start_info {
  uint32_t magic, version, flags, nr_modules;
  uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
  uint32_t memmap_entries, reserved;
};

// The value of "key=N" on the command line, or `fallback`.
static inline uint32_t cmdline_number(const struct hvm_start_info* info, const char* key, uint32_t fallback) {
  const char* s = (const char*)(uintptr_t)info->cmdline_paddr;
  for (; s && *s; ++s) {
    const char* k = key;
    const char* p = s;
    while (*k && *p == *k) ++k, ++p;
    if (*k == 0 && *p == '=') {
      uint32_t v = 0;
      for (++p; *p >= '0' && *p <= '9'; ++p) v = v * 10 + (uint32_t)(*p - '0');
      return v;
    }
  }
  return fallback;
}
