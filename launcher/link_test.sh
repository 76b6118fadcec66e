#!/usr/bin/env bash
# vmlaunch's shared-object dependencies: glibc only. Every shared object a VM process maps costs
# resident memory (issue 5's memory goal, docs/benchmarks.md): the C++ runtime and the small
# libraries are linked statically (third_party/BUILD), and libslirp (with glib and pcre2) is loaded
# with dlopen only when a `user` net backend is created (backends/net/slirp_library.h).
source tests/lib.sh
bin=launcher/vmlaunch

needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
only_glibc() {
  local lib ok=0
  for lib in $needed; do
    case $lib in
      libc.so.6 | libm.so.6 | ld-linux-x86-64.so.*) ;;
      *) echo "vmlaunch needs $lib (expected glibc only)"; ok=1 ;;
    esac
  done
  return $ok
}
check "vmlaunch links no shared object but glibc's" only_glibc
check "vmlaunch with the static C++ runtime runs (version)" "$bin" version
# yaml-cpp reports a syntax error by throwing: unwinding through the static runtime must work.
bad=$(mktemp "${TEST_TMPDIR:-/tmp}/bad-XXXXXX.yaml")
echo 'name: [' >"$bad"
syntax_error_is_exit_2() {
  "$bin" validate "$bad" 2>"$bad.err"
  [ $? -eq 2 ] && grep -q "YAML syntax error" "$bad.err"
}
check "a YAML syntax error (a C++ exception in yaml-cpp) is exit 2, not a crash" syntax_error_is_exit_2
rm -f "$bad" "$bad.err"
finish
