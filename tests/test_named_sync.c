/* named mutex, recursive mutex, condition and semaphore: modes, exact
 * permissions, bad input, wrong kinds across all six kinds, holders killed,
 * creators killed mid-creation, and cross-process use by exec'd peers that
 * open the objects by name (so every process maps them elsewhere). */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"
#include "ipx_test_shm.h"

#define NOBODY 65534

static const ipx_named_kind_t all_kinds[] = {
    IPX_NAMED_MUTEX,     IPX_NAMED_RECURSIVE_MUTEX, IPX_NAMED_CONDITION,
    IPX_NAMED_SEMAPHORE, IPX_NAMED_SHARABLE_MUTEX,  IPX_NAMED_UPGRADABLE_MUTEX};
#define NKINDS (int)(sizeof all_kinds / sizeof all_kinds[0])
/* The four kinds this file is about come first. */
#define NNEW 4

static int open_kind(ipx_named_kind_t k, ipx_named_t **n, const char *name,
                     ipx_open_mode_t mode, unsigned perm) {
  switch (k) {
    case IPX_NAMED_MUTEX: return ipx_named_mutex_open(n, name, mode, perm);
    case IPX_NAMED_RECURSIVE_MUTEX:
      return ipx_named_recursive_mutex_open(n, name, mode, perm);
    case IPX_NAMED_CONDITION: return ipx_named_condition_open(n, name, mode, perm);
    case IPX_NAMED_SEMAPHORE:
      return ipx_named_semaphore_open(n, name, mode, perm, 1);
    case IPX_NAMED_SHARABLE_MUTEX:
      return ipx_named_sharable_mutex_open(n, name, mode, perm);
    case IPX_NAMED_UPGRADABLE_MUTEX:
      return ipx_named_upgradable_mutex_open(n, name, mode, perm);
  }
  return -9999;
}

/* The object inside, through its own accessor; every other accessor must
 * refuse the handle. */
static void *object_of(ipx_named_t *n) {
  void *p[NKINDS] = {ipx_named_mutex(n), ipx_named_recursive_mutex(n),
                     ipx_named_condition(n), ipx_named_semaphore(n),
                     ipx_named_sharable_mutex(n), ipx_named_upgradable_mutex(n)};
  void *got = NULL;
  for (int i = 0; i < NKINDS; i++) {
    if (all_kinds[i] == ipx_named_kind(n)) got = p[i];
    else IPX_ASSERT(p[i] == NULL);
  }
  IPX_ASSERT(got != NULL);
  return got;
}

/* Use the object once through the anonymous calls. */
static void use_object(ipx_named_t *n) {
  void *o = object_of(n);
  switch (ipx_named_kind(n)) {
    case IPX_NAMED_MUTEX:
      IPX_ASSERT_OK(ipx_mutex_lock(o));
      IPX_ASSERT_OK(ipx_mutex_unlock(o));
      break;
    case IPX_NAMED_RECURSIVE_MUTEX:
      IPX_ASSERT_OK(ipx_recursive_mutex_lock(o));
      IPX_ASSERT_OK(ipx_recursive_mutex_try_lock(o));
      IPX_ASSERT_OK(ipx_recursive_mutex_unlock(o));
      IPX_ASSERT_OK(ipx_recursive_mutex_unlock(o));
      break;
    case IPX_NAMED_CONDITION:
      IPX_ASSERT_OK(ipx_condition_signal(o));
      IPX_ASSERT_OK(ipx_condition_broadcast(o));
      break;
    case IPX_NAMED_SEMAPHORE:
      IPX_ASSERT_OK(ipx_semaphore_post(o));
      IPX_ASSERT_OK(ipx_semaphore_wait(o));
      break;
    case IPX_NAMED_SHARABLE_MUTEX:
      IPX_ASSERT_OK(ipx_sharable_mutex_lock(o));
      IPX_ASSERT_OK(ipx_sharable_mutex_unlock(o));
      break;
    case IPX_NAMED_UPGRADABLE_MUTEX:
      IPX_ASSERT_OK(ipx_upgradable_mutex_lock(o));
      IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(o));
      break;
  }
}

static void shm_path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "/dev/shm/ipx.%s", name);
}

/* ---- modes, permissions, bad input ---------------------------------------- */

IPX_TEST(modes_close_and_remove_each_kind) {
  for (int i = 0; i < NNEW; i++) {
    ipx_named_kind_t k = all_kinds[i];
    char name[200], tag[16];
    snprintf(tag, sizeof tag, "m%d", (int)k);
    ipx_test_name(name, sizeof name, tag);
    ipx_named_t *a = NULL, *b = NULL, *c = NULL;
    IPX_ASSERT_ERR(open_kind(k, &a, name, IPX_OPEN_ONLY, 0), IPX_ENOTFOUND);
    IPX_ASSERT(a == NULL);
    IPX_ASSERT_OK(open_kind(k, &a, name, IPX_CREATE_ONLY, 0));
    IPX_ASSERT_EQ(ipx_named_kind(a), k);
    IPX_ASSERT_EQ(ipx_named_created(a), 1);
    IPX_ASSERT_ERR(open_kind(k, &b, name, IPX_CREATE_ONLY, 0), IPX_EEXIST);
    IPX_ASSERT(b == NULL);
    IPX_ASSERT_OK(open_kind(k, &b, name, IPX_OPEN_ONLY, 0));
    IPX_ASSERT_EQ(ipx_named_created(b), 0);
    IPX_ASSERT_OK(open_kind(k, &c, name, IPX_OPEN_OR_CREATE, 0));
    IPX_ASSERT_EQ(ipx_named_created(c), 0);
    /* Three handles, one object (at three addresses). */
    IPX_ASSERT(object_of(a) != object_of(b));
    use_object(a);
    use_object(b);
    IPX_ASSERT_OK(ipx_named_close(a));
    IPX_ASSERT_OK(ipx_named_remove(name));
    IPX_ASSERT_ERR(ipx_named_remove(name), IPX_ENOTFOUND);
    IPX_ASSERT_ERR(open_kind(k, &a, name, IPX_OPEN_ONLY, 0), IPX_ENOTFOUND);
    /* Open handles outlive the name. */
    use_object(c);
    IPX_ASSERT_OK(ipx_named_close(b));
    IPX_ASSERT_OK(ipx_named_close(c));
    /* open-or-create on a free name creates. */
    IPX_ASSERT_OK(open_kind(k, &a, name, IPX_OPEN_OR_CREATE, 0));
    IPX_ASSERT_EQ(ipx_named_created(a), 1);
    IPX_ASSERT_OK(ipx_named_close(a));
    IPX_ASSERT_OK(ipx_named_remove(name));
  }
}

