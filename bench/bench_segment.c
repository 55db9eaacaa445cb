/* segment: the life of a 64 MiB managed shared-memory segment.
 *   bench: segment_create_64MiB        us to create (build + publish) it
 *   bench: segment_open_64MiB_other_process
 *                                      us for another process to open it
 *   bench: segment_grow_64MiB_by_64MiB us to grow it by 64 MiB (closed)
 * and for each the page faults it takes (getrusage around the call, outside
 * the timed part): segment_*_faults.
 * Medians over IPX_BENCH_REPS x 51 operations each. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "ipx/ipx.h"

#define MIB (1024u * 1024u)
#define OPS 51

static void die(const char *what, int err) {
  fprintf(stderr, "bench_segment: %s: %s\n", what, ipx_strerror(err));
  exit(1);
}

/* A measurement: median microseconds and median page faults. */
struct m {
  double us, faults;
};

static ipx_segment_options_t opts(ipx_open_mode_t mode) {
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = mode;
  o.size = 64 * MIB;
  return o;
}

static struct m create_us(const char *name) {
  double v[OPS], f[OPS];
  ipx_segment_options_t o = opts(IPX_CREATE_ONLY);
  for (int i = 0; i < OPS; i++) {
    ipx_segment_t *s;
    double f0 = bench_faults();
    uint64_t t0 = bench_now_ns();
    int e = ipx_segment_open_shm(&s, name, &o);
    v[i] = (double)(bench_now_ns() - t0) / 1e3;
    f[i] = bench_faults() - f0;
    if (e) die("create", e);
    ipx_segment_close(s);
    ipx_segment_remove_shm(name);
  }
  return (struct m){bench_median(v, OPS), bench_median(f, OPS)};
}

/* Run in a child: open the parent's segment OPS times. */
static struct m open_other_us(const char *name) {
  int fds[2];
  if (pipe(fds) != 0) die("pipe", -1);
  ipx_segment_t *s;
  ipx_segment_options_t o = opts(IPX_CREATE_ONLY);
  int e = ipx_segment_open_shm(&s, name, &o);
  if (e) die("create", e);
  pid_t p = fork();
  if (p == 0) {
    double v[OPS], f[OPS];
    ipx_segment_options_t oo = opts(IPX_OPEN_ONLY);
    for (int i = 0; i < OPS; i++) {
      ipx_segment_t *t;
      double f0 = bench_faults();
      uint64_t t0 = bench_now_ns();
      int r = ipx_segment_open_shm(&t, name, &oo);
      v[i] = (double)(bench_now_ns() - t0) / 1e3;
      f[i] = bench_faults() - f0;
      if (r) die("open", r);
      ipx_segment_close(t);
    }
    struct m res = {bench_median(v, OPS), bench_median(f, OPS)};
    _exit(write(fds[1], &res, sizeof res) == sizeof res ? 0 : 1);
  }
  struct m res = {-1, -1};
  if (read(fds[0], &res, sizeof res) != sizeof res) die("child", -1);
  waitpid(p, NULL, 0);
  close(fds[0]);
  close(fds[1]);
  ipx_segment_close(s);
  ipx_segment_remove_shm(name);
  return res;
}

static struct m grow_us(const char *name) {
  double v[OPS], f[OPS];
  ipx_segment_options_t o = opts(IPX_CREATE_ONLY);
  for (int i = 0; i < OPS; i++) {
    ipx_segment_t *s;
    int e = ipx_segment_open_shm(&s, name, &o);
    if (e) die("create", e);
    ipx_segment_close(s);
    double f0 = bench_faults();
    uint64_t t0 = bench_now_ns();
    e = ipx_segment_grow_shm(name, 64 * MIB);
    v[i] = (double)(bench_now_ns() - t0) / 1e3;
    f[i] = bench_faults() - f0;
    if (e) die("grow", e);
    ipx_segment_remove_shm(name);
  }
  return (struct m){bench_median(v, OPS), bench_median(f, OPS)};
}

int main(void) {
  char name[64];
  bench_name(name, sizeof name, "seg");
  int reps = bench_reps(5);
  if (reps > 32) reps = 32;
  double c[32], op[32], g[32], cf[32], of[32], gf[32];
  create_us(name); /* warm-up */
  for (int i = 0; i < reps; i++) {
    struct m x = create_us(name), y = open_other_us(name), z = grow_us(name);
    c[i] = x.us;
    cf[i] = x.faults;
    op[i] = y.us;
    of[i] = y.faults;
    g[i] = z.us;
    gf[i] = z.faults;
  }
  bench_report("segment_create_64MiB", bench_median(c, reps), "us");
  bench_report("segment_open_64MiB_other_process", bench_median(op, reps), "us");
  bench_report("segment_grow_64MiB_by_64MiB", bench_median(g, reps), "us");
  bench_report("segment_create_64MiB_faults", bench_median(cf, reps), "faults");
  bench_report("segment_open_64MiB_other_process_faults", bench_median(of, reps),
               "faults");
  bench_report("segment_grow_64MiB_by_64MiB_faults", bench_median(gf, reps),
               "faults");
  return 0;
}
