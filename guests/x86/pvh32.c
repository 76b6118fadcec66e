// Left as a 32-bit (i386) ELF, as `gcc -m32` links it: what QEMU's microvm boots through the Xen
// PVH note. Reports the state PVH promises (32-bit protected mode, paging off, EBX -> hvm_start_info
// with a memory map and the command line) and exits with exit=N's status.
#include "lib.h"

int guest_main(const struct hvm_start_info* info) {
  if (info->magic != 0x336ec578) return 90;
  uint32_t cr0;
  __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
  if (!(cr0 & 1) || (cr0 & 0x80000000u)) return 91;  // PE set, PG clear
  uint32_t ram_kib = 0;
  const struct {
    uint64_t address, size;
    uint32_t type, reserved;
  }* map = (const void*)(uintptr_t)info->memmap_paddr;
  for (uint32_t i = 0; i < info->memmap_entries && i < 64; ++i)
    if (map[i].type == 1) ram_kib += (uint32_t)(map[i].size >> 10);
  puts_serial("pvh32: i386 ELF entered in 32-bit protected mode, start info v");
  put_dec(info->version);
  puts_serial(", ");
  put_dec(ram_kib);
  puts_serial(" KiB of RAM, cmdline \"");
  puts_serial((const char*)(uintptr_t)info->cmdline_paddr);
  puts_serial("\"\n");
  return (int)cmdline_number(info, "exit", 0);
}
