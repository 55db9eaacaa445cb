/* The runner behind ipx_test.h: one forked process group per case, a
 * timeout, clean-up of what the case left behind, and a summary line. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipx_test.h"

#define EXIT_FAILED 1
#define EXIT_SKIPPED 77

static struct ipx_test_case *cases_head, **cases_tail = &cases_head;
static struct ipx_test_peer *peers;
static char bin_name[64] = "test";
static char run_id[32];
static uint64_t rng_state;
static uint64_t rng_seed;

void ipx_test_register(struct ipx_test_case *c) {
  *cases_tail = c;
  cases_tail = &c->next;
}

void ipx_test_register_peer(struct ipx_test_peer *p) {
  p->next = peers;
  peers = p;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void ipx_test_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int ipx_test_slow_build(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return 1;
#else
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return 1;
#endif
#endif
  const char *pre = getenv("LD_PRELOAD");
  return (pre && strstr(pre, "vgpreload")) || getenv("IPX_TEST_SLOW") != NULL;
#endif
}

int ipx_test_under_valgrind(void) {
  const char *pre = getenv("LD_PRELOAD");
  return pre && strstr(pre, "vgpreload") != NULL;
}

/* ---- failing ----------------------------------------------------------- */
void ipx_test_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "  FAILED %s:%d [pid %d, seed %llu]: ", file, line,
          (int)getpid(), (unsigned long long)rng_seed);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  _exit(EXIT_FAILED);
}

void ipx_test_skip(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "  skipped: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  _exit(EXIT_SKIPPED);
}

void ipx_test_log(const char *fmt, ...) {
  va_list ap;
  printf("  note: ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* ---- names, files, scale, randomness ------------------------------------ */
const char *ipx_test_run_id(void) { return run_id; }

const char *ipx_test_case_prefix(void) {
  const char *p = getenv("IPX_TEST_CASE_PREFIX");
  return p ? p : "tnocase.";
}

char *ipx_test_name(char *buf, size_t len, const char *tag) {
  snprintf(buf, len, "%s%s", ipx_test_case_prefix(), tag);
  return buf;
}

const char *ipx_test_tmpdir(void) {
  const char *d = getenv("IPX_TEST_TMPDIR");
  return d ? d : "/tmp";
}

long ipx_test_scale(long n, long min) {
  const char *s = getenv("IPX_TEST_SCALE");
  double f = s ? atof(s) : 1.0;
  if (f <= 0) f = 1.0;
  long v = (long)((double)n * f);
  return v < min ? min : v;
}

uint64_t ipx_test_rand(void) {
  /* xorshift64*: good enough to pick sizes and delays, reproducible. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * UINT64_C(2685821657736338717);
}

static void seed_rng(unsigned case_index) {
  const char *s = getenv("IPX_TEST_SEED");
  rng_seed = s ? strtoull(s, NULL, 0)
               : ((uint64_t)time(NULL) * 2654435761u) ^ (uint64_t)getpid();
  rng_seed += case_index;
  rng_state = rng_seed ? rng_seed : 0x9e3779b97f4a7c15ull;
}

/* ---- processes ------------------------------------------------------------ */
pid_t ipx_test_fork(void (*fn)(void *), void *arg) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) IPX_FAIL("fork: %s", strerror(errno));
  if (pid == 0) {
    rng_state ^= (uint64_t)getpid() << 17; /* children draw differently */
    fn(arg);
    exit(0);
  }
  return pid;
}

pid_t ipx_test_spawn(const char *peer, ...) {
  char *argv[64];
  int n = 0;
  va_list ap;
  argv[n++] = "/proc/self/exe";
  argv[n++] = "--peer";
  argv[n++] = (char *)peer;
  va_start(ap, peer);
  for (const char *a; n < 63 && (a = va_arg(ap, const char *)) != NULL;)
    argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) IPX_FAIL("fork: %s", strerror(errno));
  if (pid == 0) {
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
      self[len] = 0;
      argv[0] = self;
    }
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

int ipx_test_wait(pid_t pid, long timeout_ms) {
  double end = now_ms() + (double)timeout_ms;
  int status;
  long nap = 1;
  for (;;) {
    pid_t r = waitpid(pid, &status, timeout_ms ? WNOHANG : 0);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) IPX_FAIL("waitpid(%d): %s", (int)pid, strerror(errno));
    if (timeout_ms && now_ms() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    ipx_test_sleep_ms(nap);
    if (nap < 20) nap *= 2;
  }
}

static void describe_status(int status, char *buf, size_t len) {
  if (status == -1)
    snprintf(buf, len, "timed out");
  else if (WIFEXITED(status))
    snprintf(buf, len, "exited with %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  else
    snprintf(buf, len, "status 0x%x", status);
}

void ipx_test_assert_child_ok(const char *file, int line, pid_t pid) {
  long limit = 60000L * (ipx_test_slow_build() ? 5 : 1);
  int st = ipx_test_wait(pid, limit);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    char why[128];
    describe_status(st, why, sizeof why);
    ipx_test_fail(file, line, "child %d %s, expected exit 0", (int)pid, why);
  }
}

void ipx_test_assert_child_signaled(const char *file, int line, pid_t pid,
                                    int sig) {
  long limit = 60000L * (ipx_test_slow_build() ? 5 : 1);
  int st = ipx_test_wait(pid, limit);
  if (st == -1 || !WIFSIGNALED(st) || WTERMSIG(st) != sig) {
    char why[128];
    describe_status(st, why, sizeof why);
    ipx_test_fail(file, line, "child %d %s, expected signal %d", (int)pid, why,
                  sig);
  }
}

void ipx_test_expect_crash(void) {
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
  signal(SIGABRT, SIG_DFL);
  signal(SIGFPE, SIG_DFL);
  signal(SIGILL, SIG_DFL);
  /* An alternate stack installed by a sanitizer is harmless once the
   * handlers are back to SIG_DFL. */
}

void *ipx_test_shared_alloc(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) IPX_FAIL("mmap(%zu): %s", size, strerror(errno));
  return p;
}

