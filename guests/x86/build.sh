#!/bin/sh
# Builds one freestanding x86 test guest: 32-bit code (entered through PVH) in an ELF64 container,
# as Linux's vmlinux is, so the VMM's ELF64 loader takes it. Usage: build.sh OUT START.S GUEST.c LINKER.ld
set -eu
out=$1 start=$2 source=$3 script=$4
tmp=$out.32
gcc -m32 -march=i686 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -fno-asynchronous-unwind-tables \
  -Wall -Wextra -Os -nostdlib -static -no-pie -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
  -Wa,--noexecstack -I"$(dirname "$source")" -T "$script" -o "$tmp" "$start" "$source"
objcopy -O elf64-x86-64 "$tmp" "$out"
rm -f "$tmp"
