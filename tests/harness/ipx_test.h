/* ipx_test.h - the test harness every ipx test binary uses.
 *
 * A test binary is a list of cases declared with IPX_TEST(name).  The runner
 * (harness.c's main) runs each case in its own forked process group with a
 * timeout, so a case that hangs, crashes or leaks a child is reported as
 * such and the binary goes on with the next case.  After each case the
 * runner kills what the case left running, removes the case's temporary
 * directory, and fails a passing case that left objects in /dev/shm under
 * its name prefix (removing them too, so a failed run leaves nothing).
 *
 * Names: every shared object a test creates must be named through
 * ipx_test_name(), which carries the run id (IPX_TEST_RUN), the binary and
 * the case, so parallel runs never collide and clean-up knows what is its.
 *
 * Peers: IPX_TEST_PEER(name) declares a function run when the binary is
 * executed as `binary --peer name args...` (a fresh exec, so its mappings
 * land at other addresses); ipx_test_spawn() starts one.  ipx_test_fork()
 * runs a function in a forked child instead.
 *
 * Usage of a test binary: `test_x [--list] [substring...]`.
 * Environment: IPX_TEST_RUN (run id), IPX_TEST_RESULTS_DIR (where the
 * per-binary "passed failed skipped" line goes), IPX_TEST_SCALE (multiplier
 * for long loops, e.g. 0.05 under TSan/valgrind), IPX_TEST_SEED. */
#ifndef IPX_TEST_H
#define IPX_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "ipx/error.h"

typedef void (*ipx_test_fn)(void);
typedef int (*ipx_test_peer_fn)(int argc, char **argv);

struct ipx_test_case {
  const char *name;
  ipx_test_fn fn;
  int timeout_s; /* 0 = default (60 s, scaled up under sanitizers) */
  struct ipx_test_case *next;
};
struct ipx_test_peer {
  const char *name;
  ipx_test_peer_fn fn;
  struct ipx_test_peer *next;
};

void ipx_test_register(struct ipx_test_case *c);
void ipx_test_register_peer(struct ipx_test_peer *p);

/* IPX_TEST_T(name, timeout_seconds) { body } */
#define IPX_TEST_T(tname, timeout)                                          \
  static void tname(void);                                                  \
  static struct ipx_test_case tname##_case_ = {#tname, tname, timeout, 0};  \
  __attribute__((constructor)) static void tname##_register_(void) {       \
    ipx_test_register(&tname##_case_);                                      \
  }                                                                         \
  static void tname(void)
#define IPX_TEST(tname) IPX_TEST_T(tname, 0)

#define IPX_TEST_PEER(pname)                                                \
  static int pname(int argc, char **argv);                                  \
  static struct ipx_test_peer pname##_peer_ = {#pname, pname, 0};           \
  __attribute__((constructor)) static void pname##_register_(void) {       \
    ipx_test_register_peer(&pname##_peer_);                                 \
  }                                                                         \
  static int pname(int argc, char **argv)

/* ---- failing ---------------------------------------------------------- */
__attribute__((noreturn, format(printf, 3, 4))) void ipx_test_fail(
    const char *file, int line, const char *fmt, ...);
__attribute__((noreturn, format(printf, 1, 2))) void ipx_test_skip(
    const char *fmt, ...);
/* Print a note attached to the current case (shown with its result). */
__attribute__((format(printf, 1, 2))) void ipx_test_log(const char *fmt, ...);

#define IPX_FAIL(...) ipx_test_fail(__FILE__, __LINE__, __VA_ARGS__)
#define IPX_SKIP(...) ipx_test_skip(__VA_ARGS__)

