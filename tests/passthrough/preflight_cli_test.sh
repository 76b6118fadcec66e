#!/usr/bin/env bash
# The preflight of passthrough entries through the CLI, with what any host reproduces: a device no
# host has, and RLIMIT_MEMLOCK below guest RAM for a process without CAP_IPC_LOCK. The messages
# that need a device, an IOMMU and VFIO are checked in the nested host (passthrough_test.sh) and on
# a copy of sysfs (//passthrough:preflight_test).
# Regenerate after an intended message change: tests/passthrough/preflight_cli_test.sh --update VMLAUNCH
set -uo pipefail
if [ "${1:-}" = "--update" ]; then
  cd "$(dirname "$0")/../.."
  vmlaunch=$2 update=1
else
  source tests/lib.sh
  vmlaunch=$PWD/launcher/vmlaunch update=0
fi
PYTHON=$(command -v python3 || echo /usr/bin/python3)

# Runs vmlaunch without CAP_IPC_LOCK and with RLIMIT_MEMLOCK at 1 MiB (as nobody when root).
# nobody may not reach this checkout (a clone in a 0700 directory, /root): it runs a copy of the
# binary on a copy of the file, at the same relative path, from a directory anyone can read.
unprivileged() {
  if [ "$(id -u)" = 0 ]; then
    local shared
    shared=$(mktemp -d /tmp/vml-preflight.XXXXXX)
    chmod 755 "$shared"
    mkdir -p "$shared/tests/passthrough"
    cp "$1" "$shared/vmlaunch"
    cp tests/passthrough/absent.yaml "$shared/tests/passthrough/"
    chmod -R a+rX "$shared"
    shift
    (cd "$shared" && ulimit -l 1024 && setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all ./vmlaunch "$@")
    local status=$?
    rm -rf "$shared"
    return $status
  else
    (ulimit -l 1024 && "$@")
  fi
}

# A machine that holds the entry's device, as its VMM leaves its state directory: machine.json
# (pid, this boot's id, its passthrough entries) and run.lock held for the VMM's life, here by a
# flock process standing in for the VMM (no host here has a device a real VMM could hold; the
# nested host runs the real one, passthrough_test.sh). The address is spelled in upper case: the
# check compares functions, not spellings.
held_state=$(mktemp -d /tmp/vml-held.XXXXXX)
mkdir "$held_state/gpu-box"
# One process holds the lock and is the record's pid, as the VMM (exec keeps the pid and the fd).
(exec 9>"$held_state/gpu-box/run.lock" && flock 9 && exec sleep 3600) &
holder=$!
for _ in $(seq 100); do flock -n "$held_state/gpu-box/run.lock" true || break; sleep 0.1; done
cat >"$held_state/gpu-box/machine.json" <<JSON
{"name": "gpu-box", "pid": $holder, "boot_id": "$(cat /proc/sys/kernel/random/boot_id)",
 "started_at": $(date +%s), "config": "/nonexistent/gpu-box.yaml", "accelerator": "kvm", "vcpus": 1,
 "memory": 33554432, "passthrough": [{"entry": "gpu", "driver": "vfio-pci", "host": "FFFF:FF:1F.7"}]}
JSON
stop_holder() {
  kill "$holder" 2>/dev/null
  # From run_case's subshell it is no child to wait for: until its lock is gone, then.
  for _ in $(seq 100); do flock -n "$held_state/gpu-box/run.lock" true && return 0; sleep 0.1; done
  return 1
}
trap 'stop_holder; rm -rf "$held_state"' EXIT
held() { VMLAUNCH_STATE_DIR=$held_state "$@"; }