void ipx_test_shared_free(void *p, size_t size) { munmap(p, size); }

void ipx_test_gate_init(ipx_test_gate_t *g) {
  if (pipe2(g->fd, O_CLOEXEC) != 0) IPX_FAIL("pipe: %s", strerror(errno));
}

void ipx_test_gate_wait(ipx_test_gate_t *g) {
  char c;
  close(g->fd[1]);
  while (read(g->fd[0], &c, 1) < 0 && errno == EINTR) {
  }
  close(g->fd[0]);
}

void ipx_test_gate_open(ipx_test_gate_t *g) {
  close(g->fd[0]);
  close(g->fd[1]);
}

/* ---- the runner ------------------------------------------------------------ */
static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* Remove what the case left in /dev/shm under its prefix; return how many
 * entries there were and name the first in `first`. */
static int sweep_shm(const char *prefix, char *first, size_t len) {
  DIR *d = opendir("/dev/shm");
  int n = 0;
  if (!d) return 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (!strstr(e->d_name, prefix)) continue;
    if (n++ == 0) snprintf(first, len, "%s", e->d_name);
    char path[512];
    snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
    unlink(path);
  }
  closedir(d);
  return n;
}

/* The running case's process group, for the runner's signal handler. */
static volatile sig_atomic_t current_case;

/* A runner stopped by a signal (a time limit of the caller, ^C) takes the
 * running case's whole process group with it, so no hung case or peer
 * outlives the run. */
static void runner_stopped(int sig) {
  if (current_case > 0) kill(-(pid_t)current_case, SIGKILL);
  signal(sig, SIG_DFL);
  raise(sig);
}

static int wanted(const char *name, int argc, char **argv) {
  int any = 0;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    any = 1;
    if (strstr(name, argv[i])) return 1;
  }
  return !any;
}

static int run_peer(int argc, char **argv) {
  for (struct ipx_test_peer *p = peers; p; p = p->next)
    if (strcmp(p->name, argv[2]) == 0) {
      const char *s = getenv("IPX_TEST_SEED");
      rng_seed = s ? strtoull(s, NULL, 0) : (uint64_t)getpid();
      rng_state = rng_seed | 1;
      return p->fn(argc - 2, argv + 2);
    }
  fprintf(stderr, "no peer named %s\n", argv[2]);
  return 127;
}

