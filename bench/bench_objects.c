/* objects: construct, find and destroy of N named objects (an int each,
 * names "object-<i>") in random order, in a 256 MiB managed shared-memory
 * segment; the Boost side is bench/boost/boost_objects.cpp.  One op is one
 * call; construct and destroy take the segment lock, as all of Boost's ops
 * do; find reads without it when no holder is inside (docs/objects.md).
 *   bench: {construct,find,destroy}_{100k,10k}_mops
 *   bench: find_{100k,10k}_hashidx_mops   the same ipx find figure again,
 *          so the runner prints its ratio to Boost's hash index (ipx has
 *          one index; Boost reports its iunordered_set_index here)
 * Each run measures once; scripts/run-bench.sh repeats runs and takes
 * medians. */
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "ipx/ipx.h"

#define MIB (1024u * 1024u)

static void die(const char *what, int err) {
  fprintf(stderr, "bench_objects: %s: %s\n", what, ipx_strerror(err));
  exit(1);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xrand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void shuffle(int *v, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(xrand() % (uint64_t)(i + 1)), t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}

static double mops(int n, uint64_t t0) {
  return (double)n / (double)(bench_now_ns() - t0) * 1e3;
}

static void run(int n, const char *tag) {
  char segname[64], metric[64];
  bench_name(segname, sizeof segname, "objects");
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_CREATE_ONLY;
  o.size = 256 * MIB;
  ipx_segment_t *s;
  int e = ipx_segment_open_shm(&s, segname, &o);
  if (e) die("create", e);
  char (*names)[24] = malloc((size_t)n * sizeof *names);
  int *order = malloc((size_t)n * sizeof *order);
  for (int i = 0; i < n; i++) {
    snprintf(names[i], sizeof names[i], "object-%d", i);
    order[i] = i;
  }
  rng = 88172645463325252ull;

  shuffle(order, n);
  uint64_t t0 = bench_now_ns();
  for (int i = 0; i < n; i++) {
    int *p;
    if ((e = IPX_CONSTRUCT(s, int, names[order[i]], 1, &p))) die("construct", e);
    *p = order[i];
  }
  double c = mops(n, t0);

  shuffle(order, n);
  long sum = 0;
  t0 = bench_now_ns();
  for (int i = 0; i < n; i++) {
    int *p;
    if ((e = IPX_FIND(s, int, names[order[i]], &p, NULL))) die("find", e);
    sum += *p;
  }
  double f = mops(n, t0);
  if (sum != (long)n * (n - 1) / 2) die("find: wrong objects", 0);

  shuffle(order, n);
  t0 = bench_now_ns();
  for (int i = 0; i < n; i++)
    if ((e = IPX_DESTROY(s, int, names[order[i]]))) die("destroy", e);
  double d = mops(n, t0);

  snprintf(metric, sizeof metric, "construct_%s_mops", tag);
  bench_report(metric, c, "Mops/s");
  snprintf(metric, sizeof metric, "find_%s_mops", tag);
  bench_report(metric, f, "Mops/s");
  snprintf(metric, sizeof metric, "find_%s_hashidx_mops", tag);
  bench_report(metric, f, "Mops/s");
  snprintf(metric, sizeof metric, "destroy_%s_mops", tag);
  bench_report(metric, d, "Mops/s");
  free(names);
  free(order);
  ipx_segment_close(s);
  ipx_segment_remove_shm(segname);
}

int main(void) {
  bench_pin_cpu(0);
  run(100000, "100k");
  run(10000, "10k");
  return 0;
}
