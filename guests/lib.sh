# Shared helpers for the guest build scripts (sourced, not executed).
# Every script that sources this runs with `set -euo pipefail`.

# The guest cache lives in the invoking user's home even when Bazel runs a test with HOME set to the
# test's private tmpdir: the kernel takes minutes to build and must be shared by every test and run.
vml_cache_root() {
  if [ -n "${VMLAUNCH_CACHE_DIR:-}" ]; then
    printf '%s\n' "$VMLAUNCH_CACHE_DIR"
    return
  fi
  local home=${HOME:-}
  if [ -n "${TEST_TMPDIR:-}" ] || [ -z "$home" ]; then
    home=$(getent passwd "$(id -u)" | cut -d: -f6)
  fi
  printf '%s\n' "$home/.cache/vmlaunch"
}

VML_LOG_TAG=${VML_LOG_TAG:-guests}
vml_log() { printf '[%s] %s\n' "$VML_LOG_TAG" "$*" >&2; }
vml_die() {
  printf '[%s] ERROR: %s\n' "$VML_LOG_TAG" "$*" >&2
  exit 1
}

# Runs a long, noisy build step with its output in LOGFILE and a heartbeat line each minute (these
# steps take minutes); on failure shows the log's tail so the cause is visible without hunting.
# The step runs in the foreground so Ctrl-C reaches it; the heartbeat ends with the step or with us.
vml_run_logged() {
  local what=$1 logfile=$2
  shift 2
  local start=$SECONDS rc=0 hb
  (
    parent=$$ t=0
    while sleep 5; do
      kill -0 "$parent" 2>/dev/null || exit 0
      t=$((t + 5))
      [ $((t % 60)) -eq 0 ] && vml_log "  ... $what: ${t}s, at: $(tail -n 1 "$logfile" | cut -c1-100)"
    done
  ) &
  hb=$!
  "$@" >>"$logfile" 2>&1 || rc=$?
  kill "$hb" 2>/dev/null
  wait "$hb" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    printf '[%s] ERROR: %s failed (exit %s); last lines of %s:\n' "$VML_LOG_TAG" "$what" "$rc" "$logfile" >&2
    tail -n 40 "$logfile" >&2
    exit 1
  fi
  vml_log "  $what done in $((SECONDS - start))s"
}

vml_pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# Installs the Debian packages that are not installed yet (nothing happens when all are present, so a
# cached run needs neither root nor the network).
vml_need_packages() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  vml_log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" \
    >&2; then
    # The package lists may be stale on a fresh machine.
    "${sudo[@]}" apt-get update >&2 || true
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
      vml_die "could not install ${missing[*]} (apt-get install failed)"
  fi
}

# Hash of the given files' names and contents plus extra "name=value" strings; identifies a build.
vml_hash_inputs() {
  local f
  {
    for f in "$@"; do
      case "$f" in
        *=*) printf 'value %s\n' "$f" ;;
        *)
          [ -f "$f" ] || vml_die "missing build input $f"
          printf 'file %s %s\n' "$(basename "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)"
          ;;
      esac
    done
  } | sha256sum | cut -c1-16
}

# Points LINK at TARGET atomically (readers never see a missing or half-written link).
vml_link() {
  local target=$1 link=$2
  ln -sfn "$target" "$link.tmp.$$"
  mv -fT "$link.tmp.$$" "$link"
}

# Takes an exclusive lock for the rest of the script (fd 9); concurrent callers wait their turn and
# then find the result cached.
vml_lock() {
  local lockfile=$1
  mkdir -p "$(dirname "$lockfile")"
  exec 9>"$lockfile"
  if ! flock -n 9; then
    vml_log "another build holds $lockfile; waiting"
    flock 9
  fi
}

# --- Private apt state: fetch Debian source packages without touching the host's apt setup. ---

