#!/bin/sh
# Builds a one-sector disk image (512 bytes) from bootsector.S. Usage: bootsector.sh OUT SOURCE MARKER STATUS
set -eu
out=$1 source=$2 marker=$3 status=$4
gcc -m32 -c -nostdlib -DMARKER="\"$marker\"" -DSTATUS="$status" -Wa,--noexecstack -o "$out.o" "$source"
ld -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o "$out" "$out.o"
rm -f "$out.o"
size=$(wc -c <"$out")
[ "$size" -eq 512 ] || { echo "bootsector.sh: $out is $size bytes, not 512" >&2; exit 1; }
