#!/usr/bin/env bash
# Every thread the VMM starts declares its role first thing (security/thread_role.h): a thread
# without one would run without a seccomp filter of its own, and arming refuses to go on while one
# runs. This finds every thread start in the non-test C++ sources (std::thread construction and
# emplace_back into a vector of threads) and checks that a security::ThreadRole follows within
# three lines. A new start site without a role fails here, with its file and line.
source tests/lib.sh
root=$(cd "$(dirname "$(readlink -f tests/security/thread_roles_test.sh)")/../.." && pwd)
check "the source tree is reachable from the runfiles" test -f "$root/security/thread_role.h"

mapfile -t sources < <(cd "$root" && find accel backends base config debug graph hw jit launcher snapshot vmm security \
  -name '*.cpp' -o -name '*.h' | grep -v '_test\.cpp$' | grep -v '/testing/' | grep -v 'test_' | sort)
check "sources found" test "${#sources[@]}" -gt 50

# Names of thread vectors (std::vector<std::thread> NAME) in the code, to recognise NAME.emplace_back.
mapfile -t vectors < <(cd "$root" && grep -ohE 'std::vector<std::thread> +[A-Za-z_]+' "${sources[@]}" | awk '{print $2}' | sort -u)
vector_pattern=$(printf '%s|' "${vectors[@]}")
# Whole names only: a vector of threads called `pool` must not match `m_pool.emplace_back(`.
vector_pattern="(^|[^A-Za-z0-9_])(${vector_pattern%|})\.emplace_back\("

missing=0 sites=0
for file in "${sources[@]}"; do
  while IFS=: read -r line _; do
    sites=$((sites + 1))
    if ! sed -n "${line},$((line + 3))p" "$root/$file" | grep -q 'security::ThreadRole'; then
      echo "FAILED: $file:$line starts a thread without declaring its role (security::ThreadRole)"
      missing=$((missing + 1))
    fi
  done < <(grep -nE "std::thread\(\[|$vector_pattern" "$root/$file")
done
echo "thread start sites: $sites"
check "thread start sites were found (the pattern still matches the code)" test "$sites" -ge 15
check "every thread start site declares a role" test "$missing" -eq 0
finish