int main(int argc, char **argv) {
  const char *base = strrchr(argv[0], '/');
  base = base ? base + 1 : argv[0];
  if (strncmp(base, "test_", 5) == 0) base += 5;
  snprintf(bin_name, sizeof bin_name, "%s", base);
  for (char *c = bin_name; *c; c++)
    if (*c == '_') *c = '-';

  if (argc >= 3 && strcmp(argv[1], "--peer") == 0) return run_peer(argc, argv);

  if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
    for (struct ipx_test_case *c = cases_head; c; c = c->next) puts(c->name);
    return 0;
  }

  const char *rid = getenv("IPX_TEST_RUN");
  if (rid && *rid)
    snprintf(run_id, sizeof run_id, "%s", rid);
  else
    snprintf(run_id, sizeof run_id, "%08x",
             (unsigned)(((uint64_t)getpid() << 16) ^ (uint64_t)time(NULL) ^
                        (uint64_t)(now_ms() * 1000)));

  /* Orphans of a case (helpers it forked and did not reap) become ours, so
   * they can be killed and reaped rather than linger. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGTERM, runner_stopped);
  signal(SIGINT, runner_stopped);
  signal(SIGHUP, runner_stopped);

  int timeout_mult = ipx_test_slow_build() ? 5 : 1;
  const char *tm = getenv("IPX_TEST_TIMEOUT_MULT");
  if (tm && atoi(tm) > 0) timeout_mult = atoi(tm);

  int passed = 0, failed = 0, skipped = 0;
  unsigned index = 0;
  for (struct ipx_test_case *c = cases_head; c; c = c->next, index++) {
    if (!wanted(c->name, argc, argv)) continue;
    char prefix[128], tmpdir[256];
    snprintf(prefix, sizeof prefix, "t%s.%s.%u.", run_id, bin_name, index);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ipxt-%s-%s-%u-XXXXXX", run_id,
             bin_name, index);
    if (!mkdtemp(tmpdir)) {
      perror("mkdtemp");
      return 2;
    }
    printf("[ RUN  ] %s\n", c->name);
    fflush(stdout);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 2;
    }
    if (pid == 0) {
      setpgid(0, 0);
      /* SIGKILLed runner: the case goes too (its helpers are killed by
       * the runner's sweep, or are orphans of a killed case). */
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() == 1) _exit(EXIT_FAILED);
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      setenv("IPX_TEST_CASE_PREFIX", prefix, 1);
      setenv("IPX_TEST_TMPDIR", tmpdir, 1);
      seed_rng(index);
      c->fn();
      fflush(stdout);
      exit(0);
    }
    setpgid(pid, pid);
    current_case = pid;
    long limit = 1000L * (c->timeout_s ? c->timeout_s : 60) * timeout_mult;
    int st = ipx_test_wait(pid, limit);
    /* Kill and reap whatever the case left running. */
    kill(-pid, SIGKILL);
    current_case = 0;
    /* Orphans of the case are ours (subreaper): reap the whole group. */
    while (waitpid(-pid, NULL, 0) > 0 || errno == EINTR) {
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    char left[256] = "";
    int nleft = sweep_shm(prefix, left, sizeof left);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

    double ms = now_ms() - t0;
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == EXIT_SKIPPED) {
      printf("[ SKIP ] %s\n", c->name);
      skipped++;
    } else if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && nleft == 0) {
      printf("[  OK  ] %s (%.0f ms)\n", c->name, ms);
      passed++;
    } else {
      char why[400]; /* room for the name of what was left */
      if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        snprintf(why, sizeof why, "left %d object(s) in /dev/shm, e.g. %s",
                 nleft, left);
      else
        describe_status(st, why, sizeof why);
      printf("[ FAIL ] %s: %s (%.0f ms)\n", c->name, why, ms);
      failed++;
    }
    fflush(stdout);
  }
  printf("%s: %d passed, %d failed", bin_name, passed, failed);
  if (skipped) printf(", %d skipped", skipped);
  putchar('\n');

  const char *rdir = getenv("IPX_TEST_RESULTS_DIR");
  if (rdir && *rdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.txt", rdir, bin_name);
    FILE *f = fopen(path, "w");
    if (f) {
      fprintf(f, "%d %d %d\n", passed, failed, skipped);
      fclose(f);
    }
  }
  return failed ? 1 : 0;
}