# name -> the exact stderr and exit status, compared with golden/name.expected
run_case() {
  case "$1" in
    absent_validate) "$vmlaunch" validate tests/passthrough/absent.yaml ;;
    absent_validate_host) "$vmlaunch" validate --host tests/passthrough/absent.yaml ;;
    absent_up) "$vmlaunch" up tests/passthrough/absent.yaml ;;
    memlock_unprivileged) unprivileged "$vmlaunch" validate --host tests/passthrough/absent.yaml ;;
    # The device is in use by gpu-box: named, with its pid and entry.
    held_validate_host) held "$vmlaunch" validate --host tests/passthrough/absent.yaml ;;
    held_up) held "$vmlaunch" up tests/passthrough/absent.yaml ;;
    held_up_detached) held "$vmlaunch" up -d --name other tests/passthrough/absent.yaml ;;
    # `up -d` of gpu-box itself: its own device is no conflict (a second `up -d` of a running
    # machine is answered as such, after the preflight).
    held_up_detached_same_name) held "$vmlaunch" up -d --name gpu-box tests/passthrough/absent.yaml ;;
    # Its VMM gone (the lock dropped with it): the device is free again.
    held_vmm_gone) stop_holder && held "$vmlaunch" validate --host tests/passthrough/absent.yaml ;;
    # usb-host entries: a vendor:product with a serial and a bus-port path no host has.
    usb_absent_validate) "$vmlaunch" validate tests/passthrough/usb_absent.yaml ;;
    usb_absent_validate_host) "$vmlaunch" validate --host tests/passthrough/usb_absent.yaml ;;
    usb_absent_up) "$vmlaunch" up tests/passthrough/usb_absent.yaml ;;
  esac
}
cases="absent_validate absent_validate_host absent_up memlock_unprivileged held_validate_host held_up"
cases+=" held_up_detached held_up_detached_same_name held_vmm_gone"
cases+=" usb_absent_validate usb_absent_validate_host usb_absent_up"

golden() {
  local actual
  actual=$({ run_case "$1" 2>&1 >/dev/null; echo "[exit $?]"; } | sed "s/(pid $holder)/(pid @PID@)/")
  if [ "$update" = 1 ]; then
    printf '%s\n' "$actual" >"tests/passthrough/golden/$1.expected"
    return 0
  fi
  if [ "$actual" != "$(cat "tests/passthrough/golden/$1.expected")" ]; then
    diff -u "tests/passthrough/golden/$1.expected" <(echo "$actual") | sed 's/^/    /'
    return 1
  fi
}
if [ "$update" = 1 ]; then
  mkdir -p tests/passthrough/golden
  for c in $cases; do golden "$c"; done
  exit 0
fi

for c in $cases; do
  if [ "$c" = memlock_unprivileged ] && [ "$(id -u)" = 0 ] && ! command -v setpriv >/dev/null; then
    skip "$c" "root without setpriv (util-linux) cannot drop CAP_IPC_LOCK"
    continue
  fi
  check "$c" golden "$c"
done

# `host devices --json` lists exactly the functions sysfs has, with their ids.
host_devices_json_matches_sysfs() {
  "$vmlaunch" host devices --json >"$TEST_TMPDIR/devices.json" || return 1
  "$PYTHON" - "$TEST_TMPDIR/devices.json" <<'PY'
import json, os, sys
listed = json.load(open(sys.argv[1]))
base = "/sys/bus/pci/devices"
want = sorted(os.listdir(base)) if os.path.isdir(base) else []
got = [d["bdf"] for d in listed["pci"]]
assert got == want, (got, want)
for d in listed["pci"]:
    vendor = open(os.path.join(base, d["bdf"], "vendor")).read().strip()
    assert "0x" + d["vendor"] == vendor, (d, vendor)
    link = os.path.join(base, d["bdf"], "driver")
    driver = os.path.basename(os.readlink(link)) if os.path.islink(link) else None
    assert d["driver"] == driver, (d, driver)
assert listed["iommu"] == bool(os.path.isdir("/sys/kernel/iommu_groups") and os.listdir("/sys/kernel/iommu_groups"))
assert isinstance(listed["usb"], list)
print("    %d PCI functions, %d USB devices" % (len(got), len(listed["usb"])))
PY
}
check host_devices_json_matches_sysfs host_devices_json_matches_sysfs
check host_devices_text "$vmlaunch" host devices
check host_devices_help bash -c "'$vmlaunch' host devices --help | grep -q 'IOMMU group'"
check validate_help_names_host bash -c "'$vmlaunch' validate --help | grep -q -- '--host'"
finish
