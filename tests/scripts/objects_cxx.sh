#!/usr/bin/env bash
# The objects header and its typed macros compile as C++ (g++ and clang++
# when present).   objects_cxx.sh BUILD_DIR SOURCE_DIR CC
set -eu
src=$2
tmp=$(mktemp -d /tmp/ipx-cxx-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/t.cpp" <<'CPP'
#include <ipx/ipx.h>
struct point { double x, y; };
static int init(void *e, size_t i, void *ctx) { (void)e; (void)i; (void)ctx; return 0; }
static int use(ipx_segment_t *seg) {
  point *p = nullptr;
  size_t n = 0;
  int r = IPX_CONSTRUCT(seg, point, "p", 10, &p);
  r |= IPX_CONSTRUCT_INIT(seg, point, "q", 10, init, nullptr, &p);
  r |= IPX_FIND(seg, point, "p", &p, &n);
  r |= IPX_FIND_OR_CONSTRUCT(seg, point, "p", 10, &p);
  r |= IPX_FIND_OR_CONSTRUCT_INIT(seg, point, "p", 10, init, nullptr, &p);
  r |= IPX_DESTROY(seg, point, "p");
  r |= IPX_UNIQUE_CONSTRUCT(seg, point, 1, &p);
  r |= IPX_UNIQUE_FIND(seg, point, &p, &n);
  r |= IPX_UNIQUE_FIND_OR_CONSTRUCT(seg, point, 1, &p);
  r |= IPX_UNIQUE_DESTROY(seg, point);
  r |= IPX_ANONYMOUS_CONSTRUCT(seg, point, 4, &p);
  return r;
}
int main() { return use(nullptr) ? 0 : 1; }
CPP
found=0
for cxx in g++ clang++; do
  command -v "$cxx" >/dev/null || continue
  found=1
  "$cxx" -std=c++11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$src/include" "$tmp/t.cpp"
  echo "$cxx: ok"
done
[ "$found" = 1 ] || echo "skipped: no C++ compiler"
