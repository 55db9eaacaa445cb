#!/usr/bin/env bash
# The public headers compile as C++ (g++ and clang++ when present), the
# scoped-lock macros included.   sync_cxx.sh BUILD_DIR SOURCE_DIR CC
set -eu
src=$2
tmp=$(mktemp -d /tmp/ipx-cxx-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/t.cpp" <<'CPP'
#include <ipx/ipx.h>
static int with(ipx_mutex_t *m, ipx_recursive_mutex_t *r) {
  int rc, rc2;
  IPX_WITH_LOCK(m, &rc) {
    IPX_WITH_RECURSIVE_LOCK(r, &rc2) { return rc2; }
  }
  return rc;
}
int main() {
  ipx_condition_t c;
  ipx_semaphore_t s;
  static_assert(sizeof c == IPX_CONDITION_SIZE && sizeof s == IPX_SEMAPHORE_SIZE, "sizes");
  return with(nullptr, nullptr) == IPX_EINVAL ? 0 : 1;
}
CPP
found=0
for cxx in g++ clang++; do
  command -v "$cxx" >/dev/null || continue
  found=1
  "$cxx" -std=c++11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$src/include" "$tmp/t.cpp"
  echo "$cxx: ok"
done
[ "$found" = 1 ] || echo "skipped: no C++ compiler"
