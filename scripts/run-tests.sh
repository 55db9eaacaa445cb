#!/usr/bin/env bash
# Runs the whole suite of a build tree through CTest and ends with one line
# "N passed, N failed" counting test cases across every module; exits
# non-zero if anything failed.
#   run-tests.sh BUILD_DIR [ctest args...]
set -u
build=$1; shift
results=$(mktemp -d /tmp/ipx-results-XXXXXX)
trap 'rm -rf "$results"' EXIT
export IPX_TEST_RESULTS_DIR=$results
export IPX_TEST_RUN=${IPX_TEST_RUN:-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')}
jobs=${IPX_TEST_JOBS:-$(nproc)}

rm -f "$build/Testing/Temporary/LastTestsFailed.log"
ctest --test-dir "$build" -j "$jobs" --output-on-failure "$@"
rc=$?

passed=0 failed=0 skipped=0
failed_list="$build/Testing/Temporary/LastTestsFailed.log"
for name in $(ctest --test-dir "$build" -N "$@" | sed -n 's/^ *Test *#[0-9]*: //p'); do
  f="$results/$name.txt"
  entry_failed=0
  if [ -f "$failed_list" ] && grep -q ":$name\$" "$failed_list"; then entry_failed=1; fi
  if [ -f "$f" ]; then
    read -r p fl s < "$f"
    passed=$((passed + p)); failed=$((failed + fl)); skipped=$((skipped + s))
    # A binary that crashed after filing its results still counts as a failure.
    if [ "$entry_failed" = 1 ] && [ "$fl" = 0 ]; then failed=$((failed + 1)); fi
  elif [ "$entry_failed" = 1 ]; then
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
done
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
