/* Managed walkthrough 3: a shared integer guarded by a mutex inside a
 * managed segment.  Parent and child (this program again, started with
 * --child) each find-or-construct the {mutex, counter} pair by name, so
 * whichever comes first constructs it and initialises the mutex, and then
 * both increment the counter under the mutex at the same time.
 *   managed_mutex [segment-name]                                         */
#include <ipx/ipx.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 10000

typedef struct shared_counter {
  ipx_mutex_t mutex;
  long value;
} shared_counter;

static int fail(const char *who, const char *what, int err) {
  fprintf(stderr, "%s: %s: %s (%s)\n", who, what, ipx_strerror(err),
          ipx_err_name(err));
  return 1;
}

/* Runs once, before anyone else can find the object. */
static int init_counter(void *elem, size_t k, void *ctx) {
  (void)k;
  (void)ctx;
  return ipx_mutex_init(&((shared_counter *)elem)->mutex);
}

static int increment(const char *who, const char *name) {
  ipx_segment_t *seg;
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_OPEN_OR_CREATE;
  int r = ipx_segment_open_shm(&seg, name, &o);
  if (r) return fail(who, "open", r);
  shared_counter *c;
  r = IPX_FIND_OR_CONSTRUCT_INIT(seg, shared_counter, "counter", 1,
                                 init_counter, NULL, &c);
  if (r) {
    ipx_segment_close(seg);
    return fail(who, "find_or_construct", r);
  }
  for (int k = 0; k < ROUNDS && !r; k++) {
    r = ipx_mutex_lock(&c->mutex);
    if (r) break;
    c->value++;
    r = ipx_mutex_unlock(&c->mutex);
  }
  if (r) fail(who, "lock", r);
  else printf("%s: added %d\n", who, ROUNDS);
  ipx_segment_close(seg);
  return r ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "--child") == 0)
    return increment("child", argv[2]);
  const char *name = argc > 1 ? argv[1] : "managed_mutex";
  ipx_segment_remove_shm(name); /* a leftover of an earlier run */
  fflush(stdout);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    perror("readlink /proc/self/exe");
    return 1;
  }
  self[n] = 0;
  pid_t pid = fork();
  if (pid == 0) {
    execl(self, argv[0], "--child", name, (char *)NULL);
    perror("exec");
    _exit(127);
  }
  int mine = increment("parent", name);
  int status = -1;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) status = -1;
  int ok = !mine && status != -1 && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;

  ipx_segment_t *seg;
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_OPEN_ONLY;
  int r = ipx_segment_open_shm(&seg, name, &o);
  if (r) return fail("parent", "reopen", r);
  shared_counter *c;
  long value = -1;
  if ((r = IPX_FIND(seg, shared_counter, "counter", &c, NULL)) == 0 &&
      (r = ipx_mutex_lock(&c->mutex)) == 0) {
    value = c->value;
    ipx_mutex_unlock(&c->mutex);
  }
  ipx_segment_close(seg);
  ipx_segment_remove_shm(name);
  if (r) return fail("parent", "find", r);
  printf("parent: counter is %ld (expected %d)\n", value, 2 * ROUNDS);
  return ok && value == 2 * ROUNDS ? 0 : 1;
}
