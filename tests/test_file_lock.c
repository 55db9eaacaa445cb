/* file locks: OFD semantics between processes, between handles of one
 * process, between threads, holder death, timeouts, bad input. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

static const char *make_file(char *buf, size_t len) {
  snprintf(buf, len, "%s/lockfile", ipx_test_tmpdir());
  int fd = open(buf, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) IPX_FAIL("open %s: %s", buf, strerror(errno));
  close(fd);
  return buf;
}

static ipx_file_lock_t *open_lock(const char *path) {
  ipx_file_lock_t *fl = NULL;
  IPX_ASSERT_OK(ipx_file_lock_open(&fl, path));
  IPX_ASSERT(fl != NULL);
  return fl;
}

IPX_TEST(two_handles_in_one_process_exclude_each_other) {
  char path[512];
  make_file(path, sizeof path);
  ipx_file_lock_t *a = open_lock(path), *b = open_lock(path);
  IPX_ASSERT_OK(ipx_file_lock_lock(a));
  IPX_ASSERT_ERR(ipx_file_lock_try_lock(b), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock_sharable(b), IPX_EBUSY);
  /* Closing an unrelated descriptor of the file keeps a's lock (it would
   * drop a per-process fcntl lock). */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  IPX_ASSERT(fd >= 0);
  close(fd);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock(b), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_file_lock_unlock(a));
  IPX_ASSERT_OK(ipx_file_lock_try_lock(b));
  IPX_ASSERT_ERR(ipx_file_lock_try_lock_sharable(a), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_file_lock_unlock(b));
  /* Sharable locks coexist and keep writers out. */
  IPX_ASSERT_OK(ipx_file_lock_lock_sharable(a));
  IPX_ASSERT_OK(ipx_file_lock_try_lock_sharable(b));
  ipx_file_lock_t *c = open_lock(path);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock(c), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_file_lock_unlock_sharable(a));
  IPX_ASSERT_ERR(ipx_file_lock_try_lock(c), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_file_lock_unlock_sharable(b));
  IPX_ASSERT_OK(ipx_file_lock_try_lock(c));
  IPX_ASSERT_OK(ipx_file_lock_close(c)); /* close releases */
  IPX_ASSERT_OK(ipx_file_lock_try_lock(a));
  IPX_ASSERT_OK(ipx_file_lock_close(a));
  IPX_ASSERT_OK(ipx_file_lock_close(b));
}

struct peer_arg {
  const char *path;
  ipx_test_gate_t *gate;
  int *ready;
};

static void try_from_child(void *p) {
  struct peer_arg *a = p;
  ipx_file_lock_t *fl = open_lock(a->path);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock(fl), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock_sharable(fl), IPX_EBUSY);
  uint64_t t0 = ipx_now();
  IPX_ASSERT_ERR(ipx_file_lock_lock_for(fl, 30 * IPX_MSEC), IPX_ETIMEDOUT);
  IPX_ASSERT_GE(ipx_now() - t0, 30 * IPX_MSEC);
  __atomic_store_n(a->ready, 1, __ATOMIC_SEQ_CST);
  /* Blocks in the kernel until the parent unlocks. */
  IPX_ASSERT_OK(ipx_file_lock_lock(fl));
  IPX_ASSERT_OK(ipx_file_lock_unlock(fl));
  IPX_ASSERT_OK(ipx_file_lock_close(fl));
}

