/* named objects: create/open modes, permissions, kinds, races, a creator
 * killed mid-creation, a holder killed, bad input. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"
#include "ipx_test_shm.h"

static int try_excl_in_thread_r;
static void *try_excl_thread(void *p) {
  ipx_sharable_mutex_t *m = p;
  try_excl_in_thread_r = ipx_sharable_mutex_try_lock(m);
  if (try_excl_in_thread_r == 0) ipx_sharable_mutex_unlock(m);
  return NULL;
}

IPX_TEST(modes_kinds_and_remove) {
  char name[200];
  ipx_test_name(name, sizeof name, "rw");
  ipx_named_t *a = NULL, *b = NULL, *c = NULL;
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&a, name, IPX_OPEN_ONLY, 0), IPX_ENOTFOUND);
  IPX_ASSERT(a == NULL);
  IPX_ASSERT_OK(ipx_named_sharable_mutex_open(&a, name, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_EQ(ipx_named_created(a), 1);
  IPX_ASSERT_EQ(ipx_named_kind(a), IPX_NAMED_SHARABLE_MUTEX);
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&b, name, IPX_CREATE_ONLY, 0), IPX_EEXIST);
  IPX_ASSERT_OK(ipx_named_sharable_mutex_open(&b, name, IPX_OPEN_ONLY, 0));
  IPX_ASSERT_EQ(ipx_named_created(b), 0);
  IPX_ASSERT_OK(ipx_named_sharable_mutex_open(&c, name, IPX_OPEN_OR_CREATE, 0));
  IPX_ASSERT_EQ(ipx_named_created(c), 0);
  /* Another kind under that name is refused, not misread. */
  ipx_named_t *u = NULL;
  IPX_ASSERT_ERR(ipx_named_upgradable_mutex_open(&u, name, IPX_OPEN_ONLY, 0), IPX_EWRONGKIND);
  IPX_ASSERT_ERR(ipx_named_upgradable_mutex_open(&u, name, IPX_OPEN_OR_CREATE, 0), IPX_EWRONGKIND);
  IPX_ASSERT(ipx_named_upgradable_mutex(a) == NULL);
  IPX_ASSERT(ipx_named_sharable_mutex(NULL) == NULL);
  /* Two handles, one lock. */
  IPX_ASSERT_OK(ipx_sharable_mutex_lock(ipx_named_sharable_mutex(a)));
  pthread_t th;
  IPX_ASSERT_OK(pthread_create(&th, NULL, try_excl_thread, ipx_named_sharable_mutex(b)));
  pthread_join(th, NULL);
  IPX_ASSERT_ERR(try_excl_in_thread_r, IPX_EBUSY);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock(ipx_named_sharable_mutex(a)));
  IPX_ASSERT_OK(ipx_named_close(a));
  IPX_ASSERT_OK(ipx_named_close(b));
  IPX_ASSERT_OK(ipx_named_remove(name));
  IPX_ASSERT_ERR(ipx_named_remove(name), IPX_ENOTFOUND);
  /* The open handle keeps working after the name is gone. */
  IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(ipx_named_sharable_mutex(c)));
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(ipx_named_sharable_mutex(c)));
  IPX_ASSERT_OK(ipx_named_close(c));
  IPX_ASSERT_OK(ipx_named_close(NULL));
}

IPX_TEST(exact_permissions) {
  char name[200], path[300];
  ipx_test_name(name, sizeof name, "perm");
  ipx_named_t *n = NULL;
  mode_t old = umask(077);
  IPX_ASSERT_OK(ipx_named_upgradable_mutex_open(&n, name, IPX_CREATE_ONLY, 0640));
  umask(old);
  struct stat st;
  snprintf(path, sizeof path, "/dev/shm/ipx.%s", name);
  IPX_ASSERT_OK(stat(path, &st));
  IPX_ASSERT_EQ(st.st_mode & 0777, 0640);
  IPX_ASSERT_OK(ipx_named_close(n));
  IPX_ASSERT_OK(ipx_named_remove(name));
}

