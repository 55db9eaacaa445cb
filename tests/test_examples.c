/* examples: every walkthrough in examples/ runs, succeeds and says what it
 * did.  IPX_EXAMPLES_DIR is the build directory of the examples. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

#ifndef IPX_EXAMPLES_DIR
#define IPX_EXAMPLES_DIR ""
#endif

/* Run example `prog` with argument `arg`; returns its wait status and puts
 * its stdout in out. */
static int run(const char *prog, const char *arg, char *out, size_t len) {
  char path[1024];
  struct stat st;
  if (!*IPX_EXAMPLES_DIR) IPX_SKIP("examples are not built (IPX_BUILD_EXAMPLES=OFF)");
  snprintf(path, sizeof path, "%s/%s", IPX_EXAMPLES_DIR, prog);
  if (stat(path, &st) != 0) IPX_FAIL("%s: %s", path, strerror(errno));
  int fd[2];
  IPX_ASSERT_OK(pipe(fd));
  fflush(stdout);
  pid_t pid = fork();
  IPX_ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    execl(path, prog, arg, (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd[0], out + n, len - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || n + (size_t)r >= len - 1) {
      if (r > 0) n += (size_t)r;
      break;
    }
    n += (size_t)r;
  }
  out[n] = 0;
  close(fd[0]);
  int status = ipx_test_wait(pid, 60000L * (ipx_test_slow_build() ? 5 : 1));
  printf("--- %s %s\n%s", prog, arg, out);
  return status;
}

#define ASSERT_EXIT(st, code) \
  IPX_ASSERT((st) != -1 && WIFEXITED(st) && WEXITSTATUS(st) == (code))
#define ASSERT_SAYS(out, what) IPX_ASSERT(strstr((out), (what)) != NULL)

static void assert_gone(const char *name) {
  ipx_shm_t *s;
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0),
                 IPX_ENOTFOUND);
}

IPX_TEST(shm_hello) {
  char name[128], out[8192];
  ipx_test_name(name, sizeof name, "hello");
  int st = run("shm_hello", name, out, sizeof out);
  ASSERT_EXIT(st, 0);
  ASSERT_SAYS(out, "read back: Hello, ipx!");
  ASSERT_SAYS(out, "removed");
  assert_gone(name);
  /* An invalid name is reported, not crashed on. */
  st = run("shm_hello", "bad/name", out, sizeof out);
  ASSERT_EXIT(st, 1);
}

IPX_TEST(shm_parent_child) {
  char name[128], out[8192];
  ipx_test_name(name, sizeof name, "pc");
  int st = run("shm_parent_child", name, out, sizeof out);
  ASSERT_EXIT(st, 0);
  ASSERT_SAYS(out, "1000 bytes, 0 wrong");
  ASSERT_SAYS(out, "child found every byte right");
  assert_gone(name);
}

IPX_TEST(shm_writer_then_reader) {
  char name[128], out[8192];
  ipx_test_name(name, sizeof name, "msg");
  int st = run("shm_writer", name, out, sizeof out);
  ASSERT_EXIT(st, 0);
  /* The object waits for the reader. */
  ipx_shm_t *s;
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  ipx_shm_close(s);
  st = run("shm_reader", name, out, sizeof out);
  ASSERT_EXIT(st, 0);
  ASSERT_SAYS(out, "a message left in");
  ASSERT_SAYS(out, "by the writer");
  assert_gone(name);
  /* Nothing left to read now. */
  st = run("shm_reader", name, out, sizeof out);
  ASSERT_EXIT(st, 1);
}

IPX_TEST(offset_list) {
  char name[128], out[8192];
  ipx_test_name(name, sizeof name, "list");
  int st = run("offset_list", name, out, sizeof out);
  ASSERT_EXIT(st, 0);
  ASSERT_SAYS(out, "child: list at");
  ASSERT_SAYS(out, ": 0 1 4 9 16 25 36 49 64 81\nparent: the child walked");
  assert_gone(name);
}

IPX_TEST(managed_alloc) {
  char name[128], out[8192];
  ipx_test_name(name, sizeof name, "alloc");
  int st = run("managed_alloc", name, out, sizeof out);
  ASSERT_EXIT(st, 0);
  ASSERT_SAYS(out, "parent: allocated 1024 bytes at");
  ASSERT_SAYS(out, "through a managed segment!\"\n");
  ASSERT_SAYS(out, "deallocated the block");
  ASSERT_SAYS(out, "(exactly as before), all memory deallocated: yes");
  assert_gone(name);
  /* An invalid name is reported, not crashed on. */
  st = run("managed_alloc", "bad/name", out, sizeof out);
  ASSERT_EXIT(st, 1);
}

static void assert_segment_gone(const char *name) {
  ipx_segment_t *s;
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_OPEN_ONLY;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &o), IPX_ENOTFOUND);
}

IPX_TEST(managed_named) {
  char name[128], out[8192];
  ipx_test_name(name, sizeof name, "named");
  int st = run("managed_named", name, out, sizeof out);
  ASSERT_EXIT(st, 0);
  ASSERT_SAYS(out, "parent: constructed 3 named objects");
  ASSERT_SAYS(out, "child: found \"MyType instance\", 1 element\n");
  ASSERT_SAYS(out, "child: found \"MyType array\", 10 elements\n");
  ASSERT_SAYS(out, "child: found \"MyType array from it\", 3 elements: "
                   "{0.0, 0} {1.0, 1} {2.0, 2}");
  ASSERT_SAYS(out, "parent: child succeeded; 0 of the objects left, 0 named");
  assert_segment_gone(name);
}

IPX_TEST(managed_mutex) {
  char name[128], out[8192];
  ipx_test_name(name, sizeof name, "mutex");
  int st = run("managed_mutex", name, out, sizeof out);
  ASSERT_EXIT(st, 0);
  ASSERT_SAYS(out, "child: added 10000");
  ASSERT_SAYS(out, "parent: added 10000");
  ASSERT_SAYS(out, "parent: counter is 20000 (expected 20000)");
  assert_segment_gone(name);
}

IPX_TEST(managed_sort) {
  char name[128], out[8192];
  ipx_test_name(name, sizeof name, "sort");
  int st = run("managed_sort", name, out, sizeof out);
  ASSERT_EXIT(st, 0);
  ASSERT_SAYS(out, "parent: \"MyVector\" holds 0 1 2 ... 99");
  ASSERT_SAYS(out, "child: sorted 100 ints in reverse");
  ASSERT_SAYS(out, "parent: now 99 98 97 ... 0: sorted in reverse");
  assert_segment_gone(name);
}
