#!/bin/sh
# Builds the 64-bit test guest (Linux boot protocol entry, like a vmlinux). Usage: build64.sh OUT START.S GUEST.c LINKER.ld
set -eu
out=$1 start=$2 source=$3 script=$4
gcc -m64 -mgeneral-regs-only -mno-red-zone -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
  -fno-asynchronous-unwind-tables -Wall -Wextra -Os -nostdlib -static -no-pie -Wl,--build-id=none \
  -Wl,--no-warn-rwx-segments -Wa,--noexecstack -I"$(dirname "$source")" -T "$script" -o "$out" "$start" "$source"
