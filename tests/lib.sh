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