IPX_TEST(bad_input) {
  ipx_named_t *n = NULL;
  char name[200];
  ipx_test_name(name, sizeof name, "bad");
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(NULL, name, IPX_OPEN_OR_CREATE, 0), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&n, NULL, IPX_OPEN_OR_CREATE, 0), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&n, "", IPX_OPEN_OR_CREATE, 0), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&n, "a/b", IPX_OPEN_OR_CREATE, 0), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_named_upgradable_mutex_open(&n, "..", IPX_OPEN_OR_CREATE, 0), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&n, name, (ipx_open_mode_t)9, 0), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&n, name, IPX_OPEN_OR_CREATE, 01777), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_named_remove(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_named_remove("a b"), IPX_EBADNAME);
  IPX_ASSERT(n == NULL);
  /* A plain shared memory object under the name is not a named lock. */
  ipx_shm_t *s;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx_shm_resize(s, 4096, IPX_SHM_SPARSE));
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL));
  memcpy(ipx_region_address(r), "user data", 9);
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&n, name, IPX_OPEN_OR_CREATE, 0), IPX_EWRONGKIND);
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&n, name, IPX_OPEN_ONLY, 0), IPX_EWRONGKIND);
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&n, name, IPX_CREATE_ONLY, 0), IPX_EWRONGKIND);
  IPX_ASSERT(memcmp(ipx_region_address(r), "user data", 9) == 0);
  IPX_ASSERT_OK(ipx_region_unmap(r));
  IPX_ASSERT_OK(ipx_shm_close(s));
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

/* ---- racing creators ---------------------------------------------------- */
struct race {
  char name[200];
  ipx_test_gate_t gate;
  int created;
  long counter;
};

static void racer(void *p) {
  struct race *rc = p;
  ipx_test_gate_wait(&rc->gate);
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(ipx_named_upgradable_mutex_open(&n, rc->name, IPX_OPEN_OR_CREATE, 0));
  __atomic_fetch_add(&rc->created, ipx_named_created(n), __ATOMIC_SEQ_CST);
  ipx_upgradable_mutex_t *m = ipx_named_upgradable_mutex(n);
  for (int i = 0; i < 200; i++) {
    IPX_ASSERT_OK(ipx_upgradable_mutex_lock(m));
    long v = rc->counter;
    if (i % 50 == 0) sched_yield();
    rc->counter = v + 1;
    IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
  }
  IPX_ASSERT_OK(ipx_named_close(n));
}

IPX_TEST(open_or_create_race_builds_one_object) {
  struct race *rc = ipx_test_shared_alloc(sizeof *rc);
  ipx_test_name(rc->name, sizeof rc->name, "race");
  ipx_test_gate_init(&rc->gate);
  pid_t p[4];
  for (int i = 0; i < 4; i++) p[i] = ipx_test_fork(racer, rc);
  ipx_test_gate_open(&rc->gate);
  for (int i = 0; i < 4; i++) IPX_ASSERT_CHILD_OK(p[i]);
  IPX_ASSERT_EQ(rc->created, 1);
  IPX_ASSERT_EQ(rc->counter, 800);
  IPX_ASSERT_OK(ipx_named_remove(rc->name));
}

/* ---- a creator killed mid-creation ---------------------------------------- */
struct creator {
  char name[200];
  int ready;
  int created;
};

/* Does what a creator does up to the middle of initialisation: the object
 * exists, is locked for creation, sized, with half a header. */
static void half_creator(void *p) {
  struct creator *c = p;
  ipx_shm_t *s;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_shm_open(&s, c->name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  char path[300];
  snprintf(path, sizeof path, "/dev/shm/ipx.%s", c->name);
  ipx_file_lock_t *fl;
  IPX_ASSERT_OK(ipx_file_lock_open(&fl, path));
  IPX_ASSERT_OK(ipx_file_lock_lock(fl));
  IPX_ASSERT_OK(ipx_shm_resize(s, 4096, IPX_SHM_SPARSE));
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL));
  memcpy(ipx_region_address(r), "INMD", 4); /* magic only, never ready */
  __atomic_store_n(&c->ready, 1, __ATOMIC_SEQ_CST);
  for (;;) pause();
}

