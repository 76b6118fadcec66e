#!/usr/bin/env bash
# CLI tests for `vmlaunch validate` and `vmlaunch schema`:
# - every tests/config/{invalid,warnings}/FILE has FILE.expected: the exact stderr of
#   `vmlaunch validate FILE`, then a last line "[exit N]";
# - every examples/* file validates (exit 0, no errors);
# - unreadable files exit 1, --json prints a JSON array, --help works.
# Regenerate the goldens after an intended message change (then review the diff):
#   tests/config/cli_golden_test.sh --update /tmp/bz-NAME/bin/launcher/vmlaunch
set -uo pipefail
if [ "${1:-}" = "--update" ]; then
  cd "$(dirname "$0")/../.."
  for input in tests/config/invalid/* tests/config/warnings/*; do
    case "$input" in *.expected) continue ;; esac
    { env -u VMLAUNCH_TEST_UNSET "$2" validate "$input" 2>&1 >/dev/null; echo "[exit $?]"; } >"$input.expected"
  done
  exit 0
fi

source tests/lib.sh
vmlaunch=launcher/vmlaunch
unset VMLAUNCH_TEST_UNSET
export HOME=${HOME:-/nonexistent-home}

golden() {
  local input=$1 actual
  actual=$({ "$vmlaunch" validate "$input" 2>&1 >/dev/null; echo "[exit $?]"; })
  if [ "$actual" != "$(cat "$input.expected")" ]; then
    diff -u "$input.expected" <(echo "$actual") | sed 's/^/    /'
    return 1
  fi
}

for input in tests/config/invalid/* tests/config/warnings/*; do
  case "$input" in *.expected) continue ;; esac
  if [ ! -f "$input.expected" ]; then
    check "$input has a .expected file" false
    continue
  fi
  check "golden $input" golden "$input"
done

valid() {
  local errors
  errors=$("$vmlaunch" validate "$1" 2>&1 >/dev/null) || { echo "$errors"; return 1; }
  ! grep -v ': warning: ' <<<"$errors" | grep -q .
}
for example in examples/*; do
  case "$example" in */BUILD) continue ;; esac
  check "example $example is valid" valid "$example"
done

unreadable() {
  "$vmlaunch" validate /nonexistent/machine.yaml 2>/dev/null
  [ $? -eq 1 ]
}
check "an unreadable file exits 1" unreadable

unreadable_wins() {
  "$vmlaunch" validate tests/config/invalid/bad-size.yaml /nonexistent/machine.yaml 2>/dev/null
  [ $? -eq 1 ]
}
check "unreadable outranks invalid over several files" unreadable_wins

several_valid() {
  "$vmlaunch" validate examples/riscv64-linux.yaml examples/hello-riscv.toml 2>/dev/null
}
check "several valid files exit 0" several_valid

json_output() {
  local out
  out=$("$vmlaunch" validate --json tests/config/invalid/duplicate-id.yaml 2>/dev/null)
  [ $? -eq 2 ] || return 1
  grep -q '"severity": "error"' <<<"$out" && grep -q '"path": "devices\[1\].id"' <<<"$out" &&
    grep -q '"line": 7' <<<"$out" && [ "${out:0:1}" = "[" ]
}
check "--json prints the diagnostics on stdout" json_output

json_empty() {
  [ "$("$vmlaunch" validate --json examples/riscv64-linux.yaml 2>/dev/null)" = "[]" ]
}
check "--json prints [] for a valid file" json_empty

help_works() {
  "$vmlaunch" validate --help | grep -q -- '--json' && "$vmlaunch" schema --help | grep -q 'JSON Schema'
}
check "--help on validate and schema" help_works

schema_is_the_checked_in_file() {
  cmp -s <("$vmlaunch" schema) schema/vmlaunch.schema.json
}
check "vmlaunch schema prints schema/vmlaunch.schema.json" schema_is_the_checked_in_file

schema_comment() {
  local file
  for file in examples/*.yaml; do
    grep -q '^# yaml-language-server: \$schema=../schema/vmlaunch.schema.json$' "$file" || { echo "no schema comment: $file"; return 1; }
  done
}
check "every YAML example names the schema for editors" schema_comment

finish
