/* core: version, error codes, time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

IPX_TEST(version_matches_header) {
  IPX_ASSERT_STREQ(ipx_version(), IPX_VERSION_STRING);
  IPX_ASSERT_EQ(ipx_version_number(), IPX_VERSION_NUMBER);
}

IPX_TEST(own_codes_are_in_reserved_range_and_distinct) {
  static const int codes[] = {
#define X(name, value, msg) IPX_##name,
      IPX_ERRNO_MAP(X)
#undef X
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    IPX_ASSERT_LT(codes[i], IPX_ERRNO_BASE);
    IPX_ASSERT_GT(codes[i], IPX_ERRNO_LAST);
    IPX_ASSERT(strncmp(ipx_err_name(codes[i]), "IPX_E", 5) == 0);
    IPX_ASSERT(strcmp(ipx_strerror(codes[i]), "unknown error") != 0);
    for (size_t j = i + 1; j < n; j++) IPX_ASSERT_NE(codes[i], codes[j]);
  }
  /* Far from every errno value the kernel can return. */
  IPX_ASSERT_LT(IPX_ERRNO_BASE, -(int)4095 + 100);
}

IPX_TEST(system_errors_are_negative_errno) {
  IPX_ASSERT_STREQ(ipx_err_name(-ENOSPC), "ENOSPC");
  IPX_ASSERT(strstr(ipx_strerror(-ENOSPC), "space") != NULL);
  IPX_ASSERT_STREQ(ipx_strerror(0), "success");
  IPX_ASSERT_STREQ(ipx_strerror(IPX_ECORRUPT),
                   "object is corrupt or not an ipx object");
  IPX_ASSERT_STREQ(ipx_strerror(-3999999), "unknown error");
  IPX_ASSERT_STREQ(ipx_strerror(12345), "unknown error");
  IPX_ASSERT_STREQ(ipx_err_name(-4099), "unknown");
}

IPX_TEST(monotonic_time_and_deadlines) {
  uint64_t a = ipx_now();
  ipx_test_sleep_ms(5);
  uint64_t b = ipx_now();
  IPX_ASSERT_GE(b - a, 4 * IPX_MSEC);
  uint64_t d = ipx_deadline_after(IPX_SEC);
  IPX_ASSERT_GE(d, b + IPX_SEC);
  IPX_ASSERT(ipx_deadline_after(IPX_FOREVER) == IPX_FOREVER);
  IPX_ASSERT(ipx_deadline_after(IPX_FOREVER - 1) == IPX_FOREVER);
}

/* The harness itself: a crash, a failed child and a timeout in a case must
 * be seen, not swallowed.  Each is run in a forked child standing in for a
 * case. */
static void dies(void *arg) {
  (void)arg;
  ipx_test_expect_crash();
  /* A write to a read-only page: a real fault that no sanitizer intercepts
   * before the kernel does. */
  volatile int *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED) _exit(3);
  *ro = 1;
}
static void fails(void *arg) {
  (void)arg;
  IPX_ASSERT_EQ(1, 2);
}
static void hangs(void *arg) {
  (void)arg;
  for (;;) ipx_test_sleep_ms(1000);
}

IPX_TEST(harness_sees_crashes_failures_and_hangs) {
  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(dies, NULL), SIGSEGV);
  int st = ipx_test_wait(ipx_test_fork(fails, NULL), 0);
  IPX_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
  IPX_ASSERT_EQ(ipx_test_wait(ipx_test_fork(hangs, NULL), 200), -1);
}

IPX_TEST_PEER(echo_peer) {
  /* argv[0] is the peer name; exit with the number given. */
  return argc > 1 ? atoi(argv[1]) : 99;
}

IPX_TEST(harness_spawns_peers_by_exec) {
  pid_t p = ipx_test_spawn("echo_peer", "7", NULL);
  int st = ipx_test_wait(p, 10000);
  IPX_ASSERT(WIFEXITED(st));
  IPX_ASSERT_EQ(WEXITSTATUS(st), 7);
  IPX_ASSERT_CHILD_OK(ipx_test_spawn("echo_peer", "0", NULL));
}

