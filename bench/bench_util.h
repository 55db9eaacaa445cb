/* bench_util.h - timing and reporting shared by the ipx benchmarks.
 * Usable from C and C++ (the Boost side includes it too). */
#ifndef IPX_BENCH_UTIL_H
#define IPX_BENCH_UTIL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic nanoseconds. */
uint64_t bench_now_ns(void);
/* Print "bench: <metric> <value> <unit>" (the format run-bench.sh reads). */
void bench_report(const char *metric, double value, const char *unit);
/* Pin the calling process (or thread) to one CPU; returns 0 on success. */
int bench_pin_cpu(int cpu);
/* Number of CPUs this process may run on. */
int bench_ncpus(void);
/* Median of n doubles (sorts them in place). */
double bench_median(double *v, int n);
/* Repetitions of an inner measurement; IPX_BENCH_REPS overrides. */
int bench_reps(int dflt);
/* Run fn(arg) in a child process and wait for it: each workload then
 * starts from a fresh process (a fresh malloc heap, nothing mapped or
 * faulted in by the workloads before it).  Returns the child's exit
 * status, or -1 if it could not run. */
int bench_isolated(void (*fn)(void *), void *arg);
/* Fault in every page of [addr, addr + len) of a shared mapping for
 * writing, without changing a byte. */
void bench_populate(void *addr, unsigned long len);
/* The random seed of a workload: IPX_BENCH_SEED (a non-zero integer)
 * when set, else a fixed default, the same on every side. */
uint64_t bench_seed(void);
/* Page faults (minor + major) this process has taken so far. */
double bench_faults(void);
/* A unique object name "b<pid>.<tag>" for benchmark objects. */
const char *bench_name(char *buf, unsigned long len, const char *tag);

#ifdef __cplusplus
}
#endif
#endif
