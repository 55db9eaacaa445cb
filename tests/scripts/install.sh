#!/usr/bin/env bash
# Install into a temporary prefix, then build a program against it through
# pkg-config and through find_package(ipx), and run both.
set -u
. "$(dirname "$0")/lib.sh"
build=$1 src=$2 cc=${3:-cc}
# A sanitized library needs its runtime linked into the program that loads
# it (first in the library list), so the consumers are built with it too.
san=$(sed -n 's/^IPX_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)
san_flags=${san:+-fsanitize=$san}
tmp=$(mktemp -d /tmp/ipx-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

check "cmake --install into a fresh prefix" \
  cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -1); libdir=${libdir%/}
check "headers installed" test -f "$prefix/include/ipx/ipx.h"
check "shared library has a SONAME" \
  sh -c "objdump -p '$libdir/libipx.so' | grep -q 'SONAME.*libipx.so.0'"
check "static library installed" test -f "$libdir/libipx.a"

export PKG_CONFIG_PATH=$libdir/pkgconfig
if $cc $san_flags $(pkg-config --cflags ipx) "$src/tests/install/consumer/main.c" \
    -o "$tmp/by_pc" $(pkg-config --libs ipx) && \
    LD_LIBRARY_PATH=$libdir "$tmp/by_pc" >/dev/null; then
  ok "pkg-config build runs"
else
  bad "pkg-config build runs"
fi

if cmake -S "$src/tests/install/consumer" -B "$tmp/cm" -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san_flags" \
    -DCMAKE_PREFIX_PATH="$prefix" >/dev/null && \
    cmake --build "$tmp/cm" >/dev/null && \
    LD_LIBRARY_PATH=$libdir "$tmp/cm/consumer" >/dev/null; then
  ok "find_package(ipx) build runs"
else
  bad "find_package(ipx) build runs"
fi
finish
