#!/usr/bin/env bash
# Light checks of guests/: script syntax, the /init command line convention (run on the host with a
# fake /proc/cmdline and stub mount/poweroff/setsid), the deb-src derivation, the cache key and the
# initramfs packer. Builds no kernel.
source tests/lib.sh
g=guests
tmp=${TEST_TMPDIR:-$(mktemp -d)}

for s in lib.sh riscv64/build riscv64/build-kernel riscv64/build-initramfs x86_64/build x86_64/build-generic-kernel; do
  check "bash -n $s" bash -n "$g/$s"
done
check "sh -n init" sh -n "$g/init"
if command -v busybox >/dev/null; then check "busybox ash -n init" busybox ash -n "$g/init"; fi

# --- /init: run it with stubs for everything that would touch the host. ---
stubs=$tmp/stubs
mkdir -p "$stubs"
for c in mount poweroff hostname setsid ip insmod; do
  printf '#!/bin/sh\necho "STUB %s $*"\n' "$c" >"$stubs/$c"
  chmod +x "$stubs/$c"
done
run_init() {  # run_init CMDLINE -> output of /init in $out
  printf '%s\n' "$1" >"$tmp/cmdline"
  out=$(VML_PROC_CMDLINE=$tmp/cmdline VML_INIT_PATH=$stubs:/usr/bin:/bin sh "$g/init" 2>&1)
}
has_line() { printf '%s\n' "$out" | grep -qxF -- "$1"; }
lacks() { ! printf '%s\n' "$out" | grep -qF -- "$1"; }

run_init "console=ttyS0 vml.cmd=\"echo 'hello world'; exit 3\" quiet"
check "quoted vml.cmd runs with spaces and single quotes" has_line "hello world"
check "quoted vml.cmd: exit status marker" has_line "VML-CMD-EXIT=3"
check "command mode prints the userspace marker" has_line "vmlaunch-guest: userspace up"
check "command mode prints the begin marker" has_line "VML-CMD-BEGIN"
check "command mode powers off" has_line "STUB poweroff -f"
check "command mode starts no shell" lacks "STUB setsid"
check "the parameter after the quoted value is not part of the command" lacks "quiet"

run_init "console=ttyS0 vml.cmd=true"
check "unquoted vml.cmd" has_line "VML-CMD-EXIT=0"
run_init "vml.cmd=\"echo first\""
check "vml.cmd as the first parameter" has_line "first"
run_init "root=/dev/vda vml.cmd=echo panic=1"
check "unquoted value ends at the first blank" lacks "panic=1"

enc=$(printf 'echo "double \\"quoted\\""; exit 5' | base64 -w0)
run_init "console=ttyS0 vml.cmd64=$enc"
check "vml.cmd64 decodes and runs" has_line 'double "quoted"'
check "vml.cmd64 exit status" has_line "VML-CMD-EXIT=5"

run_init "console=ttyS0 quiet"
check "no vml.cmd: userspace marker" has_line "vmlaunch-guest: userspace up"
check "no vml.cmd: interactive shell on the console" has_line "STUB setsid cttyhack sh -l"
check "no vml.cmd: poweroff after the shell" has_line "STUB poweroff -f"
check "no vml.cmd: no command markers" lacks "VML-CMD-"
run_init "console=ttyS0 xvml.cmd=\"echo nope\""
check "a parameter merely ending in vml.cmd is ignored" lacks "VML-CMD-"

# --- lib.sh helpers ---
source "$g/lib.sh"
etc=$tmp/etc-apt
mkdir -p "$etc/sources.list.d"
cat >"$etc/sources.list" <<'LIST'
# a comment
deb http://mirror.example/debian bookworm main contrib
deb [arch=amd64] http://mirror.example/extra bookworm main
deb-src http://mirror.example/debian bookworm main
LIST
cat >"$etc/sources.list.d/debian.sources" <<'SRC'
Types: deb
URIs: http://a.example/debian http://b.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://off.example/debian
Suites: bookworm
Components: main
Enabled: no
SRC
printf 'deb http://ignored.example/ x main\n' >"$etc/sources.list.d/other.list.disabled"
derived=$(VML_APT_ETC=$etc vml_derive_deb_src)
has_src() { printf '%s\n' "$derived" | grep -qxF -- "$1"; }
check "deb-src from one-line entries" has_src "deb-src http://mirror.example/debian bookworm main contrib"
check "deb-src keeps one-line options" has_src "deb-src [arch=amd64] http://mirror.example/extra bookworm main"
check "deb-src from deb822: every URI x suite with signed-by" \
  has_src "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://b.example/debian bookworm-updates main"
check "deb-src from deb822: 2 URIs x 2 suites + 2 one-line" test "$(printf '%s\n' "$derived" | wc -l)" -eq 6
check "disabled entries and files are skipped" test -z "$(printf '%s\n' "$derived" | grep -e off.example -e ignored.example)"

printf 'a\n' >"$tmp/in1"
k1=$(vml_hash_inputs "$tmp/in1" "v=1")
k2=$(vml_hash_inputs "$tmp/in1" "v=2")
printf 'b\n' >"$tmp/in1"
k3=$(vml_hash_inputs "$tmp/in1" "v=1")
check "cache key depends on versions" test "$k1" != "$k2"
check "cache key depends on file contents" test "$k1" != "$k3"
check "cache key is stable" test "$k3" = "$(vml_hash_inputs "$tmp/in1" "v=1")"

root=$tmp/root
vml_rootfs_skeleton "$root" "$g/init"
printf '#!/bin/sh\n' >"$tmp/fake-busybox"
printf '/bin/sh\n/sbin/poweroff\nusr/bin/setsid\n' >"$tmp/links"
vml_rootfs_busybox "$root" "$tmp/fake-busybox" "$tmp/links"
vml_make_cpio "$root" "$tmp/initramfs.cpio.gz"
listing=$(zcat "$tmp/initramfs.cpio.gz" | cpio -itv --quiet 2>/dev/null)
in_cpio() { printf '%s\n' "$listing" | grep -qE -- "$1"; }
check "initramfs has an executable /init owned by root" in_cpio '^-rwxr-xr-x +1 root +root .* init$'
check "initramfs links applets to /bin/busybox" in_cpio ' usr/bin/setsid -> /bin/busybox$'
check "initramfs has the mount points" in_cpio ' proc$'
cp "$tmp/initramfs.cpio.gz" "$tmp/first.cpio.gz"
vml_make_cpio "$root" "$tmp/initramfs.cpio.gz"
check "initramfs packing is reproducible" cmp -s "$tmp/first.cpio.gz" "$tmp/initramfs.cpio.gz"

bad=$(grep -vE '^(#.*|CONFIG_[A-Z0-9_]+=.+|)$' "$g/riscv64/kernel.config" || true)
check "kernel.config holds only CONFIG_ lines and comments" test -z "$bad"

finish
