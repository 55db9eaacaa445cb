#!/usr/bin/env bash
# Runs every benchmark of a build tree several times, the ipx side and the
# Boost side interleaved (so both see the same machine load), and prints per
# metric the median of the runs, the ratio of the medians ipx/Boost, and the
# median of the per-run ratios (steadier when the machine's speed drifts
# during the session).
#   run-bench.sh BUILD_DIR [module...]     IPX_BENCH_RUNS=5 by default
set -u
build=$1; shift
runs=${IPX_BENCH_RUNS:-5}
raw=$(mktemp /tmp/ipx-bench-XXXXXX)
trap 'rm -f "$raw"' EXIT

mods=("$@")
if [ ${#mods[@]} -eq 0 ]; then
  for b in "$build"/bench/bench_*; do
    [ -x "$b" ] && mods+=("$(basename "$b" | sed 's/^bench_//')")
  done
fi

for m in "${mods[@]}"; do
  echo "== $m ($runs runs, medians)"
  : > "$raw"
  for r in $(seq 1 "$runs"); do
    "$build/bench/bench_$m" | sed -n 's/^bench: /ipx /p' >> "$raw"
    if [ -x "$build/bench/boost_$m" ]; then
      "$build/bench/boost_$m" | sed -n 's/^bench: /boost /p' >> "$raw"
    fi
  done
  awk '
    function median(key,   n, i, j, t, a) {
      n = cnt[key]; for (i = 1; i <= n; i++) a[i] = val[key, i]
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    # The median of the runs ipx/Boost ratios: each run pairs an ipx run
    # with the Boost run right after it, which saw about the same machine.
    function run_ratio(ki, kb,   n, i, j, t, a) {
      if (!(ki in cnt) || !(kb in cnt) || cnt[ki] != cnt[kb]) return "-"
      n = cnt[ki]
      for (i = 1; i <= n; i++) {
        if (val[kb, i] == 0) return "-"
        a[i] = val[ki, i] / val[kb, i]
      }
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return sprintf("%.2f", n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
    }
    { key = $1 SUBSEP $2; cnt[key]++; val[key, cnt[key]] = $3; unit[$2] = $4
      if (!($2 in seen)) { seen[$2] = 1; order[++nm] = $2 } }
    END {
      printf "  %-44s %14s %14s %9s %9s\n", "metric", "ipx", "boost", "ipx/boost", "per-run"
      for (i = 1; i <= nm; i++) {
        m = order[i]; ki = "ipx" SUBSEP m; kb = "boost" SUBSEP m
        vi = (ki in cnt) ? sprintf("%.4g", median(ki)) : "-"
        vb = (kb in cnt) ? sprintf("%.4g", median(kb)) : "-"
        ratio = (ki in cnt && kb in cnt && median(kb) != 0) ? sprintf("%.2f", median(ki) / median(kb)) : "-"
        printf "  %-44s %14s %14s %9s %9s  %s\n", m, vi, vb, ratio, run_ratio(ki, kb), unit[m]
      }
    }' "$raw"
done
