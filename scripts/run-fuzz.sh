#!/usr/bin/env bash
# Runs every libFuzzer target of a build tree for a bounded time and merges
# the new interesting inputs into the corpus kept in the repository.
#   run-fuzz.sh BUILD_DIR SECONDS [target...]
# Targets are BUILD/fuzz/fuzz_<name>; their corpus is fuzz/corpus/<name>/,
# seeded by BUILD/fuzz/gen_corpus_<name> when empty.  A crash stops the run
# with the reproducer left in BUILD/fuzz/artifacts/.
set -eu
build=$1
secs=${2:-60}
shift 2 || true
src=$(cd "$(dirname "$0")/.." && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$build"/fuzz/fuzz_*; do
    [ -x "$f" ] && targets+=("$(basename "$f" | sed 's/^fuzz_//')")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then echo "run-fuzz: no fuzz targets in $build/fuzz"; exit 1; fi
mkdir -p "$build/fuzz/artifacts"
for t in "${targets[@]}"; do
  corpus="$src/fuzz/corpus/$t"
  mkdir -p "$corpus"
  if [ -z "$(ls -A "$corpus")" ] && [ -x "$build/fuzz/gen_corpus_$t" ]; then
    "$build/fuzz/gen_corpus_$t" "$corpus"
  fi
  fresh=$(mktemp -d /tmp/ipx-fuzz-XXXXXX)
  echo "== fuzz_$t for ${secs}s (corpus $(ls "$corpus" | wc -l) files)"
  "$build/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 \
    -artifact_prefix="$build/fuzz/artifacts/" -print_final_stats=1 \
    "$fresh" "$corpus" 2>&1 | grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)' || true
  status=${PIPESTATUS[0]}
  # Keep only inputs that add coverage to what the repository holds.
  "$build/fuzz/fuzz_$t" -merge=1 "$corpus" "$fresh" 2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' || true
  rm -rf "$fresh"
  echo "   corpus now $(ls "$corpus" | wc -l) files"
  if [ "$status" -ne 0 ]; then echo "run-fuzz: fuzz_$t failed (status $status)"; exit "$status"; fi
done
