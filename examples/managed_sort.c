/* Managed walkthrough 4: an array of 100 ints constructed by name (0..99)
 * that a child (this program again, started with --child) finds and sorts
 * in reverse; the parent then sees 99..0.
 *   managed_sort [segment-name]                                          */
#include <ipx/ipx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 100

static int fail(const char *who, const char *what, int err) {
  fprintf(stderr, "%s: %s: %s (%s)\n", who, what, ipx_strerror(err),
          ipx_err_name(err));
  return 1;
}

static int init_index(void *elem, size_t k, void *ctx) {
  (void)ctx;
  *(int *)elem = (int)k;
  return 0;
}

static int descending(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x < y) - (x > y);
}

static int child(const char *name) {
  ipx_segment_t *seg;
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_OPEN_ONLY;
  int r = ipx_segment_open_shm(&seg, name, &o);
  if (r) return fail("child", "open", r);
  int *v;
  size_t n = 0;
  if ((r = IPX_FIND(seg, int, "MyVector", &v, &n))) {
    ipx_segment_close(seg);
    return fail("child", "find", r);
  }
  qsort(v, n, sizeof *v, descending);
  printf("child: sorted %zu ints in reverse\n", n);
  ipx_segment_close(seg);
  return n == N ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
  const char *name = argc > 1 ? argv[1] : "managed_sort";
  ipx_segment_t *seg;
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_CREATE_ONLY;
  int r = ipx_segment_open_shm(&seg, name, &o);
  if (r) return fail("parent", "create", r);
  int *v;
  if ((r = IPX_CONSTRUCT_INIT(seg, int, "MyVector", N, init_index, NULL, &v))) {
    ipx_segment_close(seg);
    ipx_segment_remove_shm(name);
    return fail("parent", "construct", r);
  }
  printf("parent: \"MyVector\" holds %d %d %d ... %d\n", v[0], v[1], v[2],
         v[N - 1]);
  fflush(stdout);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  int status = -1;
  if (n > 0) {
    self[n] = 0;
    pid_t pid = fork();
    if (pid == 0) {
      execl(self, argv[0], "--child", name, (char *)NULL);
      perror("exec");
      _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) status = -1;
  }
  int sorted = 1;
  for (int k = 0; k < N; k++) sorted &= v[k] == N - 1 - k;
  printf("parent: now %d %d %d ... %d: %s\n", v[0], v[1], v[2], v[N - 1],
         sorted ? "sorted in reverse" : "NOT sorted");
  IPX_DESTROY(seg, int, "MyVector");
  ipx_segment_close(seg);
  ipx_segment_remove_shm(name);
  int ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return ok && sorted ? 0 : 1;
}
