#!/usr/bin/env bash
# The README's taste of the API compiles warning-free against the build and
# does what it says: two runs share the counter.
set -u
. "$(dirname "$0")/lib.sh"
build=$1 src=$2 cc=${3:-cc}
tmp=$(mktemp -d /tmp/ipx-readme-XXXXXX)
name="t${IPX_TEST_RUN:-norun}.readme.$$"
trap 'rm -rf "$tmp"; rm -f "/dev/shm/ipx.$name"' EXIT
awk '/^```c$/{on=1; next} /^```$/{if(on) exit} on' "$src/README.md" > "$tmp/taste.c"
san=$(sed -n 's/^IPX_SANITIZE:STRING=//p' "$build/CMakeCache.txt")
sanflags=${san:+-fsanitize=$san}
check "the README's snippet is there" test -s "$tmp/taste.c"
check "it compiles with -Wall -Wextra -Wpedantic -Werror" \
  $cc -std=c11 -Wall -Wextra -Wpedantic -Werror $sanflags -I"$src/include" \
  "$tmp/taste.c" -o "$tmp/taste" -L"$build" -lipx -Wl,-rpath,"$build"
if [ -x "$tmp/taste" ]; then
  out1=$("$tmp/taste" "$name"); out2=$("$tmp/taste" "$name")
  check "first run counts 1 ($out1)" test "$out1" = "hit 1"
  check "second run counts 2 ($out2)" test "$out2" = "hit 2"
else
  bad "it runs"
fi
finish