IPX_TEST(test_names_carry_run_and_case) {
  char buf[128];
  ipx_test_name(buf, sizeof buf, "x");
  IPX_ASSERT(strstr(buf, ipx_test_run_id()) != NULL);
  IPX_ASSERT(strncmp(buf, ipx_test_case_prefix(), strlen(ipx_test_case_prefix())) == 0);
}

IPX_TEST(name_check) {
  char longest[IPX_NAME_MAX + 2];
  memset(longest, 'a', sizeof longest);
  longest[IPX_NAME_MAX] = 0;
  IPX_ASSERT_OK(ipx_name_check(longest));
  longest[IPX_NAME_MAX] = 'a';
  longest[IPX_NAME_MAX + 1] = 0;
  IPX_ASSERT_ERR(ipx_name_check(longest), IPX_EBADNAME);
  IPX_ASSERT_OK(ipx_name_check("a.b_c-D9"));
  IPX_ASSERT_ERR(ipx_name_check(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_name_check(""), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_name_check("."), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_name_check(".."), IPX_EBADNAME);
  IPX_ASSERT_OK(ipx_name_check("..."));
  IPX_ASSERT_ERR(ipx_name_check("a/b"), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_name_check("/a"), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_name_check("a b"), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_name_check("caf\xc3\xa9"), IPX_EBADNAME);
}

/* A runner stopped by a signal takes its running case and the case's peers
 * with it.  The hanging case only hangs when asked to (by the test below,
 * which runs this binary as a separate runner). */
IPX_TEST_PEER(sleeper_peer) {
  (void)argc;
  (void)argv;
  for (;;) ipx_test_sleep_ms(1000);
  return 0;
}

IPX_TEST(zz_hangs_when_asked) {
  const char *path = getenv("IPX_TEST_HANG_DEMO");
  if (!path) return;
  pid_t peer = ipx_test_spawn("sleeper_peer", NULL);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  IPX_ASSERT(f != NULL);
  fprintf(f, "%d %d\n", (int)getpid(), (int)peer);
  fclose(f);
  IPX_ASSERT_OK(rename(tmp, path) == 0 ? 0 : -errno);
  for (;;) ipx_test_sleep_ms(1000);
}

/* Gone, or a zombie waiting for its reaper. */
static int is_dead(pid_t pid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *paren = strrchr(buf, ')');
  return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

IPX_TEST(harness_runner_stopped_takes_its_case) {
  char path[512];
  snprintf(path, sizeof path, "%s/pids", ipx_test_tmpdir());
  fflush(stdout);
  pid_t runner = fork();
  IPX_ASSERT(runner >= 0);
  if (runner == 0) {
    setenv("IPX_TEST_HANG_DEMO", path, 1);
    unsetenv("IPX_TEST_RESULTS_DIR"); /* not part of this run's count */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    /* The path by readlink, as ipx_test_spawn does: under valgrind
     * /proc/self/exe names valgrind itself, and only readlink is told the
     * program's path. */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) _exit(126);
    self[len] = 0;
    execl(self, "test_core", "zz_hangs_when_asked", (char *)NULL);
    _exit(127);
  }
  int case_pid = 0, peer_pid = 0;
  for (int i = 0; i < 1000 && !case_pid; i++) {
    FILE *f = fopen(path, "r");
    if (f) {
      if (fscanf(f, "%d %d", &case_pid, &peer_pid) != 2) case_pid = 0;
      fclose(f);
    }
    if (!case_pid) ipx_test_sleep_ms(10);
  }
  IPX_ASSERT_GT(case_pid, 0);
  IPX_ASSERT(!is_dead(case_pid) && !is_dead(peer_pid));
  IPX_ASSERT_OK(kill(runner, SIGTERM));
  IPX_ASSERT_CHILD_SIGNALED(runner, SIGTERM);
  int gone = 0;
  for (int i = 0; i < 500 && !gone; i++) {
    gone = is_dead(case_pid) && is_dead(peer_pid);
    if (!gone) ipx_test_sleep_ms(10);
  }
  IPX_ASSERT(gone);
}