IPX_TEST(exclusive_between_processes) {
  char path[512];
  make_file(path, sizeof path);
  int *ready = ipx_test_shared_alloc(4096);
  ipx_file_lock_t *fl = open_lock(path);
  IPX_ASSERT_OK(ipx_file_lock_lock(fl));
  struct peer_arg a = {path, NULL, ready};
  pid_t pid = ipx_test_fork(try_from_child, &a);
  while (!__atomic_load_n(ready, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
  ipx_test_sleep_ms(20);
  IPX_ASSERT_OK(ipx_file_lock_unlock(fl));
  IPX_ASSERT_CHILD_OK(pid);
  IPX_ASSERT_OK(ipx_file_lock_close(fl));
}

static void hold_and_wait(void *p) {
  struct peer_arg *a = p;
  ipx_file_lock_t *fl = open_lock(a->path);
  IPX_ASSERT_OK(ipx_file_lock_lock(fl));
  __atomic_store_n(a->ready, 1, __ATOMIC_SEQ_CST);
  for (;;) pause();
}

IPX_TEST(lock_disappears_when_holder_is_killed) {
  char path[512];
  make_file(path, sizeof path);
  int *ready = ipx_test_shared_alloc(4096);
  struct peer_arg a = {path, NULL, ready};
  pid_t pid = ipx_test_fork(hold_and_wait, &a);
  while (!__atomic_load_n(ready, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
  ipx_file_lock_t *fl = open_lock(path);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock_sharable(fl), IPX_EBUSY);
  kill(pid, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(pid, SIGKILL);
  IPX_ASSERT_OK(ipx_file_lock_lock_for(fl, 10 * IPX_SEC));
  IPX_ASSERT_OK(ipx_file_lock_close(fl));
}

static void *release_later(void *p) {
  ipx_test_sleep_ms(40);
  IPX_ASSERT_OK(ipx_file_lock_unlock(p));
  return NULL;
}

IPX_TEST(timeouts) {
  char path[512];
  make_file(path, sizeof path);
  ipx_file_lock_t *a = open_lock(path), *b = open_lock(path);
  IPX_ASSERT_OK(ipx_file_lock_lock_sharable(a));
  uint64_t t0 = ipx_now();
  IPX_ASSERT_ERR(ipx_file_lock_lock_for(b, 40 * IPX_MSEC), IPX_ETIMEDOUT);
  uint64_t el = ipx_now() - t0;
  IPX_ASSERT_GE(el, 40 * IPX_MSEC);
  IPX_ASSERT_LT(el, 5 * IPX_SEC);
  /* A deadline in the past is a try. */
  IPX_ASSERT_ERR(ipx_file_lock_lock_until(b, 0), IPX_ETIMEDOUT);
  IPX_ASSERT_OK(ipx_file_lock_lock_sharable_until(b, 0));
  IPX_ASSERT_OK(ipx_file_lock_unlock_sharable(b));
  IPX_ASSERT_OK(ipx_file_lock_unlock_sharable(a));
  /* A timed wait succeeds when the holder releases before the deadline. */
  IPX_ASSERT_OK(ipx_file_lock_lock(a));
  pthread_t th;
  IPX_ASSERT_OK(pthread_create(&th, NULL, release_later, a));
  t0 = ipx_now();
  IPX_ASSERT_OK(ipx_file_lock_lock_sharable_for(b, 20 * IPX_SEC));
  IPX_ASSERT_GE(ipx_now() - t0, 30 * IPX_MSEC);
  pthread_join(th, NULL);
  /* b reads now: another reader joins, a writer times out. */
  IPX_ASSERT_OK(ipx_file_lock_lock_sharable_for(a, 10 * IPX_MSEC));
  IPX_ASSERT_OK(ipx_file_lock_unlock_sharable(a));
  IPX_ASSERT_ERR(ipx_file_lock_lock_until(a, ipx_deadline_after(10 * IPX_MSEC)),
                 IPX_ETIMEDOUT);
  IPX_ASSERT_OK(ipx_file_lock_unlock_sharable(b));
  IPX_ASSERT_OK(ipx_file_lock_close(a));
  IPX_ASSERT_OK(ipx_file_lock_close(b));
}

struct thr {
  const char *path;
  long iters;
  long *counter;
  int *inside;
};

static void *thread_worker(void *p) {
  struct thr *t = p;
  ipx_file_lock_t *fl = open_lock(t->path);
  for (long i = 0; i < t->iters; i++) {
    IPX_ASSERT_OK(ipx_file_lock_lock(fl));
    IPX_ASSERT_EQ(__atomic_fetch_add(t->inside, 1, __ATOMIC_SEQ_CST), 0);
    long v = __atomic_load_n(t->counter, __ATOMIC_RELAXED);
    sched_yield();
    __atomic_store_n(t->counter, v + 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(t->inside, 1, __ATOMIC_SEQ_CST);
    IPX_ASSERT_OK(ipx_file_lock_unlock(fl));
  }
  IPX_ASSERT_OK(ipx_file_lock_close(fl));
  return NULL;
}

IPX_TEST(threads_with_own_handles_exclude_each_other) {
  /* valgrind 3.19 does not know F_OFD_SETLKW may block: it runs the call
   * holding its one big lock, so the holder thread never gets to unlock. */
  if (ipx_test_under_valgrind())
    IPX_SKIP("valgrind serialises threads across a blocking F_OFD_SETLKW");
  char path[512];
  make_file(path, sizeof path);
  long counter = 0;
  int inside = 0;
  struct thr t = {path, ipx_test_scale(500, 20), &counter, &inside};
  pthread_t th[3];
  for (int i = 0; i < 3; i++)
    IPX_ASSERT_OK(pthread_create(&th[i], NULL, thread_worker, &t));
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  IPX_ASSERT_EQ(counter, 3 * t.iters);
}

static void child_of_fork(void *p) {
  struct peer_arg *a = p;
  /* A fresh handle in the child conflicts with the lock the parent holds
   * (and the child shares through the inherited descriptor). */
  ipx_file_lock_t *fl = open_lock(a->path);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock_sharable(fl), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_file_lock_close(fl));
}

static ipx_file_lock_t *inherited;
static void child_closes_inherited(void *p) {
  (void)p;
  IPX_ASSERT_OK(ipx_file_lock_close(inherited));
}

IPX_TEST(fork_shares_the_lock) {
  char path[512];
  make_file(path, sizeof path);
  inherited = open_lock(path);
  IPX_ASSERT_OK(ipx_file_lock_lock(inherited));
  struct peer_arg a = {path, NULL, NULL};
  IPX_ASSERT_CHILD_OK(ipx_test_fork(child_of_fork, &a));
  /* The child's close of its inherited copy does not unlock the parent. */
  IPX_ASSERT_CHILD_OK(ipx_test_fork(child_closes_inherited, NULL));
  ipx_file_lock_t *b = open_lock(path);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock_sharable(b), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_file_lock_unlock(inherited));
  IPX_ASSERT_OK(ipx_file_lock_try_lock_sharable(b));
  IPX_ASSERT_OK(ipx_file_lock_close(b));
  IPX_ASSERT_OK(ipx_file_lock_close(inherited));
}

IPX_TEST(bad_input) {
  char path[512];
  make_file(path, sizeof path);
  ipx_file_lock_t *fl = NULL;
  IPX_ASSERT_ERR(ipx_file_lock_open(NULL, path), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_open(&fl, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_open(&fl, ""), IPX_EINVAL);
  char missing[600];
  snprintf(missing, sizeof missing, "%s/none", ipx_test_tmpdir());
  IPX_ASSERT_ERR(ipx_file_lock_open(&fl, missing), IPX_ENOTFOUND);
  IPX_ASSERT(fl == NULL);
  IPX_ASSERT_ERR(ipx_file_lock_open(&fl, ipx_test_tmpdir()), -EISDIR);
  IPX_ASSERT_ERR(ipx_file_lock_lock(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_lock_for(NULL, 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_lock_until(NULL, 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_lock_sharable(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock_sharable(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_lock_sharable_for(NULL, 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_lock_sharable_until(NULL, 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_unlock(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_lock_unlock_sharable(NULL), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_file_lock_close(NULL));

  fl = open_lock(path);
  /* Releasing what the handle does not hold. */
  IPX_ASSERT_ERR(ipx_file_lock_unlock(fl), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_file_lock_unlock_sharable(fl), IPX_ENOTOWNER);
  IPX_ASSERT_OK(ipx_file_lock_lock_sharable(fl));
  IPX_ASSERT_ERR(ipx_file_lock_unlock(fl), IPX_ENOTOWNER);
  /* Locking twice through one handle. */
  IPX_ASSERT_ERR(ipx_file_lock_lock(fl), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock_sharable(fl), IPX_EDEADLK);
  IPX_ASSERT_OK(ipx_file_lock_unlock_sharable(fl));
  IPX_ASSERT_OK(ipx_file_lock_close(fl));

}

/* Exclusive locking needs a handle opened read-write; a file the caller
 * may only read gives a read-only handle: sharable works (and excludes
 * writers elsewhere), exclusive is refused in every form. */
struct ro {
  char path[512];
  int held, release;
};

static void read_only_handle(void *p) {
  struct ro *ro = p;
  if (geteuid() == 0) {
    /* root opens anything read-write: become nobody first. */
    IPX_ASSERT_OK(setgid(65534));
    IPX_ASSERT_OK(setuid(65534));
  }
  ipx_file_lock_t *fl = open_lock(ro->path);
  IPX_ASSERT_ERR(ipx_file_lock_lock(fl), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock(fl), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_file_lock_lock_for(fl, IPX_MSEC), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_file_lock_lock_until(fl, ipx_now() + IPX_MSEC), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_file_lock_unlock(fl), IPX_ENOTOWNER);
  IPX_ASSERT_OK(ipx_file_lock_lock_sharable(fl));
  IPX_ASSERT_ERR(ipx_file_lock_lock(fl), IPX_EDEADLK);
  __atomic_store_n(&ro->held, 1, __ATOMIC_SEQ_CST);
  while (!__atomic_load_n(&ro->release, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
  IPX_ASSERT_OK(ipx_file_lock_unlock_sharable(fl));
  IPX_ASSERT_OK(ipx_file_lock_close(fl));
}

IPX_TEST(exclusive_lock_on_read_only_file_is_ereadonly) {
  struct ro *ro = ipx_test_shared_alloc(sizeof *ro);
  make_file(ro->path, sizeof ro->path);
  IPX_ASSERT_OK(chmod(ro->path, 0444));
  /* Let the unprivileged child reach the file (mkdtemp made it 0700). */
  IPX_ASSERT_OK(chmod(ipx_test_tmpdir(), 0711));
  pid_t c = ipx_test_fork(read_only_handle, ro);
  while (!__atomic_load_n(&ro->held, __ATOMIC_SEQ_CST)) {
    IPX_ASSERT_EQ(waitpid(c, NULL, WNOHANG), 0);
    ipx_test_sleep_ms(1);
  }
  ipx_file_lock_t *fl = open_lock(ro->path);
  IPX_ASSERT_ERR(ipx_file_lock_try_lock(fl), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_file_lock_try_lock_sharable(fl));
  IPX_ASSERT_OK(ipx_file_lock_unlock_sharable(fl));
  __atomic_store_n(&ro->release, 1, __ATOMIC_SEQ_CST);
  IPX_ASSERT_CHILD_OK(c);
  IPX_ASSERT_OK(ipx_file_lock_try_lock(fl));
  IPX_ASSERT_OK(ipx_file_lock_unlock(fl));
  IPX_ASSERT_OK(ipx_file_lock_close(fl));
}
