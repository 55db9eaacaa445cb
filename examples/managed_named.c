/* Managed walkthrough 2: named objects.  The parent creates a managed
 * segment and constructs, by name, a {double, int} object "MyType
 * instance", an array of 10 "MyType array", and an array of 3 "MyType array
 * from it" initialised element by element from two arrays.  A child (this
 * program again, started with --child) finds the three with their counts
 * and destroys them; the parent then finds none.  (Boost: the
 * managed_shared_memory construct / find / destroy example.)
 *   managed_named [segment-name]                                         */
#include <ipx/ipx.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct my_type {
  double d;
  int i;
} my_type;

static const char *const names[] = {"MyType instance", "MyType array",
                                    "MyType array from it"};

static int fail(const char *who, const char *what, int err) {
  fprintf(stderr, "%s: %s: %s (%s)\n", who, what, ipx_strerror(err),
          ipx_err_name(err));
  return 1;
}

/* The constructor: every element from the next values of two arrays. */
struct from_arrays {
  const double *d;
  const int *i;
};
static int init_from(void *elem, size_t k, void *ctx) {
  const struct from_arrays *f = ctx;
  my_type *m = elem;
  m->d = f->d[k];
  m->i = f->i[k];
  return 0;
}

static int child(const char *name) {
  ipx_segment_t *seg;
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_OPEN_ONLY;
  int r = ipx_segment_open_shm(&seg, name, &o);
  if (r) return fail("child", "open", r);
  const size_t want[3] = {1, 10, 3};
  int ok = 1;
  for (int k = 0; k < 3; k++) {
    my_type *m;
    size_t n = 0;
    r = IPX_FIND(seg, my_type, names[k], &m, &n);
    if (r) {
      ok = !fail("child", names[k], r);
      continue;
    }
    printf("child: found \"%s\", %zu element%s", names[k], n,
           n == 1 ? "" : "s");
    if (k == 2)
      printf(": {%.1f, %d} {%.1f, %d} {%.1f, %d}", m[0].d, m[0].i, m[1].d,
             m[1].i, m[2].d, m[2].i);
    printf("\n");
    ok &= n == want[k];
    if (k == 2)
      for (int j = 0; j < 3; j++) ok &= m[j].d == (double)j && m[j].i == j;
    if ((r = IPX_DESTROY(seg, my_type, names[k]))) ok = !fail("child", "destroy", r);
  }
  printf("child: destroyed them\n");
  ipx_segment_close(seg);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
  const char *name = argc > 1 ? argv[1] : "managed_named";
  ipx_segment_t *seg;
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_CREATE_ONLY;
  o.size = 65536;
  int r = ipx_segment_open_shm(&seg, name, &o);
  if (r) return fail("parent", "create", r);

  my_type *m;
  const double d[3] = {0.0, 1.0, 2.0};
  const int i[3] = {0, 1, 2};
  struct from_arrays from = {d, i};
  if ((r = IPX_CONSTRUCT(seg, my_type, names[0], 1, &m)) ||
      (r = IPX_CONSTRUCT(seg, my_type, names[1], 10, &m)) ||
      (r = IPX_CONSTRUCT_INIT(seg, my_type, names[2], 3, init_from, &from,
                              &m))) {
    ipx_segment_close(seg);
    ipx_segment_remove_shm(name);
    return fail("parent", "construct", r);
  }
  uint64_t count = 0;
  ipx_segment_named_count(seg, &count);
  printf("parent: constructed %llu named objects in \"%s\"\n",
         (unsigned long long)count, name);

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
  int ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  int left = 0;
  for (int k = 0; k < 3; k++) {
    size_t cnt;
    if (IPX_FIND(seg, my_type, names[k], &m, &cnt) != IPX_ENOTFOUND) left++;
  }
  ipx_segment_named_count(seg, &count);
  printf("parent: child %s; %d of the objects left, %llu named\n",
         ok ? "succeeded" : "FAILED", left, (unsigned long long)count);
  ipx_segment_close(seg);
  ipx_segment_remove_shm(name);
  return ok && left == 0 && count == 0 ? 0 : 1;
}