#define IPX_ASSERT(cond)                                        \
  do {                                                          \
    if (!(cond)) ipx_test_fail(__FILE__, __LINE__, "%s", #cond); \
  } while (0)

#define IPX__ASSERT_CMP(a, op, b)                                             \
  do {                                                                        \
    long long ipx_a_ = (long long)(a), ipx_b_ = (long long)(b);               \
    if (!(ipx_a_ op ipx_b_))                                                  \
      ipx_test_fail(__FILE__, __LINE__, "%s %s %s (%lld vs %lld)", #a, #op,   \
                    #b, ipx_a_, ipx_b_);                                      \
  } while (0)
#define IPX_ASSERT_EQ(a, b) IPX__ASSERT_CMP(a, ==, b)
#define IPX_ASSERT_NE(a, b) IPX__ASSERT_CMP(a, !=, b)
#define IPX_ASSERT_LT(a, b) IPX__ASSERT_CMP(a, <, b)
#define IPX_ASSERT_LE(a, b) IPX__ASSERT_CMP(a, <=, b)
#define IPX_ASSERT_GT(a, b) IPX__ASSERT_CMP(a, >, b)
#define IPX_ASSERT_GE(a, b) IPX__ASSERT_CMP(a, >=, b)

#define IPX_ASSERT_PTR_EQ(a, b)                                            \
  do {                                                                     \
    const void *ipx_a_ = (a), *ipx_b_ = (b);                               \
    if (ipx_a_ != ipx_b_)                                                  \
      ipx_test_fail(__FILE__, __LINE__, "%s == %s (%p vs %p)", #a, #b,     \
                    ipx_a_, ipx_b_);                                       \
  } while (0)

#define IPX_ASSERT_STREQ(a, b)                                             \
  do {                                                                     \
    const char *ipx_a_ = (a), *ipx_b_ = (b);                               \
    if (!ipx_a_ || !ipx_b_ || strcmp(ipx_a_, ipx_b_) != 0)                 \
      ipx_test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", #a, \
                    #b, ipx_a_ ? ipx_a_ : "(null)",                        \
                    ipx_b_ ? ipx_b_ : "(null)");                           \
  } while (0)

/* expr must return 0. */
#define IPX_ASSERT_OK(expr)                                                   \
  do {                                                                        \
    int ipx_r_ = (expr);                                                      \
    if (ipx_r_ != 0)                                                          \
      ipx_test_fail(__FILE__, __LINE__, "%s returned %d %s (%s)", #expr,      \
                    ipx_r_, ipx_err_name(ipx_r_), ipx_strerror(ipx_r_));      \
  } while (0)

/* expr must return exactly `code`. */
#define IPX_ASSERT_ERR(expr, code)                                            \
  do {                                                                        \
    int ipx_r_ = (expr), ipx_c_ = (code);                                     \
    if (ipx_r_ != ipx_c_)                                                     \
      ipx_test_fail(__FILE__, __LINE__, "%s returned %d %s, expected %d %s",  \
                    #expr, ipx_r_, ipx_err_name(ipx_r_), ipx_c_,              \
                    ipx_err_name(ipx_c_));                                    \
  } while (0)

/* ---- names, files, scale, randomness ---------------------------------- */
/* A unique object name for this run, binary and case, ending in `tag`
 * (letters, digits, '.', '_', '-').  Returns buf. */
char *ipx_test_name(char *buf, size_t len, const char *tag);
/* The prefix every ipx_test_name() of the current case starts with. */
const char *ipx_test_case_prefix(void);
/* The run id shared by all binaries of one `make test`. */
const char *ipx_test_run_id(void);
/* A fresh temporary directory of the current case, removed after it. */
const char *ipx_test_tmpdir(void);
/* n scaled by IPX_TEST_SCALE, at least `min`. */
long ipx_test_scale(long n, long min);
/* Deterministic per case from IPX_TEST_SEED (printed on failure). */
uint64_t ipx_test_rand(void);

/* ---- processes --------------------------------------------------------- */
/* Fork a child running fn(arg); the child exits 0 when fn returns and 1 when
 * an assertion fails in it. */
pid_t ipx_test_fork(void (*fn)(void *), void *arg);
/* Exec this binary as `--peer name args...` (args NULL-terminated). */
pid_t ipx_test_spawn(const char *peer, ...);
/* Wait for pid up to timeout_ms (0 = no limit); returns the wait status, or
 * -1 after killing it on timeout. */
int ipx_test_wait(pid_t pid, long timeout_ms);
/* Wait (up to 60 s) and fail unless the child exited with status 0. */
#define IPX_ASSERT_CHILD_OK(pid) ipx_test_assert_child_ok(__FILE__, __LINE__, (pid))
void ipx_test_assert_child_ok(const char *file, int line, pid_t pid);
/* Wait and fail unless the child was killed by signal `sig`. */
#define IPX_ASSERT_CHILD_SIGNALED(pid, sig) \
  ipx_test_assert_child_signaled(__FILE__, __LINE__, (pid), (sig))
void ipx_test_assert_child_signaled(const char *file, int line, pid_t pid,
                                    int sig);
/* In a child that is expected to die of a signal: restore default handlers
 * (sanitizers install their own) and disable core dumps. */
void ipx_test_expect_crash(void);
/* Anonymous MAP_SHARED memory for test bookkeeping, inherited by fork. */
void *ipx_test_shared_alloc(size_t size);
void ipx_test_shared_free(void *p, size_t size);

/* A gate: children block in wait until the parent opens it, releasing them
 * all at once (a pipe whose write end is closed). */
typedef struct {
  int fd[2];
} ipx_test_gate_t;
void ipx_test_gate_init(ipx_test_gate_t *g);
void ipx_test_gate_wait(ipx_test_gate_t *g); /* in children */
void ipx_test_gate_open(ipx_test_gate_t *g); /* in the parent */

/* Sleep for ms milliseconds (restarting after signals). */
void ipx_test_sleep_ms(long ms);
/* True when built with a sanitizer or run under valgrind (slower). */
int ipx_test_slow_build(void);
/* True when running under valgrind. */
int ipx_test_under_valgrind(void);

#endif /* IPX_TEST_H */
