# Shared by the script tests: count checks and file the result line the
# way the C harness does, so `make test` can add them up.
ipx_name=$(basename "$0" .sh)
ipx_passed=0
ipx_failed=0
ok() { echo "[  OK  ] $*"; ipx_passed=$((ipx_passed + 1)); }
bad() { echo "[ FAIL ] $*"; ipx_failed=$((ipx_failed + 1)); }
check() { # check "description" command...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
  echo "$ipx_name: $ipx_passed passed, $ipx_failed failed"
  if [ -n "${IPX_TEST_RESULTS_DIR:-}" ]; then
    echo "$ipx_passed $ipx_failed 0" > "$IPX_TEST_RESULTS_DIR/$ipx_name.txt"
  fi
  [ "$ipx_failed" -eq 0 ]
}