static void late_opener(void *p) {
  struct creator *c = p;
  ipx_named_t *n = NULL;
  /* Waits for the creator's lock; finds the object unfinished once the
   * creator is dead and builds it. */
  IPX_ASSERT_OK(ipx_named_sharable_mutex_open(&n, c->name, IPX_OPEN_OR_CREATE, 0));
  IPX_ASSERT_EQ(ipx_named_created(n), 1);
  IPX_ASSERT_OK(ipx_sharable_mutex_lock(ipx_named_sharable_mutex(n)));
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock(ipx_named_sharable_mutex(n)));
  IPX_ASSERT_OK(ipx_named_close(n));
}

IPX_TEST(creator_killed_mid_creation_does_not_hang_openers) {
  struct creator *c = ipx_test_shared_alloc(sizeof *c);
  ipx_test_name(c->name, sizeof c->name, "half");
  pid_t cr = ipx_test_fork(half_creator, c);
  while (!__atomic_load_n(&c->ready, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
  pid_t op = ipx_test_fork(late_opener, c);
  /* The opener waits while the creator lives. */
  ipx_test_sleep_ms(50);
  IPX_ASSERT_EQ(waitpid(op, NULL, WNOHANG), 0);
  kill(cr, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(cr, SIGKILL);
  IPX_ASSERT_CHILD_OK(op);
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(ipx_named_sharable_mutex_open(&n, c->name, IPX_OPEN_ONLY, 0));
  IPX_ASSERT_EQ(ipx_named_created(n), 0);
  IPX_ASSERT_OK(ipx_named_close(n));
  IPX_ASSERT_OK(ipx_named_remove(c->name));
}

IPX_TEST(half_created_object_is_not_found_then_rebuilt) {
  struct creator *c = ipx_test_shared_alloc(sizeof *c);
  ipx_test_name(c->name, sizeof c->name, "corpse");
  pid_t cr = ipx_test_fork(half_creator, c);
  while (!__atomic_load_n(&c->ready, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
  kill(cr, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(cr, SIGKILL);
  ipx_named_t *n = NULL;
  IPX_ASSERT_ERR(ipx_named_sharable_mutex_open(&n, c->name, IPX_OPEN_ONLY, 0), IPX_ENOTFOUND);
  /* create-only treats the corpse as no object at all */
  IPX_ASSERT_OK(ipx_named_sharable_mutex_open(&n, c->name, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_EQ(ipx_named_created(n), 1);
  IPX_ASSERT_OK(ipx_named_close(n));
  IPX_ASSERT_OK(ipx_named_remove(c->name));
}

/* ---- a holder killed --------------------------------------------------------- */
static void named_holder(void *p) {
  struct creator *c = p;
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(ipx_named_upgradable_mutex_open(&n, c->name, IPX_OPEN_ONLY, 0));
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock(ipx_named_upgradable_mutex(n)));
  __atomic_store_n(&c->ready, 1, __ATOMIC_SEQ_CST);
  for (;;) pause();
}

IPX_TEST(killed_holder_of_named_lock_gives_eownerdead) {
  struct creator *c = ipx_test_shared_alloc(sizeof *c);
  ipx_test_name(c->name, sizeof c->name, "held");
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(ipx_named_upgradable_mutex_open(&n, c->name, IPX_CREATE_ONLY, 0));
  pid_t h = ipx_test_fork(named_holder, c);
  while (!__atomic_load_n(&c->ready, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
  ipx_upgradable_mutex_t *m = ipx_named_upgradable_mutex(n);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_try_lock(m), IPX_EBUSY);
  kill(h, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(h, SIGKILL);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock_for(m, 10 * IPX_SEC), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_upgradable_mutex_consistent(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
  IPX_ASSERT_OK(ipx_named_close(n));
  IPX_ASSERT_OK(ipx_named_remove(c->name));
}

/* ---- readers and writers in exec'd peers (each maps the lock elsewhere) -- */
#define NF 8
typedef struct rwdata {
  long rec[NF];
  long writes, reads, bad_reads;
  int hold_ready;
} rwdata_t;

static rwdata_t *map_data(const char *name, ipx_shm_t **s, ipx_region_t **r,
                          int create) {
  return ipx_test_map_shm(name, 4096, create, s, r);
}

/* argv: role (r reader, w writer, h reader that holds its share until
 * killed) lock data iterations */
IPX_TEST_PEER(rw_peer) {
  if (argc < 5) return 2;
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(ipx_named_sharable_mutex_open(&n, argv[2], IPX_OPEN_ONLY, 0));
  ipx_sharable_mutex_t *m = ipx_named_sharable_mutex(n);
  ipx_shm_t *s;
  ipx_region_t *r;
  rwdata_t *d = map_data(argv[3], &s, &r, 0);
  long iters = atol(argv[4]);
  char role = argv[1][0];
  if (role == 'h') {
    IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(m));
    __atomic_store_n(&d->hold_ready, 1, __ATOMIC_SEQ_CST);
    for (;;) pause();
  }
  for (long i = 0; i < iters; i++) {
    if (role == 'w') {
      IPX_ASSERT_OK(ipx_sharable_mutex_lock_for(m, 20 * IPX_SEC));
      long v = d->rec[0];
      for (int f = 0; f < NF; f++) {
        d->rec[f] = v + 1;
        if (f == NF / 2 && i % 8 == 0) sched_yield();
      }
      d->writes++;
      IPX_ASSERT_OK(ipx_sharable_mutex_unlock(m));
    } else {
      IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable_for(m, 20 * IPX_SEC));
      long v = d->rec[0];
      if (i % 16 == 0) sched_yield();
      for (int f = 1; f < NF; f++)
        if (d->rec[f] != v) __atomic_fetch_add(&d->bad_reads, 1, __ATOMIC_SEQ_CST);
      __atomic_fetch_add(&d->reads, 1, __ATOMIC_SEQ_CST);
      IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
    }
  }
  IPX_ASSERT_OK(ipx_named_close(n));
  IPX_ASSERT_OK(ipx_region_unmap(r));
  IPX_ASSERT_OK(ipx_shm_close(s));
  return 0;
}

IPX_TEST(readers_and_writers_between_exec_peers_survive_a_killed_reader) {
  char ln[200], dn[200];
  ipx_test_name(ln, sizeof ln, "rwl");
  ipx_test_name(dn, sizeof dn, "rwd");
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(ipx_named_sharable_mutex_open(&n, ln, IPX_CREATE_ONLY, 0));
  ipx_shm_t *s;
  ipx_region_t *r;
  rwdata_t *d = map_data(dn, &s, &r, 1);
  long iters = ipx_test_scale(3000, 100);
  char its[32];
  snprintf(its, sizeof its, "%ld", iters);
  /* A reader that will be killed holding its share. */
  pid_t h = ipx_test_spawn("rw_peer", "h", ln, dn, its, NULL);
  uint64_t end = ipx_deadline_after(20 * IPX_SEC);
  while (!__atomic_load_n(&d->hold_ready, __ATOMIC_SEQ_CST)) {
    if (ipx_now() > end) IPX_FAIL("holder never took its share");
    ipx_test_sleep_ms(1);
  }
  pid_t p[5];
  for (int i = 0; i < 3; i++) p[i] = ipx_test_spawn("rw_peer", "r", ln, dn, its, NULL);
  for (int i = 3; i < 5; i++) p[i] = ipx_test_spawn("rw_peer", "w", ln, dn, its, NULL);
  /* The writers cannot finish before the dead reader's share is
   * reclaimed. */
  ipx_test_sleep_ms(20);
  IPX_ASSERT_EQ(d->writes, 0);
  kill(h, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(h, SIGKILL);
  for (int i = 0; i < 5; i++) IPX_ASSERT_CHILD_OK(p[i]);
  IPX_ASSERT_EQ(d->bad_reads, 0);
  IPX_ASSERT_EQ(d->writes, 2 * iters);
  IPX_ASSERT_EQ(d->reads, 3 * iters);
  for (int f = 0; f < NF; f++) IPX_ASSERT_EQ(d->rec[f], 2 * iters);
  /* Nothing is left held. */
  IPX_ASSERT_OK(ipx_sharable_mutex_try_lock(ipx_named_sharable_mutex(n)));
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock(ipx_named_sharable_mutex(n)));
  IPX_ASSERT_OK(ipx_named_close(n));
  IPX_ASSERT_OK(ipx_region_unmap(r));
  IPX_ASSERT_OK(ipx_shm_close(s));
  IPX_ASSERT_OK(ipx_named_remove(ln));
  IPX_ASSERT_OK(ipx_shm_remove(dn));
}
