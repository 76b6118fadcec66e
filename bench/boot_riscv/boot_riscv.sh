#!/usr/bin/env bash
# Boot benchmark (issue 4): the guests/ riscv64 Linux kernel + busybox initramfs behind Debian's
# OpenSBI fw_jump, 2 harts, 256 MiB, booting to the userspace marker ("vmlaunch-guest: userspace
# up"), running `true` and powering off. vmlaunch (`up`, jit accelerator with tier interp, auto
# and llvm) and qemu-system-riscv64 -M virt (TCG) boot the same files, alternating, RUNS times
# each (default 3), in one run. TIERS (default "interp auto llvm") picks the jit tiers (TIER@N: with
# hot threshold N), HARTS the harts (default 2). BASE=VMLAUNCH also runs every tier on that build
# (rows base-TIER), alternating with this one, for before/after comparisons under the same load.
# Reports medians of wall time to the marker, wall time to exit, and CPU time (user+sys) of the
# process, plus the ratios vmlaunch / QEMU.
#   BZ=name tools/dev-bazel run //bench/boot_riscv     (or: bench/boot_riscv/boot_riscv.sh VMLAUNCH)
set -euo pipefail
runs=${RUNS:-3}
# shellcheck source=bench/guest.sh
source "$(dirname "$(readlink -f "$0")")/../guest.sh"
bench_locate "boot_riscv" "${1:-}"
command -v qemu-system-riscv64 >/dev/null || { echo "boot_riscv: install qemu-system-misc" >&2; exit 1; }
fw=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin
cmdline='console=ttyS0 quiet vml.cmd=true'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tiers=${TIERS:-interp auto llvm}
for tier in $tiers; do
  # A tier may name its hot threshold: auto@16384.
  guest_yaml boot-bench "${HARTS:-2}" "$(jit_accel "$tier")" "$cmdline" >"$tmp/$tier.yaml"
done
# BASE=VMLAUNCH: also runs each tier on that build (named base-TIER), alternating with this one
# (before/after comparisons in one run, under the same load).
names=""
for tier in $tiers; do
  names+=" $tier"
  if [ -n "${BASE:-}" ]; then names+=" base-$tier"; cp "$tmp/$tier.yaml" "$tmp/base-$tier.yaml"; fi
done
engine() { if [ "${1#base-}" != "$1" ]; then echo "$BASE"; else echo "$vml"; fi; }

# run_one NAME CMD... -> appends "marker_s exit_s cpu_s" to $tmp/NAME.times
run_one() {
  local name=$1 out=$tmp/$1.out
  shift
  rm -f "$out" "$out.cpu"  # the marker poll must never see the previous run's output
  local start=$EPOCHREALTIME marker=""
  ( TIMEFORMAT='%U %S'; time "$@" </dev/null >"$out" 2>&1 ) 2>"$out.cpu" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    [ -z "$marker" ] && grep -aqs "vmlaunch-guest: userspace up" "$out" && marker=$EPOCHREALTIME
    sleep 0.01
  done
  wait "$pid" || { echo "boot_riscv: $name failed:" >&2; tail -n 20 "$out" >&2; exit 1; }
  local end=$EPOCHREALTIME
  [ -n "$marker" ] || { echo "boot_riscv: $name never reached userspace" >&2; tail -n 20 "$out" >&2; exit 1; }
  grep -aq "VML-CMD-EXIT=0" "$out" || { echo "boot_riscv: $name: command did not run" >&2; exit 1; }
  read -r user sys <"$out.cpu"
  awk -v s="$start" -v m="$marker" -v e="$end" -v u="$user" -v y="$sys" \
    'BEGIN { printf "%.3f %.3f %.3f\n", m - s, e - s, u + y }' >>"$tmp/$name.times"
}

for _ in $(seq "$runs"); do
  for tier in $names; do
    run_one "$tier" "$(engine "$tier")" up --stats "$tmp/$tier.yaml"
    grep -a "^jit: tier" "$tmp/$tier.out" >>"$tmp/$tier.stats" || true
  done
  run_one qemu qemu-system-riscv64 -M virt -smp "${HARTS:-2}" -m 256M -nographic -monitor none -bios "$fw" \
    -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
done

median() {  # median of column $2 of file $1
  cut -d' ' -f"$2" "$1" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo "boot_riscv: $runs runs each, medians (guests/ Linux + busybox, OpenSBI fw_jump, ${HARTS:-2} harts, 256 MiB)"
printf '| engine | to userspace marker (s) | to exit (s) | CPU user+sys (s) |\n|---|---|---|---|\n'
for name in $names qemu; do
  label=$([ "$name" = qemu ] && echo "qemu-system-riscv64 -M virt (TCG)" || echo "vmlaunch up (jit, tier $name)")
  printf '| %s | %s | %s | %s |\n' "$label" "$(median "$tmp/$name.times" 1)" "$(median "$tmp/$name.times" 2)" \
    "$(median "$tmp/$name.times" 3)"
done
ratio() { awk -v a="$(median "$tmp/$2.times" "$1")" -v b="$(median "$tmp/qemu.times" "$1")" 'BEGIN { printf "%.2f", a / b }'; }
for tier in $names; do
  printf '| ratio tier %s / qemu | %s | %s | %s |\n' "$tier" "$(ratio 1 "$tier")" "$(ratio 2 "$tier")" "$(ratio 3 "$tier")"
done
echo "per run (marker exit cpu):"
for name in $names qemu; do echo "  $name: $(tr '\n' ';' <"$tmp/$name.times")"; done
for tier in $names; do
  if [ -s "$tmp/$tier.stats" ]; then echo "  $tier --stats (last run): $(tail -n 1 "$tmp/$tier.stats")"; fi
done
