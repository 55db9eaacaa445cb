#!/usr/bin/env bash
# Install into a temporary prefix, then build a program against it through
# pkg-config and through find_package(ipx), and run both.
set -u
. "$(dirname "$0")/lib.sh"
build=$1 src=$2 cc=${3:-cc}
tmp=$(mktemp -d /tmp/ipx-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
# A sanitizer build's library needs the sanitizer runtime in the program too.
san=$(sed -n 's/^IPX_SANITIZE:STRING=//p' "$build/CMakeCache.txt")
sanflags=""
[ -n "$san" ] && sanflags="-fsanitize=$san"

check "cmake --install into a fresh prefix" \
  cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -1); libdir=${libdir%/}
check "headers installed" test -f "$prefix/include/ipx/ipx.h"
check "shared library has a SONAME" \
  sh -c "objdump -p '$libdir/libipx.so' | grep -q 'SONAME.*libipx.so.0'"
check "static library installed" test -f "$libdir/libipx.a"

export PKG_CONFIG_PATH=$libdir/pkgconfig
if $cc $sanflags $(pkg-config --cflags ipx) "$src/tests/install/consumer/main.c" \
    -o "$tmp/by_pc" $(pkg-config --libs ipx) && \
    LD_LIBRARY_PATH=$libdir "$tmp/by_pc" >/dev/null; then
  ok "pkg-config build runs"
else
  bad "pkg-config build runs"
fi

if cmake -S "$src/tests/install/consumer" -B "$tmp/cm" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$sanflags" >/dev/null && \
    cmake --build "$tmp/cm" >/dev/null && \
    LD_LIBRARY_PATH=$libdir "$tmp/cm/consumer" >/dev/null; then
  ok "find_package(ipx) build runs"
else
  bad "find_package(ipx) build runs"
fi
finish