# Prints one-line "deb-src" entries for every enabled "deb" entry of the host's apt sources, in both
# the one-line (.list) and the deb822 (.sources) formats. Only the output is written, into our cache.
vml_derive_deb_src() {
  local etc=${VML_APT_ETC:-/etc/apt} f
  for f in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -n -E 's/^[[:space:]]*deb[[:space:]]+/deb-src /p' "$f"
  done
  for f in "$etc"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush(   i, j, n, m, u, s, opt) {
        if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no" && uris != "" && suites != "") {
          opt = ""
          if (signed ~ /^\//) opt = " [signed-by=" signed "]"
          n = split(uris, u, " ")
          m = split(suites, s, " ")
          for (i = 1; i <= n; i++)
            for (j = 1; j <= m; j++) print "deb-src" opt " " u[i] " " s[j] " " comps
        }
        types = uris = suites = comps = signed = enabled = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]/ { next }  # continuation line (e.g. an inline key block)
      {
        key = tolower($1); sub(/:$/, "", key)
        val = $0; sub(/^[^:]*:[[:space:]]*/, "", val); sub(/[[:space:]]+$/, "", val)
        if (key == "types") types = val
        else if (key == "uris") uris = val
        else if (key == "suites") suites = val
        else if (key == "components") comps = val
        else if (key == "signed-by") signed = val
        else if (key == "enabled") enabled = val
      }
      END { flush() }
    ' "$f"
  done
}

# apt-get with a private sources list, state and cache under DIR (created on first use).
vml_private_apt() {
  local dir=$1
  shift
  apt-get -q \
    -o Dir::Etc::SourceList="$dir/sources.list" \
    -o Dir::Etc::SourceParts="$dir/sources.list.d" \
    -o Dir::State="$dir/state" \
    -o Dir::State::Lists="$dir/state/lists" \
    -o Dir::Cache="$dir/cache" \
    -o APT::Sandbox::User="$(id -un)" \
    "$@"
}

vml_private_apt_init() {
  local dir=$1
  mkdir -p "$dir/sources.list.d" "$dir/state/lists/partial" "$dir/cache/archives/partial"
  vml_derive_deb_src >"$dir/sources.list.new"
  [ -s "$dir/sources.list.new" ] || vml_die "found no 'deb' entries in /etc/apt to derive deb-src entries from"
  mv -f "$dir/sources.list.new" "$dir/sources.list"
  vml_log "updating private apt source index in $dir"
  # A third-party repository without sources makes update complain; what matters is the package below.
  vml_private_apt "$dir" update >"$dir/update.log" 2>&1 || vml_log "apt-get update reported errors (see $dir/update.log)"
}

# --- initramfs assembly (shared by the riscv64 and x86_64 guests) ---

# Populates ROOT with the directory skeleton, /init (from INIT) and a few /etc files.
vml_rootfs_skeleton() {
  local root=$1 init=$2 d
  for d in bin sbin usr/bin usr/sbin proc sys dev tmp run mnt root etc/vmlaunch lib; do mkdir -p "$root/$d"; done
  install -m 0755 "$init" "$root/init"
  printf 'root::0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  # A fixed prompt, so tests driving the interactive shell can wait for it.
  printf "export PS1='vmlaunch:\\\\w# '\n" >"$root/etc/profile"
  chmod 1777 "$root/tmp"
}

# Installs the busybox binary BB as /bin/busybox with a symlink per applet; LINKS lists the applets'
# absolute paths, one per line (busybox.links from a build, or `busybox --list-full` with a leading /).
vml_rootfs_busybox() {
  local root=$1 bb=$2 links=$3 path
  install -m 0755 "$bb" "$root/bin/busybox"
  while IFS= read -r path; do
    path=/${path#/}
    [ "$path" = /bin/busybox ] || [ "$path" = / ] && continue
    mkdir -p "$root$(dirname "$path")"
    # Absolute links point into the guest, so test the links themselves (-L), not their targets.
    [ -L "$root$path" ] || [ -e "$root$path" ] || ln -s /bin/busybox "$root$path"
  done <"$links"
  [ -L "$root/bin/sh" ] || vml_die "busybox applet list $links has no /bin/sh"
}

# Packs ROOT into a gzip-compressed newc cpio archive OUT, owned by root, with fixed timestamps so the
# same inputs give the same bytes. Needs no root privileges (no device nodes: /init uses devtmpfs).
vml_make_cpio() {
  local root=$1 out=$2
  find "$root" -exec touch -h -d @0 {} +
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
}
