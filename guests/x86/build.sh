#!/bin/sh
# Builds one freestanding x86 test guest: 32-bit code (entered through PVH) in an ELF64 container,
# as Linux's vmlinux is. Usage: build.sh OUT START.S GUEST.c LINKER.ld [elf32]
# With elf32 the i386 ELF32 that gcc -m32 links is kept as it is (the PVH loader takes both classes).
set -eu
out=$1 start=$2 source=$3 script=$4 class=${5:-elf64}
tmp=$out.32
gcc -m32 -march=i686 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -fno-asynchronous-unwind-tables \
  -Wall -Wextra -Os -nostdlib -static -no-pie -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
  -Wa,--noexecstack -I"$(dirname "$source")" -T "$script" -o "$tmp" "$start" "$source"
if [ "$class" = elf32 ]; then
  mv "$tmp" "$out"
else
  objcopy -O elf64-x86-64 "$tmp" "$out"
  rm -f "$tmp"
fi
