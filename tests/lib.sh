# Shell test helpers. A shell test sources this, calls `check NAME COMMAND...` per case (or
# `skip NAME REASON`), and ends with `finish`, which prints the doctest-style summary tools/test counts.
_passed=0 _failed=0 _skipped=0
check() {
  local name=$1; shift
  if "$@"; then _passed=$((_passed + 1)); else echo "FAILED: $name"; _failed=$((_failed + 1)); fi
}
skip() { echo "[skip-static] $1: $2"; _skipped=$((_skipped + 1)); }
finish() {
  echo "[doctest] test cases: $((_passed + _failed + _skipped)) | $_passed passed | $_failed failed | $_skipped skipped"
  [ "$_failed" -eq 0 ]
}

# restore_refused SNAPSHOT WORK NAME PATTERN SETUP...: copies SNAPSHOT to WORK/bad, runs SETUP (shell
# text) in it, restores it with $vml; the restore must exit 2, say PATTERN (an ERE) on stderr and run
# nothing of the guest (no COUNT line). For the snapshot tests' damaged and mismatching copies.
restore_refused() {
  local snap=$1 work=$2 what=$3 pattern=$4
  shift 4
  rm -rf "$work/bad"
  cp -a "$snap" "$work/bad"
  (cd "$work/bad" && eval "$@")
  "${vml:?}" up --restore "$work/bad" --name "bad$$" >"$work/bad.out" 2>"$work/bad.err" </dev/null
  local status=$?
  check "$what: exit 2" test "$status" -eq 2
  check "$what: says why" grep -qE "$pattern" "$work/bad.err"
  check "$what: nothing of the guest ran" bash -c "! grep -aq COUNT '$work/bad.out'"
  [ "$status" -eq 2 ] && grep -qE "$pattern" "$work/bad.err" || cat "$work/bad.err"
}
