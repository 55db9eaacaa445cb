#!/usr/bin/env bash
# libipx.so exports ipx_* symbols and nothing else.
set -u
. "$(dirname "$0")/lib.sh"
build=$1
lib=$(ls "$build"/libipx.so.*.*.* 2>/dev/null | head -1)
if [ -z "$lib" ]; then bad "libipx.so built"; finish; exit; fi
syms=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v -E '^(_init|_fini)$' | sort)
stray=$(echo "$syms" | grep -v '^ipx_' || true)
if [ -n "$stray" ]; then
  echo "exported but not ipx_*:"; echo "$stray" | head -20
  bad "only ipx_* symbols are exported"
else
  ok "only ipx_* symbols are exported ($(echo "$syms" | wc -l) symbols)"
fi
check "ipx_version is exported" sh -c "echo '$syms' | grep -qx ipx_version"
internal=$(echo "$syms" | grep '^ipx__' || true)
if [ -n "$internal" ]; then bad "no internal ipx__ symbol exported: $internal"; else ok "no internal ipx__ symbol exported"; fi
finish
