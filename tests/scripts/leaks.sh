#!/usr/bin/env bash
# Runs after every other test: nothing named with this run's prefix may be
# left in /dev/shm (the harness already fails the case that leaves one; this
# catches examples and script tests too).
set -u
. "$(dirname "$0")/lib.sh"
if [ -z "${IPX_TEST_RUN:-}" ]; then
  # Run outside `make test`: no run id, so check every test name instead.
  pattern='^ipx\.t'
else
  pattern="t${IPX_TEST_RUN}\."
fi
left=$(ls /dev/shm 2>/dev/null | grep -E "$pattern" || true)
if [ -n "$left" ]; then
  echo "left in /dev/shm:"; echo "$left" | head -20
  bad "no object of this run left in /dev/shm"
else
  ok "no object of this run left in /dev/shm"
fi
finish