IPX_TEST(exact_permissions_each_kind) {
  static const unsigned perms[NNEW] = {0640, 0604, 0660, 0444};
  mode_t old = umask(077);
  for (int i = 0; i < NNEW; i++) {
    char name[200], path[300], tag[16];
    snprintf(tag, sizeof tag, "p%d", i);
    ipx_test_name(name, sizeof name, tag);
    ipx_named_t *n = NULL;
    IPX_ASSERT_OK(open_kind(all_kinds[i], &n, name, IPX_CREATE_ONLY, perms[i]));
    struct stat st;
    shm_path(path, sizeof path, name);
    IPX_ASSERT_OK(stat(path, &st));
    IPX_ASSERT_EQ(st.st_mode & 0777, perms[i]);
    IPX_ASSERT_OK(ipx_named_close(n));
    IPX_ASSERT_OK(ipx_named_remove(name));
    /* 0 means the default, 0600, whatever the umask. */
    IPX_ASSERT_OK(open_kind(all_kinds[i], &n, name, IPX_CREATE_ONLY, 0));
    IPX_ASSERT_OK(stat(path, &st));
    IPX_ASSERT_EQ(st.st_mode & 0777, 0600);
    IPX_ASSERT_OK(ipx_named_close(n));
    IPX_ASSERT_OK(ipx_named_remove(name));
  }
  umask(old);
}

struct perm_check {
  char name[NNEW][200];
  int rc[NNEW];
};

static void open_as_nobody(void *p) {
  struct perm_check *pc = p;
  IPX_ASSERT_OK(setgid(NOBODY));
  IPX_ASSERT_OK(setuid(NOBODY));
  for (int i = 0; i < NNEW; i++) {
    ipx_named_t *n = NULL;
    pc->rc[i] = open_kind(all_kinds[i], &n, pc->name[i], IPX_OPEN_ONLY, 0);
    if (n) ipx_named_close(n);
  }
}

IPX_TEST(permissions_are_enforced_for_other_users) {
  if (geteuid() != 0) IPX_SKIP("needs root to become another user");
  struct perm_check *pc = ipx_test_shared_alloc(sizeof *pc);
  ipx_named_t *n[NNEW];
  for (int i = 0; i < NNEW; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "u%d", i);
    ipx_test_name(pc->name[i], sizeof pc->name[i], tag);
    /* Readable by others is not enough: a named object is opened
     * read-write.  The last one is open to everybody. */
    IPX_ASSERT_OK(open_kind(all_kinds[i], &n[i], pc->name[i], IPX_CREATE_ONLY,
                            i == NNEW - 1 ? 0666 : 0644));
  }
  IPX_ASSERT_CHILD_OK(ipx_test_fork(open_as_nobody, pc));
  for (int i = 0; i < NNEW - 1; i++) IPX_ASSERT_ERR(pc->rc[i], -EACCES);
  IPX_ASSERT_OK(pc->rc[NNEW - 1]);
  for (int i = 0; i < NNEW; i++) {
    IPX_ASSERT_OK(ipx_named_close(n[i]));
    IPX_ASSERT_OK(ipx_named_remove(pc->name[i]));
  }
}

