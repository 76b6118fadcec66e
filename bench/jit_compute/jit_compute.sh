#!/usr/bin/env bash
# Compute benchmark (issue 11): programs run inside the guests/ riscv64 Linux guest (busybox
# initramfs, 1 hart, 256 MiB), timed in the guest (/proc/uptime around each program, 10 ms
# resolution), on vmlaunch (`up`, jit accelerator, each tier in TIERS, default "interp auto") and on
# qemu-system-riscv64 -M virt (TCG) with the same firmware, kernel, initramfs and command, RUNS
# times each (default 3), alternating. The programs are busybox's own (compiled C, static):
#   sha256    sha256sum of 8 MiB (integer hashing: rotates, adds, table-free)
#   md5       md5sum of 8 MiB
#   crc       cksum (CRC-32, table lookups) of 8 MiB
#   gzip      gzip -6 of a 1.3 MB text file (seq 1 200000: match search, hashing, branches)
#   sort      sort of the same 200000 lines (string compares, pointer chasing, malloc)
#   awk       a 200000-iteration awk loop with FP arithmetic (an interpreter: calls, FP)
# Prints per program the median seconds and the throughput ratio QEMU time / our time (> 1: we are
# faster), and the geomean of those ratios. BASE=VMLAUNCH also runs every tier on that build (rows
# base-TIER), alternating with this one, for before/after comparisons under the same load.
#   BZ=name tools/dev-bazel run //bench/jit_compute   (or: bench/jit_compute/jit_compute.sh VMLAUNCH)
set -euo pipefail
runs=${RUNS:-3}
# shellcheck source=bench/guest.sh
source "$(dirname "$(readlink -f "$0")")/../guest.sh"
bench_locate "jit_compute" "${1:-}"
command -v qemu-system-riscv64 >/dev/null || { echo "jit_compute: install qemu-system-misc" >&2; exit 1; }
fw=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin

# The guest side: each program's output goes to /dev/null except a checksum line, so a fast wrong
# answer shows (the checksums are compared across engines below).
read -r -d '' guest_cmd <<'SH' || true
t() { n=$1; shift; read a x </proc/uptime; r=$(sh -c "$*" | md5sum); read b x </proc/uptime;
 echo "VML-T $n $a $b ${r%% *}"; }
seq 1 200000 >/tmp/n
t sha256 'dd if=/dev/zero bs=1M count=8 2>/dev/null | sha256sum'
t md5 'dd if=/dev/zero bs=1M count=8 2>/dev/null | md5sum'
t crc 'dd if=/dev/zero bs=1M count=8 2>/dev/null | cksum'
t gzip 'gzip -6 -c /tmp/n'
t sort 'sort /tmp/n'
t awk 'awk "BEGIN{s=0;for(i=0;i<200000;i++)s+=(i*i)%7+i/3;print s}"'
SH
cmdline="console=ttyS0 quiet vml.cmd64=$(printf '%s' "$guest_cmd" | base64 -w0)"
programs="sha256 md5 crc gzip sort awk"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tiers=${TIERS:-interp auto}
for tier in $tiers; do
  guest_yaml compute-bench "1" "$(jit_accel "$tier")" "$cmdline" >"$tmp/$tier.yaml"
done
# BASE=VMLAUNCH: also runs each tier on that build (named base-TIER), alternating with this one
# (before/after comparisons in one run, under the same load).
names=""
for tier in $tiers; do
  names+=" $tier"
  if [ -n "${BASE:-}" ]; then names+=" base-$tier"; cp "$tmp/$tier.yaml" "$tmp/base-$tier.yaml"; fi
done
engine() { if [ "${1#base-}" != "$1" ]; then echo "$BASE"; else echo "$vml"; fi; }

# run_one NAME CMD...: appends "program seconds checksum" lines to $tmp/NAME.times
run_one() {
  local name=$1 out=$tmp/$1.out
  shift
  "$@" </dev/null >"$out" 2>&1 || { echo "jit_compute: $name failed:" >&2; tail -n 20 "$out" >&2; exit 1; }
  grep -aq "VML-CMD-EXIT=0" "$out" || { echo "jit_compute: $name: command failed" >&2; tail -n 20 "$out" >&2; exit 1; }
  tr -d '\r' <"$out" | awk '$1 == "VML-T" { printf "%s %.2f %s\n", $2, $4 - $3, $5 }' >>"$tmp/$name.times"
}

for _ in $(seq "$runs"); do
  for tier in $names; do
    run_one "$tier" "$(engine "$tier")" up --stats "$tmp/$tier.yaml"
    grep -a "^jit: tier" "$tmp/$tier.out" >"$tmp/$tier.stats" || true
  done
  run_one qemu qemu-system-riscv64 -M virt -smp 1 -m 256M -nographic -monitor none -bios "$fw" \
    -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
done

# Every engine must compute the same thing.
for name in $names; do
  if ! diff <(awk '{ print $1, $3 }' "$tmp/$name.times" | sort -u) <(awk '{ print $1, $3 }' "$tmp/qemu.times" | sort -u) >/dev/null; then
    echo "jit_compute: $name's outputs differ from QEMU's:" >&2
    diff <(awk '{ print $1, $3 }' "$tmp/$name.times" | sort -u) <(awk '{ print $1, $3 }' "$tmp/qemu.times" | sort -u) >&2
    exit 1
  fi
done

median() {  # median of the seconds of program $2 in file $1
  awk -v p="$2" '$1 == p { print $2 }' "$1" | sort -n |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo "jit_compute: $runs runs each, median seconds in the guest (guests/ Linux + busybox, 1 hart, 256 MiB)"
header="| program |"
sep="|---|"
for name in $names qemu; do
  header+=" $([ "$name" = qemu ] && echo "qemu TCG" || echo "jit $name") (s) |"
  sep+="---|"
done
for tier in $names; do header+=" qemu / $tier |"; sep+="---|"; done
echo "$header"
echo "$sep"
declare -A logsum
for p in $programs; do
  line="| $p |"
  for name in $names qemu; do line+=" $(median "$tmp/$name.times" "$p") |"; done
  q=$(median "$tmp/qemu.times" "$p")
  for tier in $names; do
    r=$(awk -v a="$(median "$tmp/$tier.times" "$p")" -v b="$q" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
    line+=" $r |"
    logsum[$tier]=$(awk -v s="${logsum[$tier]:-0}" -v r="$r" 'BEGIN { printf "%.6f", s + (r > 0 ? log(r) : 0) }')
  done
  echo "$line"
done
line="| geomean qemu / ours |"
for name in $names qemu; do line+=" |"; done
n=$(echo $programs | wc -w)
for tier in $names; do line+=" $(awk -v s="${logsum[$tier]}" -v n="$n" 'BEGIN { printf "%.2f", exp(s / n) }') |"; done
echo "$line"
for tier in $names; do
  if [ -s "$tmp/$tier.stats" ]; then echo "  $tier --stats (last run): $(cat "$tmp/$tier.stats")"; fi
done