IPX_TEST(bad_input_each_kind) {
  char name[200], longname[300];
  ipx_test_name(name, sizeof name, "bad");
  memset(longname, 'a', IPX_NAME_MAX + 1);
  longname[IPX_NAME_MAX + 1] = 0;
  for (int i = 0; i < NNEW; i++) {
    ipx_named_kind_t k = all_kinds[i];
    ipx_named_t *n = (ipx_named_t *)&n; /* must be reset to NULL */
    IPX_ASSERT_ERR(open_kind(k, NULL, name, IPX_OPEN_OR_CREATE, 0), IPX_EINVAL);
    IPX_ASSERT_ERR(open_kind(k, &n, NULL, IPX_OPEN_OR_CREATE, 0), IPX_EINVAL);
    IPX_ASSERT(n == NULL);
    IPX_ASSERT_ERR(open_kind(k, &n, "", IPX_OPEN_OR_CREATE, 0), IPX_EBADNAME);
    IPX_ASSERT_ERR(open_kind(k, &n, "a/b", IPX_OPEN_OR_CREATE, 0), IPX_EBADNAME);
    IPX_ASSERT_ERR(open_kind(k, &n, "..", IPX_OPEN_OR_CREATE, 0), IPX_EBADNAME);
    IPX_ASSERT_ERR(open_kind(k, &n, ".", IPX_OPEN_ONLY, 0), IPX_EBADNAME);
    IPX_ASSERT_ERR(open_kind(k, &n, "sp ace", IPX_OPEN_ONLY, 0), IPX_EBADNAME);
    IPX_ASSERT_ERR(open_kind(k, &n, longname, IPX_OPEN_OR_CREATE, 0), IPX_EBADNAME);
    IPX_ASSERT_ERR(open_kind(k, &n, name, (ipx_open_mode_t)9, 0), IPX_EINVAL);
    IPX_ASSERT_ERR(open_kind(k, &n, name, IPX_OPEN_OR_CREATE, 01000), IPX_EINVAL);
    IPX_ASSERT_ERR(open_kind(k, &n, name, IPX_OPEN_OR_CREATE, 04755), IPX_EINVAL);
    IPX_ASSERT(n == NULL);
  }
  /* The longest valid name works. */
  char maxname[300];
  ipx_test_name(maxname, sizeof maxname, "x");
  size_t len = strlen(maxname);
  memset(maxname + len, 'x', IPX_NAME_MAX - len);
  maxname[IPX_NAME_MAX] = 0;
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(ipx_named_mutex_open(&n, maxname, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_OK(ipx_named_close(n));
  IPX_ASSERT_OK(ipx_named_remove(maxname));

  /* A semaphore's initial value is checked in every mode. */
  n = NULL;
  IPX_ASSERT_ERR(ipx_named_semaphore_open(&n, name, IPX_OPEN_OR_CREATE, 0,
                                          IPX_SEMAPHORE_VALUE_MAX + 1u),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_named_semaphore_open(&n, name, IPX_OPEN_ONLY, 0, UINT32_MAX),
                 IPX_EINVAL);
  IPX_ASSERT(n == NULL);
  IPX_ASSERT_OK(ipx_named_semaphore_open(&n, name, IPX_CREATE_ONLY, 0,
                                         IPX_SEMAPHORE_VALUE_MAX));
  ipx_semaphore_t *s = ipx_named_semaphore(n);
  IPX_ASSERT_ERR(ipx_semaphore_post(s), IPX_EOVERFLOW);
  IPX_ASSERT_OK(ipx_named_close(n));
  IPX_ASSERT_OK(ipx_named_remove(name));

  /* Accessors refuse NULL; the anonymous calls refuse what they get then. */
  IPX_ASSERT(ipx_named_mutex(NULL) == NULL);
  IPX_ASSERT(ipx_named_recursive_mutex(NULL) == NULL);
  IPX_ASSERT(ipx_named_condition(NULL) == NULL);
  IPX_ASSERT(ipx_named_semaphore(NULL) == NULL);
  IPX_ASSERT_EQ(ipx_named_kind(NULL), 0);
  IPX_ASSERT_EQ(ipx_named_created(NULL), 0);
  IPX_ASSERT_OK(ipx_named_semaphore_open(&n, name, IPX_CREATE_ONLY, 0, 0));
  IPX_ASSERT_ERR(ipx_mutex_lock(ipx_named_mutex(n)), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_recursive_mutex_lock(ipx_named_recursive_mutex(n)), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_condition_signal(ipx_named_condition(n)), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_named_close(n));
  IPX_ASSERT_OK(ipx_named_remove(name));
}

IPX_TEST(releasing_what_you_do_not_hold) {
  char mn[200], rn[200], cn[200];
  ipx_test_name(mn, sizeof mn, "m");
  ipx_test_name(rn, sizeof rn, "r");
  ipx_test_name(cn, sizeof cn, "c");
  ipx_named_t *m, *r, *c;
  IPX_ASSERT_OK(ipx_named_mutex_open(&m, mn, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_OK(ipx_named_recursive_mutex_open(&r, rn, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_OK(ipx_named_condition_open(&c, cn, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_ERR(ipx_mutex_unlock(ipx_named_mutex(m)), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_mutex_consistent(ipx_named_mutex(m)), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_recursive_mutex_unlock(ipx_named_recursive_mutex(r)),
                 IPX_ENOTOWNER);
  /* Waiting on a condition without holding the mutex. */
  IPX_ASSERT_ERR(ipx_condition_wait_for(ipx_named_condition(c),
                                        ipx_named_mutex(m), IPX_MSEC),
                 IPX_ENOTOWNER);
  /* Locking a plain mutex twice. */
  IPX_ASSERT_OK(ipx_mutex_lock(ipx_named_mutex(m)));
  IPX_ASSERT_ERR(ipx_mutex_lock(ipx_named_mutex(m)), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_mutex_try_lock(ipx_named_mutex(m)), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_mutex_consistent(ipx_named_mutex(m)), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_mutex_unlock(ipx_named_mutex(m)));
  IPX_ASSERT_OK(ipx_named_close(m));
  IPX_ASSERT_OK(ipx_named_close(r));
  IPX_ASSERT_OK(ipx_named_close(c));
  IPX_ASSERT_OK(ipx_named_remove(mn));
  IPX_ASSERT_OK(ipx_named_remove(rn));
  IPX_ASSERT_OK(ipx_named_remove(cn));
}

IPX_TEST(plain_shm_object_is_not_a_named_object) {
  char name[200];
  ipx_test_name(name, sizeof name, "plain");
  ipx_shm_t *s;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx_shm_resize(s, 4096, IPX_SHM_SPARSE));
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL));
  memcpy(ipx_region_address(r), "user data", 9);
  for (int i = 0; i < NNEW; i++) {
    ipx_named_t *n = NULL;
    IPX_ASSERT_ERR(open_kind(all_kinds[i], &n, name, IPX_OPEN_OR_CREATE, 0), IPX_EWRONGKIND);
    IPX_ASSERT_ERR(open_kind(all_kinds[i], &n, name, IPX_OPEN_ONLY, 0), IPX_EWRONGKIND);
    IPX_ASSERT_ERR(open_kind(all_kinds[i], &n, name, IPX_CREATE_ONLY, 0), IPX_EWRONGKIND);
    IPX_ASSERT(n == NULL);
  }
  IPX_ASSERT(memcmp(ipx_region_address(r), "user data", 9) == 0);
  IPX_ASSERT_OK(ipx_region_unmap(r));
  IPX_ASSERT_OK(ipx_shm_close(s));
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

IPX_TEST(wrong_kind_across_all_six_kinds) {
  for (int i = 0; i < NKINDS; i++) {
    char name[200], tag[16];
    snprintf(tag, sizeof tag, "k%d", (int)all_kinds[i]);
    ipx_test_name(name, sizeof name, tag);
    ipx_named_t *n = NULL;
    IPX_ASSERT_OK(open_kind(all_kinds[i], &n, name, IPX_CREATE_ONLY, 0));
    for (int j = 0; j < NKINDS; j++) {
      if (j == i) continue;
      ipx_named_t *o = NULL;
      IPX_ASSERT_ERR(open_kind(all_kinds[j], &o, name, IPX_OPEN_ONLY, 0), IPX_EWRONGKIND);
      IPX_ASSERT_ERR(open_kind(all_kinds[j], &o, name, IPX_OPEN_OR_CREATE, 0), IPX_EWRONGKIND);
      IPX_ASSERT_ERR(open_kind(all_kinds[j], &o, name, IPX_CREATE_ONLY, 0), IPX_EWRONGKIND);
      IPX_ASSERT(o == NULL);
    }
    /* The refusals left the object untouched. */
    use_object(n);
    ipx_named_t *again = NULL;
    IPX_ASSERT_OK(open_kind(all_kinds[i], &again, name, IPX_OPEN_ONLY, 0));
    use_object(again);
    IPX_ASSERT_OK(ipx_named_close(again));
    IPX_ASSERT_OK(ipx_named_close(n));
    IPX_ASSERT_OK(ipx_named_remove(name));
  }
}

IPX_TEST(semaphore_takes_its_initial_value_at_creation) {
  char name[200];
  ipx_test_name(name, sizeof name, "sem");
  ipx_named_t *a, *b;
  unsigned v = 99;
  IPX_ASSERT_OK(ipx_named_semaphore_open(&a, name, IPX_OPEN_OR_CREATE, 0, 3));
  IPX_ASSERT_EQ(ipx_named_created(a), 1);
  IPX_ASSERT_OK(ipx_semaphore_value(ipx_named_semaphore(a), &v));
  IPX_ASSERT_EQ(v, 3);
  /* An opener's value does not reset an existing semaphore. */
  IPX_ASSERT_OK(ipx_named_semaphore_open(&b, name, IPX_OPEN_OR_CREATE, 0, 7));
  IPX_ASSERT_EQ(ipx_named_created(b), 0);
  ipx_semaphore_t *s = ipx_named_semaphore(b);
  IPX_ASSERT_OK(ipx_semaphore_value(s, &v));
  IPX_ASSERT_EQ(v, 3);
  for (int i = 0; i < 3; i++) IPX_ASSERT_OK(ipx_semaphore_try_wait(s));
  IPX_ASSERT_ERR(ipx_semaphore_try_wait(s), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_semaphore_wait_for(s, 5 * IPX_MSEC), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(ipx_semaphore_wait_until(s, ipx_now() + IPX_MSEC), IPX_ETIMEDOUT);
  IPX_ASSERT_OK(ipx_semaphore_post(ipx_named_semaphore(a)));
  IPX_ASSERT_OK(ipx_semaphore_wait(s));
  IPX_ASSERT_OK(ipx_named_close(a));
  IPX_ASSERT_OK(ipx_named_close(b));
  IPX_ASSERT_OK(ipx_named_remove(name));
  /* A fresh creation with 0. */
  IPX_ASSERT_OK(ipx_named_semaphore_open(&a, name, IPX_CREATE_ONLY, 0, 0));
  IPX_ASSERT_OK(ipx_semaphore_value(ipx_named_semaphore(a), &v));
  IPX_ASSERT_EQ(v, 0);
  IPX_ASSERT_OK(ipx_named_close(a));
  IPX_ASSERT_OK(ipx_named_remove(name));
}

IPX_TEST(mutex_timed_forms) {
  char name[200];
  ipx_test_name(name, sizeof name, "tm");
  ipx_named_t *a, *b;
  IPX_ASSERT_OK(ipx_named_mutex_open(&a, name, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_OK(ipx_named_mutex_open(&b, name, IPX_OPEN_ONLY, 0));
  IPX_ASSERT_OK(ipx_mutex_lock_for(ipx_named_mutex(a), IPX_SEC));
  IPX_ASSERT_OK(ipx_mutex_unlock(ipx_named_mutex(a)));
  IPX_ASSERT_OK(ipx_mutex_lock_until(ipx_named_mutex(b), ipx_now() + IPX_SEC));
  IPX_ASSERT_OK(ipx_mutex_unlock(ipx_named_mutex(b)));
  IPX_ASSERT_OK(ipx_mutex_try_lock(ipx_named_mutex(a)));
  IPX_ASSERT_OK(ipx_mutex_unlock(ipx_named_mutex(a)));
  IPX_ASSERT_OK(ipx_named_close(a));
  IPX_ASSERT_OK(ipx_named_close(b));
  IPX_ASSERT_OK(ipx_named_remove(name));
}

/* ---- peers: processes that open the objects by name ----------------------- */

static ipx_named_t *open_only(ipx_named_kind_t k, const char *name) {
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(open_kind(k, &n, name, IPX_OPEN_ONLY, 0));
  return n;
}

/* argv: mutex-name kind(1 = mutex, 2 = recursive) depth ready-semaphore.
 * Locks `depth` times, posts `ready`, and waits to be killed. */
IPX_TEST_PEER(holder_peer) {
  if (argc < 5) return 2;
  ipx_named_t *m = open_only((ipx_named_kind_t)atoi(argv[2]), argv[1]);
  ipx_named_t *ready = open_only(IPX_NAMED_SEMAPHORE, argv[4]);
  int depth = atoi(argv[3]);
  for (int i = 0; i < depth; i++) {
    if (ipx_named_kind(m) == IPX_NAMED_MUTEX)
      IPX_ASSERT_OK(ipx_mutex_lock(ipx_named_mutex(m)));
    else
      IPX_ASSERT_OK(ipx_recursive_mutex_lock(ipx_named_recursive_mutex(m)));
  }
  IPX_ASSERT_OK(ipx_semaphore_post(ipx_named_semaphore(ready)));
  for (;;) pause();
}

/* argv: mutex-name kind expected-try-lock-result.  Exits 0 when try_lock
 * returned what was expected (then releases what it got). */
IPX_TEST_PEER(try_lock_peer) {
  if (argc < 4) return 2;
  ipx_named_t *m = open_only((ipx_named_kind_t)atoi(argv[2]), argv[1]);
  int want = atoi(argv[3]), r;
  if (ipx_named_kind(m) == IPX_NAMED_MUTEX) {
    r = ipx_mutex_try_lock(ipx_named_mutex(m));
    if (r == 0) IPX_ASSERT_OK(ipx_mutex_unlock(ipx_named_mutex(m)));
  } else {
    r = ipx_recursive_mutex_try_lock(ipx_named_recursive_mutex(m));
    if (r == 0) IPX_ASSERT_OK(ipx_recursive_mutex_unlock(ipx_named_recursive_mutex(m)));
  }
  IPX_ASSERT_ERR(r, want);
  IPX_ASSERT_OK(ipx_named_close(m));
  return 0;
}

static pid_t spawn_holder(const char *mname, ipx_named_kind_t k, int depth,
                          ipx_named_t *ready, const char *rname) {
  char ks[8], ds[8];
  snprintf(ks, sizeof ks, "%d", (int)k);
  snprintf(ds, sizeof ds, "%d", depth);
  pid_t p = ipx_test_spawn("holder_peer", mname, ks, ds, rname, NULL);
  IPX_ASSERT_OK(ipx_semaphore_wait_for(ipx_named_semaphore(ready), 20 * IPX_SEC));
  return p;
}

static void expect_try_lock(const char *mname, ipx_named_kind_t k, int want) {
  char ks[8], ws[16];
  snprintf(ks, sizeof ks, "%d", (int)k);
  snprintf(ws, sizeof ws, "%d", want);
  IPX_ASSERT_CHILD_OK(ipx_test_spawn("try_lock_peer", mname, ks, ws, NULL));
}

static pid_t victim;
static void kill_victim_later(void *p) {
  (void)p;
  ipx_test_sleep_ms(30);
  kill(victim, SIGKILL);
}

IPX_TEST(killed_named_mutex_holder_gives_eownerdead) {
  char mn[200], rn[200];
  ipx_test_name(mn, sizeof mn, "mx");
  ipx_test_name(rn, sizeof rn, "ready");
  ipx_named_t *m, *ready;
  IPX_ASSERT_OK(ipx_named_mutex_open(&m, mn, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_OK(ipx_named_semaphore_open(&ready, rn, IPX_CREATE_ONLY, 0, 0));
  ipx_mutex_t *mx = ipx_named_mutex(m);
  pid_t h = spawn_holder(mn, IPX_NAMED_MUTEX, 1, ready, rn);
  IPX_ASSERT_ERR(ipx_mutex_try_lock(mx), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_mutex_lock_for(mx, 20 * IPX_MSEC), IPX_ETIMEDOUT);
  kill(h, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(h, SIGKILL);
  /* The next locker holds it, warned; other processes see it held. */
  IPX_ASSERT_ERR(ipx_mutex_lock_for(mx, 10 * IPX_SEC), IPX_EOWNERDEAD);
  expect_try_lock(mn, IPX_NAMED_MUTEX, IPX_EBUSY);
  IPX_ASSERT_OK(ipx_mutex_consistent(mx));
  IPX_ASSERT_OK(ipx_mutex_unlock(mx));
  /* Repaired: normal for everybody. */
  expect_try_lock(mn, IPX_NAMED_MUTEX, 0);
  IPX_ASSERT_OK(ipx_mutex_lock(mx));
  IPX_ASSERT_OK(ipx_mutex_unlock(mx));

  /* A holder killed while another process is already waiting: the waiter
   * gets the warning. */
  h = spawn_holder(mn, IPX_NAMED_MUTEX, 1, ready, rn);
  victim = h;
  pid_t killer = ipx_test_fork(kill_victim_later, NULL);
  IPX_ASSERT_ERR(ipx_mutex_lock(mx), IPX_EOWNERDEAD);
  IPX_ASSERT_CHILD_SIGNALED(h, SIGKILL);
  IPX_ASSERT_CHILD_OK(killer);
  /* Not repaired: unusable for every later opener by name. */
  IPX_ASSERT_OK(ipx_mutex_unlock(mx));
  expect_try_lock(mn, IPX_NAMED_MUTEX, IPX_ENOTRECOVERABLE);
  IPX_ASSERT_ERR(ipx_mutex_lock(mx), IPX_ENOTRECOVERABLE);
  IPX_ASSERT_OK(ipx_named_close(m));
  IPX_ASSERT_OK(ipx_named_close(ready));
  IPX_ASSERT_OK(ipx_named_remove(mn));
  IPX_ASSERT_OK(ipx_named_remove(rn));
}

IPX_TEST(killed_recursive_holder_several_levels_deep) {
  char mn[200], rn[200];
  ipx_test_name(mn, sizeof mn, "rmx");
  ipx_test_name(rn, sizeof rn, "ready");
  ipx_named_t *m, *ready;
  IPX_ASSERT_OK(ipx_named_recursive_mutex_open(&m, mn, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_OK(ipx_named_semaphore_open(&ready, rn, IPX_CREATE_ONLY, 0, 0));
  ipx_recursive_mutex_t *rm = ipx_named_recursive_mutex(m);
  pid_t h = spawn_holder(mn, IPX_NAMED_RECURSIVE_MUTEX, 5, ready, rn);
  IPX_ASSERT_ERR(ipx_recursive_mutex_try_lock(rm), IPX_EBUSY);
  kill(h, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(h, SIGKILL);
  IPX_ASSERT_ERR(ipx_recursive_mutex_lock_for(rm, 10 * IPX_SEC), IPX_EOWNERDEAD);
  /* Held at depth 1 (not 5): one more level, two unlocks free it. */
  IPX_ASSERT_OK(ipx_recursive_mutex_lock(rm));
  IPX_ASSERT_OK(ipx_recursive_mutex_consistent(rm));
  IPX_ASSERT_OK(ipx_recursive_mutex_unlock(rm));
  expect_try_lock(mn, IPX_NAMED_RECURSIVE_MUTEX, IPX_EBUSY);
  IPX_ASSERT_OK(ipx_recursive_mutex_unlock(rm));
  expect_try_lock(mn, IPX_NAMED_RECURSIVE_MUTEX, 0);
  IPX_ASSERT_ERR(ipx_recursive_mutex_unlock(rm), IPX_ENOTOWNER);
  IPX_ASSERT_OK(ipx_recursive_mutex_lock(rm));
  IPX_ASSERT_OK(ipx_recursive_mutex_unlock(rm));
  IPX_ASSERT_OK(ipx_named_close(m));
  IPX_ASSERT_OK(ipx_named_close(ready));
  IPX_ASSERT_OK(ipx_named_remove(mn));
  IPX_ASSERT_OK(ipx_named_remove(rn));
}

/* ---- creators killed mid-creation ------------------------------------------- */

struct creator {
  char name[200];
  int kind;
  int ready;
  int built; /* open_after_crash had to build the object */
};

/* What a creator has done when it dies in the middle of building: the
 * object exists, is locked for creation, sized, and has a header of its
 * kind without the ready mark (docs/FORMAT.md). */
static void half_creator(void *p) {
  struct creator *c = p;
  ipx_shm_t *s;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_shm_open(&s, c->name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  char path[300];
  shm_path(path, sizeof path, c->name);
  ipx_file_lock_t *fl;
  IPX_ASSERT_OK(ipx_file_lock_open(&fl, path));
  IPX_ASSERT_OK(ipx_file_lock_lock(fl));
  IPX_ASSERT_OK(ipx_shm_resize(s, 128, IPX_SHM_RESERVE));
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL));
  unsigned char *h = ipx_region_address(r);
  memcpy(h, "INMD", 4);
  h[4] = 1; /* version */
  h[6] = (unsigned char)c->kind;
  h[8] = 64; /* object size */
  memset(h + 64, 0xa5, 64); /* half-initialised object */
  __atomic_store_n(&c->ready, 1, __ATOMIC_SEQ_CST);
  for (;;) pause();
}

static void late_opener(void *p) {
  struct creator *c = p;
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(open_kind((ipx_named_kind_t)c->kind, &n, c->name, IPX_OPEN_OR_CREATE, 0));
  IPX_ASSERT_EQ(ipx_named_created(n), 1);
  use_object(n);
  IPX_ASSERT_OK(ipx_named_close(n));
}

IPX_TEST(creator_killed_mid_creation_each_kind) {
  struct creator *c = ipx_test_shared_alloc(sizeof *c);
  for (int i = 0; i < NNEW; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "half%d", i);
    ipx_test_name(c->name, sizeof c->name, tag);
    c->kind = (int)all_kinds[i];
    c->ready = 0;
    pid_t cr = ipx_test_fork(half_creator, c);
    while (!__atomic_load_n(&c->ready, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
    pid_t op = ipx_test_fork(late_opener, c);
    /* The opener waits while the creator lives... */
    ipx_test_sleep_ms(30);
    IPX_ASSERT_EQ(waitpid(op, NULL, WNOHANG), 0);
    /* ...and builds the object once the creator is dead. */
    kill(cr, SIGKILL);
    IPX_ASSERT_CHILD_SIGNALED(cr, SIGKILL);
    IPX_ASSERT_CHILD_OK(op);
    ipx_named_t *n = NULL;
    IPX_ASSERT_OK(open_kind(all_kinds[i], &n, c->name, IPX_OPEN_ONLY, 0));
    IPX_ASSERT_EQ(ipx_named_created(n), 0);
    use_object(n);
    IPX_ASSERT_OK(ipx_named_close(n));
    IPX_ASSERT_OK(ipx_named_remove(c->name));

    /* A corpse nobody is waiting for: open-only does not find it,
     * create-only builds over it, even as another kind. */
    c->ready = 0;
    cr = ipx_test_fork(half_creator, c);
    while (!__atomic_load_n(&c->ready, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
    kill(cr, SIGKILL);
    IPX_ASSERT_CHILD_SIGNALED(cr, SIGKILL);
    IPX_ASSERT_ERR(open_kind(all_kinds[i], &n, c->name, IPX_OPEN_ONLY, 0), IPX_ENOTFOUND);
    ipx_named_kind_t other = all_kinds[(i + 1) % NKINDS];
    IPX_ASSERT_OK(open_kind(other, &n, c->name, IPX_CREATE_ONLY, 0));
    IPX_ASSERT_EQ(ipx_named_created(n), 1);
    use_object(n);
    IPX_ASSERT_OK(ipx_named_close(n));
    IPX_ASSERT_OK(ipx_named_remove(c->name));
  }
}

/* A real creator, killed at a random instant of its life: remove, create,
 * close, over and over. */
static void creating_loop(void *p) {
  struct creator *c = p;
  for (;;) {
    ipx_named_t *n = NULL;
    (void)ipx_named_remove(c->name);
    if (open_kind((ipx_named_kind_t)c->kind, &n, c->name, IPX_CREATE_ONLY, 0) == 0)
      ipx_named_close(n);
    __atomic_store_n(&c->ready, 1, __ATOMIC_RELAXED);
  }
}

static void open_after_crash(void *p) {
  struct creator *c = p;
  ipx_named_t *n = NULL;
  IPX_ASSERT_OK(open_kind((ipx_named_kind_t)c->kind, &n, c->name, IPX_OPEN_OR_CREATE, 0));
  c->built = ipx_named_created(n);
  use_object(n);
  IPX_ASSERT_OK(ipx_named_close(n));
}

IPX_TEST(creator_killed_at_random_instants_never_hangs_the_next_opener) {
  struct creator *c = ipx_test_shared_alloc(sizeof *c);
  long rounds = ipx_test_scale(12, 3);
  int built = 0, total = 0;
  for (int i = 0; i < NNEW; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "rnd%d", i);
    ipx_test_name(c->name, sizeof c->name, tag);
    c->kind = (int)all_kinds[i];
    for (long k = 0; k < rounds; k++) {
      c->ready = 0;
      pid_t cr = ipx_test_fork(creating_loop, c);
      while (!__atomic_load_n(&c->ready, __ATOMIC_RELAXED)) ipx_test_sleep_ms(1);
      usleep((useconds_t)(ipx_test_rand() % 2000));
      kill(cr, SIGKILL);
      IPX_ASSERT_CHILD_SIGNALED(cr, SIGKILL);
      /* In a child with a deadline: a hang fails the case, not the run. */
      pid_t op = ipx_test_fork(open_after_crash, c);
      int st = ipx_test_wait(op, 10000);
      IPX_ASSERT(st != -1);
      IPX_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
      built += c->built;
      total++;
      /* Whatever the instant, the name now holds a finished object. */
      ipx_named_t *n = NULL;
      IPX_ASSERT_OK(open_kind(all_kinds[i], &n, c->name, IPX_OPEN_ONLY, 0));
      IPX_ASSERT_EQ(ipx_named_created(n), 0);
      use_object(n);
      IPX_ASSERT_OK(ipx_named_close(n));
      IPX_ASSERT_OK(ipx_named_remove(c->name));
    }
  }
  ipx_test_log("%d of %d crashes left no finished object under the name (removed or half-built)",
               built, total);
}

/* ---- condition + mutex across processes -------------------------------------- */

#define QCAP 4
typedef struct queue {
  uint32_t head, tail;
  uint32_t buf[QCAP];
  uint32_t last, disorder;
  uint64_t sum;
  uint32_t waiting, flag, woken;
} queue_t;

struct pc_names {
  char m[200], nf[200], ne[200], d[200];
};

static queue_t *map_queue(const char *name, ipx_shm_t **s, ipx_region_t **r,
                          int create) {
  return ipx_test_map_shm(name, 4096, create, s, r);
}

/* argv: role(p/c) mutex not-full not-empty data count */
IPX_TEST_PEER(pc_peer) {
  if (argc < 7) return 2;
  int producer = argv[1][0] == 'p';
  ipx_named_t *nm = open_only(IPX_NAMED_MUTEX, argv[2]);
  ipx_named_t *nf = open_only(IPX_NAMED_CONDITION, argv[3]);
  ipx_named_t *ne = open_only(IPX_NAMED_CONDITION, argv[4]);
  ipx_shm_t *s;
  ipx_region_t *r;
  queue_t *q = map_queue(argv[5], &s, &r, 0);
  long count = atol(argv[6]);
  ipx_mutex_t *m = ipx_named_mutex(nm);
  for (long i = 1; i <= count; i++) {
    IPX_ASSERT_OK(ipx_mutex_lock(m));
    if (producer) {
      while (q->tail - q->head == QCAP)
        IPX_ASSERT_OK(ipx_condition_wait_for(ipx_named_condition(nf), m, 20 * IPX_SEC));
      q->buf[q->tail % QCAP] = (uint32_t)i;
      q->tail++;
      IPX_ASSERT_OK(ipx_condition_signal(ipx_named_condition(ne)));
    } else {
      while (q->tail == q->head)
        IPX_ASSERT_OK(ipx_condition_wait_until(ipx_named_condition(ne), m,
                                               ipx_now() + 20 * IPX_SEC));
      uint32_t v = q->buf[q->head % QCAP];
      q->head++;
      if (v != q->last + 1) q->disorder++;
      q->last = v;
      q->sum += v;
      IPX_ASSERT_OK(ipx_condition_signal(ipx_named_condition(nf)));
    }
    IPX_ASSERT_OK(ipx_mutex_unlock(m));
  }
  ipx_named_close(nm);
  ipx_named_close(nf);
  ipx_named_close(ne);
  ipx_region_unmap(r);
  ipx_shm_close(s);
  return 0;
}

static void make_pc(struct pc_names *nm, ipx_named_t **h, ipx_shm_t **s,
                    ipx_region_t **r, queue_t **q) {
  ipx_test_name(nm->m, sizeof nm->m, "mx");
  ipx_test_name(nm->nf, sizeof nm->nf, "nf");
  ipx_test_name(nm->ne, sizeof nm->ne, "ne");
  ipx_test_name(nm->d, sizeof nm->d, "data");
  IPX_ASSERT_OK(ipx_named_mutex_open(&h[0], nm->m, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_OK(ipx_named_condition_open(&h[1], nm->nf, IPX_CREATE_ONLY, 0));
  IPX_ASSERT_OK(ipx_named_condition_open(&h[2], nm->ne, IPX_CREATE_ONLY, 0));
  *q = map_queue(nm->d, s, r, 1);
}

static void drop_pc(struct pc_names *nm, ipx_named_t **h, ipx_shm_t *s,
                    ipx_region_t *r) {
  for (int i = 0; i < 3; i++) IPX_ASSERT_OK(ipx_named_close(h[i]));
  IPX_ASSERT_OK(ipx_region_unmap(r));
  IPX_ASSERT_OK(ipx_shm_close(s));
  IPX_ASSERT_OK(ipx_named_remove(nm->m));
  IPX_ASSERT_OK(ipx_named_remove(nm->nf));
  IPX_ASSERT_OK(ipx_named_remove(nm->ne));
  IPX_ASSERT_OK(ipx_shm_remove(nm->d));
}

IPX_TEST(condition_producer_consumer_between_exec_peers) {
  struct pc_names nm;
  ipx_named_t *h[3];
  ipx_shm_t *s;
  ipx_region_t *r;
  queue_t *q;
  make_pc(&nm, h, &s, &r, &q);
  long count = ipx_test_scale(20000, 500);
  char cs[32];
  snprintf(cs, sizeof cs, "%ld", count);
  pid_t c = ipx_test_spawn("pc_peer", "c", nm.m, nm.nf, nm.ne, nm.d, cs, NULL);
  pid_t p = ipx_test_spawn("pc_peer", "p", nm.m, nm.nf, nm.ne, nm.d, cs, NULL);
  IPX_ASSERT_CHILD_OK(p);
  IPX_ASSERT_CHILD_OK(c);
  IPX_ASSERT_EQ(q->disorder, 0);
  IPX_ASSERT_EQ(q->last, count);
  IPX_ASSERT_EQ(q->sum, (uint64_t)count * (uint64_t)(count + 1) / 2);
  IPX_ASSERT_EQ(q->head, q->tail);
  drop_pc(&nm, h, s, r);
}

struct bc {
  struct pc_names nm;
};

static void broadcast_waiter(void *p) {
  struct bc *b = p;
  ipx_named_t *nm = open_only(IPX_NAMED_MUTEX, b->nm.m);
  ipx_named_t *nc = open_only(IPX_NAMED_CONDITION, b->nm.ne);
  ipx_shm_t *s;
  ipx_region_t *r;
  queue_t *q = map_queue(b->nm.d, &s, &r, 0);
  ipx_mutex_t *m = ipx_named_mutex(nm);
  IPX_ASSERT_OK(ipx_mutex_lock(m));
  q->waiting++;
  while (!q->flag) IPX_ASSERT_OK(ipx_condition_wait(ipx_named_condition(nc), m));
  q->woken++;
  IPX_ASSERT_OK(ipx_mutex_unlock(m));
  IPX_ASSERT_OK(ipx_named_close(nm));
  IPX_ASSERT_OK(ipx_named_close(nc));
  IPX_ASSERT_OK(ipx_region_unmap(r));
  IPX_ASSERT_OK(ipx_shm_close(s));
}

IPX_TEST(condition_broadcast_wakes_every_process_and_wait_times_out) {
  struct bc *b = ipx_test_shared_alloc(sizeof *b);
  ipx_named_t *h[3];
  ipx_shm_t *s;
  ipx_region_t *r;
  queue_t *q;
  make_pc(&b->nm, h, &s, &r, &q);
  ipx_mutex_t *m = ipx_named_mutex(h[0]);
  ipx_condition_t *c = ipx_named_condition(h[2]);
  /* Nobody signals: a timed wait gives up with the mutex held. */
  IPX_ASSERT_OK(ipx_mutex_lock(m));
  uint64_t t0 = ipx_now();
  IPX_ASSERT_ERR(ipx_condition_wait_for(c, m, 20 * IPX_MSEC), IPX_ETIMEDOUT);
  IPX_ASSERT_GE(ipx_now() - t0, 20 * IPX_MSEC);
  IPX_ASSERT_ERR(ipx_condition_wait_until(c, m, ipx_now() + IPX_MSEC), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(ipx_mutex_lock(m), IPX_EDEADLK); /* still ours */
  IPX_ASSERT_OK(ipx_mutex_unlock(m));

  pid_t w[3];
  for (int i = 0; i < 3; i++) w[i] = ipx_test_fork(broadcast_waiter, b);
  for (int i = 0; i < 20000; i++) {
    IPX_ASSERT_OK(ipx_mutex_lock(m));
    uint32_t n = q->waiting;
    IPX_ASSERT_OK(ipx_mutex_unlock(m));
    if (n == 3) break;
    ipx_test_sleep_ms(1);
  }
  /* A signal to nobody in particular changes nothing for the predicate. */
  IPX_ASSERT_OK(ipx_condition_signal(c));
  IPX_ASSERT_OK(ipx_mutex_lock(m));
  IPX_ASSERT_EQ(q->waiting, 3);
  q->flag = 1;
  IPX_ASSERT_OK(ipx_condition_broadcast(c));
  IPX_ASSERT_OK(ipx_mutex_unlock(m));
  for (int i = 0; i < 3; i++) IPX_ASSERT_CHILD_OK(w[i]);
  IPX_ASSERT_EQ(q->woken, 3);
  drop_pc(&b->nm, h, s, r);
}

static void lock_signal_and_die(void *p) {
  struct bc *b = p;
  ipx_named_t *nm = open_only(IPX_NAMED_MUTEX, b->nm.m);
  ipx_named_t *nc = open_only(IPX_NAMED_CONDITION, b->nm.ne);
  ipx_shm_t *s;
  ipx_region_t *r;
  queue_t *q = map_queue(b->nm.d, &s, &r, 0);
  IPX_ASSERT_OK(ipx_mutex_lock(ipx_named_mutex(nm)));
  q->flag = 1;
  IPX_ASSERT_OK(ipx_condition_signal(ipx_named_condition(nc)));
  raise(SIGKILL); /* dies holding the mutex */
}

IPX_TEST(condition_wait_returns_eownerdead_when_mutex_holder_dies) {
  struct bc *b = ipx_test_shared_alloc(sizeof *b);
  ipx_named_t *h[3];
  ipx_shm_t *s;
  ipx_region_t *r;
  queue_t *q;
  make_pc(&b->nm, h, &s, &r, &q);
  ipx_mutex_t *m = ipx_named_mutex(h[0]);
  IPX_ASSERT_OK(ipx_mutex_lock(m));
  pid_t k = ipx_test_fork(lock_signal_and_die, b);
  int rc;
  do rc = ipx_condition_wait_for(ipx_named_condition(h[2]), m, 20 * IPX_SEC);
  while (rc == 0 && !q->flag);
  IPX_ASSERT_ERR(rc, IPX_EOWNERDEAD);
  IPX_ASSERT_CHILD_SIGNALED(k, SIGKILL);
  IPX_ASSERT_EQ(q->flag, 1);
  IPX_ASSERT_OK(ipx_mutex_consistent(m));
  IPX_ASSERT_OK(ipx_mutex_unlock(m));
  IPX_ASSERT_OK(ipx_mutex_lock(m));
  IPX_ASSERT_OK(ipx_mutex_unlock(m));
  drop_pc(&b->nm, h, s, r);
}

/* ---- semaphore across processes ------------------------------------------------ */

/* argv: ping pong rounds.  Takes the two units ping was created with, then
 * answers every ping with a pong. */
IPX_TEST_PEER(sem_peer) {
  if (argc < 4) return 2;
  ipx_named_t *ping = open_only(IPX_NAMED_SEMAPHORE, argv[1]);
  ipx_named_t *pong = open_only(IPX_NAMED_SEMAPHORE, argv[2]);
  long rounds = atol(argv[3]);
  ipx_semaphore_t *a = ipx_named_semaphore(ping), *b = ipx_named_semaphore(pong);
  IPX_ASSERT_OK(ipx_semaphore_try_wait(a));
  IPX_ASSERT_OK(ipx_semaphore_try_wait(a));
  IPX_ASSERT_OK(ipx_semaphore_post(b)); /* "took both" */
  for (long i = 0; i < rounds; i++) {
    IPX_ASSERT_OK(ipx_semaphore_wait_for(a, 20 * IPX_SEC));
    IPX_ASSERT_OK(ipx_semaphore_post(b));
  }
  ipx_named_close(ping);
  ipx_named_close(pong);
  return 0;
}

static void poster(void *p) {
  const char *name = p;
  ipx_named_t *n = open_only(IPX_NAMED_SEMAPHORE, name);
  for (int i = 0; i < 500; i++) IPX_ASSERT_OK(ipx_semaphore_post(ipx_named_semaphore(n)));
  IPX_ASSERT_OK(ipx_named_close(n));
}

IPX_TEST(semaphore_between_processes) {
  char pi[200], po[200];
  ipx_test_name(pi, sizeof pi, "ping");
  ipx_test_name(po, sizeof po, "pong");
  ipx_named_t *a, *b;
  IPX_ASSERT_OK(ipx_named_semaphore_open(&a, pi, IPX_CREATE_ONLY, 0, 2));
  IPX_ASSERT_OK(ipx_named_semaphore_open(&b, po, IPX_CREATE_ONLY, 0, 0));
  ipx_semaphore_t *sa = ipx_named_semaphore(a), *sb = ipx_named_semaphore(b);
  long rounds = ipx_test_scale(10000, 200);
  char rs[32];
  snprintf(rs, sizeof rs, "%ld", rounds);
  pid_t p = ipx_test_spawn("sem_peer", pi, po, rs, NULL);
  IPX_ASSERT_OK(ipx_semaphore_wait_for(sb, 20 * IPX_SEC));
  unsigned v = 9;
  IPX_ASSERT_OK(ipx_semaphore_value(sa, &v));
  IPX_ASSERT_EQ(v, 0);
  for (long i = 0; i < rounds; i++) {
    IPX_ASSERT_OK(ipx_semaphore_post(sa));
    IPX_ASSERT_OK(ipx_semaphore_wait_for(sb, 20 * IPX_SEC));
  }
  IPX_ASSERT_CHILD_OK(p);
  IPX_ASSERT_ERR(ipx_semaphore_try_wait(sa), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_semaphore_try_wait(sb), IPX_EBUSY);

  /* Three processes post 500 each: exactly 1500 units arrive. */
  pid_t q[3];
  for (int i = 0; i < 3; i++) q[i] = ipx_test_fork(poster, pi);
  for (int i = 0; i < 1500; i++) IPX_ASSERT_OK(ipx_semaphore_wait_for(sa, 20 * IPX_SEC));
  for (int i = 0; i < 3; i++) IPX_ASSERT_CHILD_OK(q[i]);
  IPX_ASSERT_ERR(ipx_semaphore_try_wait(sa), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_named_close(a));
  IPX_ASSERT_OK(ipx_named_close(b));
  IPX_ASSERT_OK(ipx_named_remove(pi));
  IPX_ASSERT_OK(ipx_named_remove(po));
}

/* ---- a named mutex between exec'd peers --------------------------------------- */

/* argv: mutex data rounds */
IPX_TEST_PEER(count_peer) {
  if (argc < 4) return 2;
  ipx_named_t *nm = open_only(IPX_NAMED_MUTEX, argv[1]);
  ipx_shm_t *s;
  ipx_region_t *r;
  queue_t *q = map_queue(argv[2], &s, &r, 0);
  long rounds = atol(argv[3]);
  ipx_mutex_t *m = ipx_named_mutex(nm);
  for (long i = 0; i < rounds; i++) {
    IPX_ASSERT_OK(ipx_mutex_lock(m));
    uint64_t v = q->sum;
    if (i % 64 == 0) sched_yield();
    q->sum = v + 1;
    IPX_ASSERT_OK(ipx_mutex_unlock(m));
  }
  ipx_named_close(nm);
  ipx_region_unmap(r);
  ipx_shm_close(s);
  return 0;
}

IPX_TEST(named_mutex_excludes_exec_peers) {
  struct pc_names nm;
  ipx_named_t *h[3];
  ipx_shm_t *s;
  ipx_region_t *r;
  queue_t *q;
  make_pc(&nm, h, &s, &r, &q);
  long rounds = ipx_test_scale(20000, 500);
  char rs[32];
  snprintf(rs, sizeof rs, "%ld", rounds);
  pid_t p[3];
  for (int i = 0; i < 3; i++) p[i] = ipx_test_spawn("count_peer", nm.m, nm.d, rs, NULL);
  for (int i = 0; i < 3; i++) IPX_ASSERT_CHILD_OK(p[i]);
  IPX_ASSERT_EQ(q->sum, 3 * (uint64_t)rounds);
  drop_pc(&nm, h, s, r);
}
