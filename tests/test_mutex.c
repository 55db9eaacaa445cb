/* mutex and recursive mutex: exclusion between processes and threads, owner
 * death (kill -9), the unrecoverable path, different mapping addresses,
 * interleaving with glibc's robust mutexes on one robust list, timeouts,
 * bad input, scoped locking. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

/* ---- the two kinds behind one interface -------------------------------- */
typedef struct kind {
  const char *name;
  int (*init)(void *);
  int (*destroy)(void *);
  int (*lock)(void *);
  int (*try_lock)(void *);
  int (*lock_for)(void *, uint64_t);
  int (*unlock)(void *);
  int (*consistent)(void *);
} kind_t;

#define WRAP(kind, T)                                                      \
  static int kind##_init_(void *m) { return ipx_##kind##_init((T *)m); }   \
  static int kind##_destroy_(void *m) {                                    \
    return ipx_##kind##_destroy((T *)m);                                   \
  }                                                                        \
  static int kind##_lock_(void *m) { return ipx_##kind##_lock((T *)m); }   \
  static int kind##_try_(void *m) { return ipx_##kind##_try_lock((T *)m); } \
  static int kind##_for_(void *m, uint64_t ns) {                           \
    return ipx_##kind##_lock_for((T *)m, ns);                              \
  }                                                                        \
  static int kind##_unlock_(void *m) { return ipx_##kind##_unlock((T *)m); } \
  static int kind##_consistent_(void *m) {                                 \
    return ipx_##kind##_consistent((T *)m);                                \
  }                                                                        \
  static const kind_t kind##_kind = {#kind,        kind##_init_,           \
                                     kind##_destroy_, kind##_lock_,        \
                                     kind##_try_,  kind##_for_,            \
                                     kind##_unlock_, kind##_consistent_};
WRAP(mutex, ipx_mutex_t)
WRAP(recursive_mutex, ipx_recursive_mutex_t)
static const kind_t *const kinds[] = {&mutex_kind, &recursive_mutex_kind};
#define FOR_EACH_KIND(k)                                                   \
  for (size_t k##_i_ = 0; k##_i_ < 2; k##_i_++)                            \
    for (const kind_t *k = kinds[k##_i_]; k; k = NULL)

/* What the processes of a test share. */
typedef struct shared {
  union {
    ipx_mutex_t m;
    ipx_recursive_mutex_t r;
  } lock;
  const kind_t *kind; /* same address in forked children */
  volatile long counter;
  atomic_int inside;
  atomic_int ready;
  atomic_int violations;
  long iters;
  ipx_mutex_t spare;
} shared_t;

static shared_t *shared_new(const kind_t *k) {
  shared_t *s = ipx_test_shared_alloc(sizeof *s);
  memset(s, 0, sizeof *s);
  s->kind = k;
  IPX_ASSERT_OK(k->init(&s->lock));
  return s;
}

static void wait_ready(shared_t *s, int n) {
  for (int i = 0; i < 20000 && atomic_load(&s->ready) < n; i++)
    ipx_test_sleep_ms(1);
  IPX_ASSERT_GE(atomic_load(&s->ready), n);
}

/* The slow read-modify-write: a reader that is not excluded sees a stale
 * counter and the final count comes out short; `inside` catches two in the
 * section directly. */
static void critical_section(shared_t *s) {
  if (atomic_fetch_add(&s->inside, 1) != 0) atomic_fetch_add(&s->violations, 1);
  long c = s->counter;
  for (volatile int spin = 0; spin < 50; spin++) {
  }
  if ((ipx_test_rand() & 63) == 0) sched_yield();
  s->counter = c + 1;
  atomic_fetch_sub(&s->inside, 1);
}

static void hammer(void *arg) {
  shared_t *s = arg;
  for (long i = 0; i < s->iters; i++) {
    int r = s->kind->lock(&s->lock);
    if (r != 0) IPX_FAIL("lock: %s", ipx_err_name(r));
    if (s->kind == &recursive_mutex_kind && (i & 7) == 0) {
      IPX_ASSERT_OK(s->kind->lock(&s->lock));
      critical_section(s);
      IPX_ASSERT_OK(s->kind->unlock(&s->lock));
    } else {
      critical_section(s);
    }
    IPX_ASSERT_OK(s->kind->unlock(&s->lock));
  }
}

IPX_TEST(processes_exclude_each_other_exactly) {
  FOR_EACH_KIND(k) {
    shared_t *s = shared_new(k);
    s->iters = ipx_test_scale(20000, 200);
    enum { N = 4 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) pids[i] = ipx_test_fork(hammer, s);
    for (int i = 0; i < N; i++) IPX_ASSERT_CHILD_OK(pids[i]);
    IPX_ASSERT_EQ(s->counter, N * s->iters);
    IPX_ASSERT_EQ(atomic_load(&s->violations), 0);
    IPX_ASSERT_OK(k->destroy(&s->lock));
  }
}

static void *hammer_thread(void *arg) {
  hammer(arg);
  return NULL;
}

IPX_TEST(threads_exclude_each_other_exactly) {
  FOR_EACH_KIND(k) {
    shared_t *s = shared_new(k);
    s->iters = ipx_test_scale(20000, 200);
    enum { N = 4 };
    pthread_t t[N];
    for (int i = 0; i < N; i++)
      IPX_ASSERT_EQ(pthread_create(&t[i], NULL, hammer_thread, s), 0);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    IPX_ASSERT_EQ(s->counter, N * s->iters);
    IPX_ASSERT_EQ(atomic_load(&s->violations), 0);
    IPX_ASSERT_OK(k->destroy(&s->lock));
  }
}

/* Threads of several processes at once. */
static void hammer_two_threads(void *arg) {
  pthread_t t;
  IPX_ASSERT_EQ(pthread_create(&t, NULL, hammer_thread, arg), 0);
  hammer(arg);
  pthread_join(t, NULL);
}

IPX_TEST(threads_of_several_processes) {
  shared_t *s = shared_new(&mutex_kind);
  s->iters = ipx_test_scale(10000, 100);
  pid_t a = ipx_test_fork(hammer_two_threads, s);
  pid_t b = ipx_test_fork(hammer_two_threads, s);
  IPX_ASSERT_CHILD_OK(a);
  IPX_ASSERT_CHILD_OK(b);
  IPX_ASSERT_EQ(s->counter, 4 * s->iters);
  IPX_ASSERT_EQ(atomic_load(&s->violations), 0);
}

IPX_TEST(basic_semantics) {
  ipx_mutex_t m;
  IPX_ASSERT_OK(ipx_mutex_init(&m));
  IPX_ASSERT_OK(ipx_mutex_lock(&m));
  IPX_ASSERT_ERR(ipx_mutex_lock(&m), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_mutex_try_lock(&m), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_mutex_lock_for(&m, IPX_MSEC), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_mutex_consistent(&m), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_mutex_destroy(&m), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_mutex_unlock(&m));
  IPX_ASSERT_ERR(ipx_mutex_unlock(&m), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_mutex_consistent(&m), IPX_ENOTOWNER);
  IPX_ASSERT_OK(ipx_mutex_try_lock(&m));
  IPX_ASSERT_OK(ipx_mutex_unlock(&m));
  IPX_ASSERT_OK(ipx_mutex_lock_until(&m, 0)); /* free: a past deadline is fine */
  IPX_ASSERT_OK(ipx_mutex_unlock(&m));
  IPX_ASSERT_OK(ipx_mutex_destroy(&m));
  IPX_ASSERT_ERR(ipx_mutex_lock(&m), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_mutex_destroy(&m), IPX_EINVAL);
}

IPX_TEST(recursive_depth) {
  ipx_recursive_mutex_t r;
  IPX_ASSERT_OK(ipx_recursive_mutex_init(&r));
  for (int i = 0; i < 5; i++) IPX_ASSERT_OK(ipx_recursive_mutex_lock(&r));
  IPX_ASSERT_OK(ipx_recursive_mutex_try_lock(&r));
  IPX_ASSERT_OK(ipx_recursive_mutex_lock_for(&r, IPX_MSEC));
  IPX_ASSERT_ERR(ipx_recursive_mutex_destroy(&r), IPX_EBUSY);
  for (int i = 0; i < 7; i++) IPX_ASSERT_OK(ipx_recursive_mutex_unlock(&r));
  IPX_ASSERT_ERR(ipx_recursive_mutex_unlock(&r), IPX_ENOTOWNER);
  IPX_ASSERT_OK(ipx_recursive_mutex_destroy(&r));
}

/* ---- bad input ---------------------------------------------------------- */
IPX_TEST(bad_input_is_reported) {
  FOR_EACH_KIND(k) {
    IPX_ASSERT_ERR(k->init(NULL), IPX_EINVAL);
    IPX_ASSERT_ERR(k->destroy(NULL), IPX_EINVAL);
    IPX_ASSERT_ERR(k->lock(NULL), IPX_EINVAL);
    IPX_ASSERT_ERR(k->try_lock(NULL), IPX_EINVAL);
    IPX_ASSERT_ERR(k->lock_for(NULL, 1), IPX_EINVAL);
    IPX_ASSERT_ERR(k->unlock(NULL), IPX_EINVAL);
    IPX_ASSERT_ERR(k->consistent(NULL), IPX_EINVAL);

    /* Never initialised (zeroed memory looks unlocked: the magic tells). */
    ipx_mutex_t zero;
    memset(&zero, 0, sizeof zero);
    IPX_ASSERT_ERR(k->lock(&zero), IPX_EINVAL);
    IPX_ASSERT_ERR(k->try_lock(&zero), IPX_EINVAL);
    IPX_ASSERT_ERR(k->lock_for(&zero, 1), IPX_EINVAL);
    IPX_ASSERT_ERR(k->unlock(&zero), IPX_EINVAL);
    IPX_ASSERT_ERR(k->consistent(&zero), IPX_EINVAL);
    IPX_ASSERT_ERR(k->destroy(&zero), IPX_EINVAL);
    /* Overwritten memory. */
    ipx_mutex_t junk;
    memset(&junk, 0xa5, sizeof junk);
    IPX_ASSERT_ERR(k->lock(&junk), IPX_ECORRUPT);
    IPX_ASSERT_ERR(k->try_lock(&junk), IPX_ECORRUPT);
    IPX_ASSERT_ERR(k->unlock(&junk), IPX_ECORRUPT);
    IPX_ASSERT_ERR(k->destroy(&junk), IPX_ECORRUPT);
  }
  /* One kind's functions on the other kind. */
  ipx_mutex_t m;
  ipx_recursive_mutex_t r;
  IPX_ASSERT_OK(ipx_mutex_init(&m));
  IPX_ASSERT_OK(ipx_recursive_mutex_init(&r));
  IPX_ASSERT_ERR(ipx_recursive_mutex_lock((ipx_recursive_mutex_t *)&m),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_mutex_lock((ipx_mutex_t *)&r), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_mutex_destroy(&m));
  IPX_ASSERT_OK(ipx_recursive_mutex_destroy(&r));
}

/* A word that holds the caller's TID although the caller never took the
 * lock: damaged into it, or left by a thread of another boot or PID
 * namespace that had the same number.  It is not the caller's hold: the
 * lock is busy, and nothing releases or unlinks it (unlinking a node that
 * was never linked used to crash). */
IPX_TEST(own_tid_in_a_word_never_taken_is_not_a_hold) {
  FOR_EACH_KIND(k) {
    ipx_mutex_t m; /* same layout for both kinds */
    IPX_ASSERT_OK(k->init(&m));
    uint32_t tid = (uint32_t)syscall(SYS_gettid);
    memcpy(&m, &tid, sizeof tid); /* the lock word, at byte 0 */
    IPX_ASSERT_ERR(k->unlock(&m), IPX_ENOTOWNER);
    IPX_ASSERT_ERR(k->consistent(&m), IPX_ENOTOWNER);
    IPX_ASSERT_ERR(k->try_lock(&m), IPX_EBUSY);
    IPX_ASSERT_ERR(k->lock_for(&m, IPX_MSEC), IPX_ETIMEDOUT);
    IPX_ASSERT_ERR(k->unlock(&m), IPX_ENOTOWNER);
    /* While the caller really holds another lock, too. */
    ipx_mutex_t held;
    IPX_ASSERT_OK(k->init(&held));
    IPX_ASSERT_OK(k->lock(&held));
    IPX_ASSERT_ERR(k->unlock(&m), IPX_ENOTOWNER);
    IPX_ASSERT_ERR(k->try_lock(&m), IPX_EBUSY);
    IPX_ASSERT_OK(k->unlock(&held));
    IPX_ASSERT_OK(k->destroy(&held));
  }
}

static void *unlock_from_other_thread(void *arg) {
  shared_t *s = arg;
  int r1 = s->kind->unlock(&s->lock);
  int r2 = s->kind->consistent(&s->lock);
  int r3 = s->kind->try_lock(&s->lock);
  return (void *)(intptr_t)((r1 == IPX_ENOTOWNER) && (r2 == IPX_ENOTOWNER) &&
                            (r3 == IPX_EBUSY));
}

static void unlock_from_other_process(void *arg) {
  shared_t *s = arg;
  IPX_ASSERT_ERR(s->kind->unlock(&s->lock), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(s->kind->try_lock(&s->lock), IPX_EBUSY);
}

IPX_TEST(unlock_by_non_owner_is_refused) {
  FOR_EACH_KIND(k) {
    shared_t *s = shared_new(k);
    IPX_ASSERT_OK(k->lock(&s->lock));
    pthread_t t;
    void *ok;
    IPX_ASSERT_EQ(pthread_create(&t, NULL, unlock_from_other_thread, s), 0);
    pthread_join(t, &ok);
    IPX_ASSERT(ok != NULL);
    IPX_ASSERT_CHILD_OK(ipx_test_fork(unlock_from_other_process, s));
    IPX_ASSERT_OK(k->unlock(&s->lock));
    IPX_ASSERT_OK(k->destroy(&s->lock));
  }
}

/* ---- owner death --------------------------------------------------------- */
static void lock_and_hang(void *arg) {
  shared_t *s = arg;
  int depth = s->kind == &recursive_mutex_kind ? 3 : 1;
  for (int i = 0; i < depth; i++) {
    int r = s->kind->lock(&s->lock);
    if (r != 0 && r != IPX_EOWNERDEAD) IPX_FAIL("lock: %s", ipx_err_name(r));
  }
  atomic_fetch_add(&s->ready, 1);
  for (;;) pause();
}

static void kill_holder(shared_t *s) {
  atomic_store(&s->ready, 0);
  pid_t pid = ipx_test_fork(lock_and_hang, s);
  wait_ready(s, 1);
  kill(pid, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(pid, SIGKILL);
}

IPX_TEST(killed_holder_gives_ownerdead_then_repair) {
  FOR_EACH_KIND(k) {
    shared_t *s = shared_new(k);
    kill_holder(s);
    IPX_ASSERT_ERR(k->lock(&s->lock), IPX_EOWNERDEAD);
    /* Held at depth 1: one unlock releases a recursive mutex too. */
    IPX_ASSERT_OK(k->consistent(&s->lock));
    IPX_ASSERT_ERR(k->consistent(&s->lock), IPX_EINVAL);
    IPX_ASSERT_OK(k->unlock(&s->lock));
    IPX_ASSERT_ERR(k->unlock(&s->lock), IPX_ENOTOWNER);
    IPX_ASSERT_OK(k->lock(&s->lock));
    IPX_ASSERT_OK(k->unlock(&s->lock));
    /* try_lock and the timed lock see the death as well. */
    kill_holder(s);
    IPX_ASSERT_ERR(k->try_lock(&s->lock), IPX_EOWNERDEAD);
    IPX_ASSERT_OK(k->consistent(&s->lock));
    IPX_ASSERT_OK(k->unlock(&s->lock));
    kill_holder(s);
    IPX_ASSERT_ERR(k->lock_for(&s->lock, IPX_SEC), IPX_EOWNERDEAD);
    IPX_ASSERT_OK(k->consistent(&s->lock));
    IPX_ASSERT_OK(k->unlock(&s->lock));
    IPX_ASSERT_OK(k->destroy(&s->lock));
  }
}

/* The next locker dies too before repairing: still IPX_EOWNERDEAD. */
IPX_TEST(death_of_the_repairer_is_seen_again) {
  FOR_EACH_KIND(k) {
    shared_t *s = shared_new(k);
    kill_holder(s);
    kill_holder(s); /* this child got IPX_EOWNERDEAD and died */
    IPX_ASSERT_ERR(k->lock(&s->lock), IPX_EOWNERDEAD);
    IPX_ASSERT_OK(k->consistent(&s->lock));
    IPX_ASSERT_OK(k->unlock(&s->lock));
  }
}

static void lock_expect(void *arg) {
  shared_t *s = arg;
  atomic_fetch_add(&s->ready, 1);
  int r = s->kind->lock(&s->lock);
  IPX_ASSERT_ERR(r, IPX_EOWNERDEAD);
  IPX_ASSERT_OK(s->kind->consistent(&s->lock));
  IPX_ASSERT_OK(s->kind->unlock(&s->lock));
}

/* A waiter asleep in lock is woken by the kernel when the holder dies. */
IPX_TEST(sleeping_waiter_is_woken_by_holder_death) {
  FOR_EACH_KIND(k) {
    shared_t *s = shared_new(k);
    pid_t holder = ipx_test_fork(lock_and_hang, s);
    wait_ready(s, 1);
    pid_t waiter = ipx_test_fork(lock_expect, s);
    wait_ready(s, 2);
    ipx_test_sleep_ms(50); /* let it go to sleep on the futex */
    kill(holder, SIGKILL);
    IPX_ASSERT_CHILD_SIGNALED(holder, SIGKILL);
    IPX_ASSERT_CHILD_OK(waiter);
    IPX_ASSERT_OK(k->lock(&s->lock));
    IPX_ASSERT_OK(k->unlock(&s->lock));
  }
}

static void lock_expect_notrec(void *arg) {
  shared_t *s = arg;
  atomic_fetch_add(&s->ready, 1);
  IPX_ASSERT_ERR(s->kind->lock(&s->lock), IPX_ENOTRECOVERABLE);
}

IPX_TEST(unlock_without_repair_is_not_recoverable) {
  FOR_EACH_KIND(k) {
    shared_t *s = shared_new(k);
    kill_holder(s);
    IPX_ASSERT_ERR(k->lock(&s->lock), IPX_EOWNERDEAD);
    atomic_store(&s->ready, 0);
    pid_t waiter = ipx_test_fork(lock_expect_notrec, s);
    wait_ready(s, 1);
    ipx_test_sleep_ms(30);
    IPX_ASSERT_OK(k->unlock(&s->lock)); /* without consistent */
    IPX_ASSERT_CHILD_OK(waiter);        /* the sleeper was told */
    IPX_ASSERT_ERR(k->lock(&s->lock), IPX_ENOTRECOVERABLE);
    IPX_ASSERT_ERR(k->try_lock(&s->lock), IPX_ENOTRECOVERABLE);
    IPX_ASSERT_ERR(k->lock_for(&s->lock, IPX_MSEC), IPX_ENOTRECOVERABLE);
    IPX_ASSERT_ERR(k->unlock(&s->lock), IPX_ENOTOWNER);
    /* Only destroy + init revive it. */
    IPX_ASSERT_OK(k->destroy(&s->lock));
    IPX_ASSERT_OK(k->init(&s->lock));
    IPX_ASSERT_OK(k->lock(&s->lock));
    IPX_ASSERT_OK(k->unlock(&s->lock));
  }
}

IPX_TEST(recursive_death_several_levels_deep) {
  shared_t *s = shared_new(&recursive_mutex_kind);
  kill_holder(s); /* held at depth 3 */
  IPX_ASSERT_ERR(ipx_recursive_mutex_lock(&s->lock.r), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_recursive_mutex_lock(&s->lock.r)); /* depth 2 */
  IPX_ASSERT_OK(ipx_recursive_mutex_consistent(&s->lock.r));
  IPX_ASSERT_OK(ipx_recursive_mutex_unlock(&s->lock.r));
  IPX_ASSERT_OK(ipx_recursive_mutex_unlock(&s->lock.r));
  IPX_ASSERT_ERR(ipx_recursive_mutex_unlock(&s->lock.r), IPX_ENOTOWNER);
  /* Inconsistent at depth 2: only the last unlock makes it unrecoverable. */
  kill_holder(s);
  IPX_ASSERT_ERR(ipx_recursive_mutex_lock(&s->lock.r), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_recursive_mutex_lock(&s->lock.r));
  IPX_ASSERT_OK(ipx_recursive_mutex_unlock(&s->lock.r));
  IPX_ASSERT_OK(ipx_recursive_mutex_consistent(&s->lock.r));
  IPX_ASSERT_OK(ipx_recursive_mutex_unlock(&s->lock.r));
  IPX_ASSERT_OK(ipx_recursive_mutex_lock(&s->lock.r));
  IPX_ASSERT_OK(ipx_recursive_mutex_unlock(&s->lock.r));
}

/* A thread that exits holding the lock is a dead owner too. */
static void *lock_and_exit(void *arg) {
  shared_t *s = arg;
  IPX_ASSERT_OK(s->kind->lock(&s->lock));
  return NULL;
}
static void thread_exit_case(void *arg) {
  shared_t *s = arg;
  pthread_t t;
  IPX_ASSERT_EQ(pthread_create(&t, NULL, lock_and_exit, s), 0);
  pthread_join(t, NULL);
  IPX_ASSERT_ERR(s->kind->lock(&s->lock), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(s->kind->consistent(&s->lock));
  IPX_ASSERT_OK(s->kind->unlock(&s->lock));
}
IPX_TEST(thread_exit_while_holding) {
#if defined(__SANITIZE_THREAD__)
  /* TSan (rightly, from its point of view) reports a mutex taken over from
   * a thread that never unlocked it. */
  IPX_SKIP("TSan reports the takeover of a dead thread's mutex");
#endif
  FOR_EACH_KIND(k) {
    shared_t *s = shared_new(k);
    /* In a child, so the parent's runtime never sees the orphaned lock. */
    IPX_ASSERT_CHILD_OK(ipx_test_fork(thread_exit_case, s));
  }
}

/* ---- the robust list is shared with glibc ------------------------------- */
IPX_TEST(glibc_robust_list_layout_is_as_assumed) {
  struct robust_list_head *head = NULL;
  size_t len = 0;
  IPX_ASSERT_EQ(syscall(SYS_get_robust_list, 0, &head, &len), 0);
  IPX_ASSERT(head != NULL);
  IPX_ASSERT_EQ(len, sizeof *head);
  IPX_ASSERT_EQ(head->futex_offset, -32);
  /* A locked glibc robust mutex is at the list head, linked through its
   * __next field, with the word 32 bytes before it: the layout ipx copies. */
  pthread_mutexattr_t a;
  pthread_mutex_t pm;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  IPX_ASSERT_EQ(pthread_mutex_init(&pm, &a), 0);
  IPX_ASSERT_EQ(pthread_mutex_lock(&pm), 0);
  IPX_ASSERT_PTR_EQ(head->list.next, (void *)((char *)&pm + 32));
  IPX_ASSERT_PTR_EQ(*(void **)((char *)&pm + 24), head);
  /* And an ipx mutex taken next goes in front of it the same way. */
  ipx_mutex_t m;
  IPX_ASSERT_OK(ipx_mutex_init(&m));
  IPX_ASSERT_OK(ipx_mutex_lock(&m));
  IPX_ASSERT_PTR_EQ(head->list.next, (void *)((char *)&m + 32));
  IPX_ASSERT_PTR_EQ(*(void **)((char *)&m + 32), (char *)&pm + 32);
  IPX_ASSERT_PTR_EQ(*(void **)((char *)&pm + 24), (char *)&m + 32);
  IPX_ASSERT(head->list_op_pending == NULL);
  IPX_ASSERT_EQ(pthread_mutex_unlock(&pm), 0); /* glibc unlinks around ipx */
  IPX_ASSERT_PTR_EQ(*(void **)((char *)&m + 32), head);
  IPX_ASSERT_OK(ipx_mutex_unlock(&m));
  IPX_ASSERT_PTR_EQ(head->list.next, head);
  pthread_mutex_destroy(&pm);
}

static void glibc_lock(pthread_mutex_t *m) {
  int r = pthread_mutex_lock(m);
  if (r != 0 && r != EOWNERDEAD) IPX_FAIL("pthread_mutex_lock: %d", r);
  if (r == EOWNERDEAD) pthread_mutex_consistent(m);
}

typedef struct mixed {
  pthread_mutex_t g[3];
  ipx_mutex_t x[3];
  atomic_int ready;
} mixed_t;

static void mixed_lock_and_hang(void *arg) {
  mixed_t *s = arg;
  /* Interleave, then unlock out of order so both sides unlink entries the
   * other side linked. */
  glibc_lock(&s->g[0]);
  IPX_ASSERT_OK(ipx_mutex_lock(&s->x[0]));
  glibc_lock(&s->g[1]);
  IPX_ASSERT_OK(ipx_mutex_lock(&s->x[1]));
  glibc_lock(&s->g[2]);
  IPX_ASSERT_OK(ipx_mutex_lock(&s->x[2]));
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->x[1]));
  IPX_ASSERT_EQ(pthread_mutex_unlock(&s->g[1]), 0);
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->x[0]));
  atomic_store(&s->ready, 1);
  for (;;) pause();
}

IPX_TEST(interleaved_with_glibc_robust_mutexes) {
  mixed_t *s = ipx_test_shared_alloc(sizeof *s);
  memset(s, 0, sizeof *s);
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  for (int i = 0; i < 3; i++) {
    IPX_ASSERT_EQ(pthread_mutex_init(&s->g[i], &a), 0);
    IPX_ASSERT_OK(ipx_mutex_init(&s->x[i]));
  }
  pid_t pid = ipx_test_fork(mixed_lock_and_hang, s);
  for (int i = 0; i < 10000 && !atomic_load(&s->ready); i++) ipx_test_sleep_ms(1);
  kill(pid, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(pid, SIGKILL);
  /* Every lock still held at death is marked, on both sides. */
  IPX_ASSERT_EQ(pthread_mutex_lock(&s->g[0]), EOWNERDEAD);
  IPX_ASSERT_EQ(pthread_mutex_lock(&s->g[1]), 0);
  IPX_ASSERT_EQ(pthread_mutex_lock(&s->g[2]), EOWNERDEAD);
  IPX_ASSERT_OK(ipx_mutex_lock(&s->x[0]));
  IPX_ASSERT_OK(ipx_mutex_lock(&s->x[1]));
  IPX_ASSERT_ERR(ipx_mutex_lock(&s->x[2]), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_mutex_consistent(&s->x[2]));
  for (int i = 0; i < 3; i++) {
    if (i != 1) pthread_mutex_consistent(&s->g[i]);
    IPX_ASSERT_EQ(pthread_mutex_unlock(&s->g[i]), 0);
    IPX_ASSERT_OK(ipx_mutex_unlock(&s->x[i]));
  }
}

/* ---- the same memory at different addresses ----------------------------- */
static int memfd_shared(size_t size) {
  int fd = memfd_create("ipx-test", 0); /* inherited by exec'd peers */
  IPX_ASSERT(fd >= 0);
  IPX_ASSERT_EQ(ftruncate(fd, (off_t)size), 0);
  return fd;
}
static void *map_fd(int fd, size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  IPX_ASSERT(p != MAP_FAILED);
  return p;
}

typedef struct remote {
  ipx_mutex_t m;
  ipx_recursive_mutex_t r;
  volatile long counter;
  atomic_int inside, violations, ready;
  atomic_uintptr_t addr[2];
} remote_t;

static void remote_work(remote_t *s, long iters, int slot) {
  atomic_store(&s->addr[slot], (uintptr_t)s);
  for (long i = 0; i < iters; i++) {
    IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
    if (atomic_fetch_add(&s->inside, 1) != 0) atomic_fetch_add(&s->violations, 1);
    long c = s->counter;
    for (volatile int spin = 0; spin < 20; spin++) {
    }
    s->counter = c + 1;
    atomic_fetch_sub(&s->inside, 1);
    IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  }
}

IPX_TEST_PEER(remote_peer) {
  /* argv: fd iters mode(0 = count, 1 = lock and hang) */
  if (argc < 4) return 2;
  int fd = atoi(argv[1]);
  remote_t *s = map_fd(fd, 4096);
  if (atoi(argv[3]) == 1) {
    IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
    for (int i = 0; i < 3; i++) IPX_ASSERT_OK(ipx_recursive_mutex_lock(&s->r));
    atomic_store(&s->addr[1], (uintptr_t)s);
    atomic_store(&s->ready, 1);
    for (;;) pause();
  }
  remote_work(s, atol(argv[2]), 1);
  return 0;
}

IPX_TEST(different_addresses_exec_peer) {
  int fd = memfd_shared(4096);
  remote_t *s = map_fd(fd, 4096);
  IPX_ASSERT_OK(ipx_mutex_init(&s->m));
  IPX_ASSERT_OK(ipx_recursive_mutex_init(&s->r));
  long iters = ipx_test_scale(20000, 200);
  char fds[16], its[32];
  snprintf(fds, sizeof fds, "%d", fd);
  snprintf(its, sizeof its, "%ld", iters);
  pid_t p = ipx_test_spawn("remote_peer", fds, its, "0", NULL);
  remote_work(s, iters, 0);
  IPX_ASSERT_CHILD_OK(p);
  IPX_ASSERT_EQ(s->counter, 2 * iters);
  IPX_ASSERT_EQ(atomic_load(&s->violations), 0);

  /* A peer that holds both kinds at its own address and is killed. */
  p = ipx_test_spawn("remote_peer", fds, "0", "1", NULL);
  for (int i = 0; i < 10000 && !atomic_load(&s->ready); i++) ipx_test_sleep_ms(1);
  IPX_ASSERT(atomic_load(&s->ready));
  ipx_test_log("parent maps at %p, peer at %p", (void *)s,
               (void *)atomic_load(&s->addr[1]));
  kill(p, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(p, SIGKILL);
  IPX_ASSERT_ERR(ipx_mutex_lock(&s->m), IPX_EOWNERDEAD);
  IPX_ASSERT_ERR(ipx_recursive_mutex_lock(&s->r), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_mutex_consistent(&s->m));
  IPX_ASSERT_OK(ipx_recursive_mutex_consistent(&s->r));
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  IPX_ASSERT_OK(ipx_recursive_mutex_unlock(&s->r));
  close(fd);
}

typedef struct twomap_arg {
  int fd;
  long iters;
  remote_t *parent_view;
} twomap_arg_t;

/* A forked child maps the object again: the new mapping sits elsewhere
 * because the inherited one still occupies the parent's address. */
static void remap_and_work(void *arg) {
  twomap_arg_t *a = arg;
  remote_t *mine = map_fd(a->fd, 4096);
  IPX_ASSERT((void *)mine != (void *)a->parent_view);
  munmap(a->parent_view, 4096);
  remote_work(mine, a->iters, 1);
}
static void remap_lock_and_hang(void *arg) {
  twomap_arg_t *a = arg;
  remote_t *mine = map_fd(a->fd, 4096);
  IPX_ASSERT((void *)mine != (void *)a->parent_view);
  IPX_ASSERT_OK(ipx_mutex_lock(&mine->m));
  atomic_store(&mine->ready, 1);
  for (;;) pause();
}

IPX_TEST(different_addresses_mapped_twice) {
  int fd = memfd_shared(4096);
  remote_t *s = map_fd(fd, 4096);
  IPX_ASSERT_OK(ipx_mutex_init(&s->m));
  twomap_arg_t a = {fd, ipx_test_scale(20000, 200), s};
  pid_t p = ipx_test_fork(remap_and_work, &a);
  remote_work(s, a.iters, 0);
  IPX_ASSERT_CHILD_OK(p);
  IPX_ASSERT_EQ(s->counter, 2 * a.iters);
  IPX_ASSERT_EQ(atomic_load(&s->violations), 0);

  /* One process, two views: lock through one, the other sees it held. */
  remote_t *other = map_fd(fd, 4096);
  IPX_ASSERT(other != s);
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  IPX_ASSERT_ERR(ipx_mutex_try_lock(&other->m), IPX_EDEADLK);
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  IPX_ASSERT_OK(ipx_mutex_try_lock(&other->m));
  IPX_ASSERT_ERR(ipx_mutex_try_lock(&s->m), IPX_EDEADLK);
  IPX_ASSERT_OK(ipx_mutex_unlock(&other->m));

  p = ipx_test_fork(remap_lock_and_hang, &a);
  for (int i = 0; i < 10000 && !atomic_load(&s->ready); i++) ipx_test_sleep_ms(1);
  kill(p, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(p, SIGKILL);
  IPX_ASSERT_ERR(ipx_mutex_lock(&other->m), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_mutex_consistent(&other->m));
  IPX_ASSERT_OK(ipx_mutex_unlock(&other->m));
  munmap(other, 4096);
  close(fd);
}

/* ---- fork ---------------------------------------------------------------- */
static void child_after_fork(void *arg) {
  shared_t *s = arg;
  /* The parent's lock is not the child's, */
  IPX_ASSERT_ERR(ipx_mutex_unlock(&s->lock.m), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_mutex_try_lock(&s->lock.m), IPX_EBUSY);
  /* and the child's own locks carry its own TID (killed below). */
  IPX_ASSERT_OK(ipx_mutex_lock(&s->spare));
  uint32_t word;
  memcpy(&word, &s->spare, sizeof word);
  IPX_ASSERT_EQ(word & 0x3fffffffu, (uint32_t)syscall(SYS_gettid));
  atomic_store(&s->ready, 1);
  for (;;) pause();
}

IPX_TEST(fork_child_has_its_own_identity) {
  shared_t *s = shared_new(&mutex_kind);
  ipx_mutex_t *second = &s->spare;
  IPX_ASSERT_OK(ipx_mutex_init(second));
  IPX_ASSERT_OK(ipx_mutex_lock(&s->lock.m)); /* caches the parent's TID */
  pid_t p = ipx_test_fork(child_after_fork, s);
  for (int i = 0; i < 10000 && !atomic_load(&s->ready); i++) ipx_test_sleep_ms(1);
  kill(p, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(p, SIGKILL);
  IPX_ASSERT_ERR(ipx_mutex_lock(second), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->lock.m));
}

/* ---- timeouts -------------------------------------------------------------- */
IPX_TEST(timeouts) {
  FOR_EACH_KIND(k) {
    shared_t *s = shared_new(k);
    atomic_store(&s->ready, 0);
    pid_t p = ipx_test_fork(lock_and_hang, s);
    wait_ready(s, 1);
    uint64_t t0 = ipx_now();
    IPX_ASSERT_ERR(k->lock_for(&s->lock, 50 * IPX_MSEC), IPX_ETIMEDOUT);
    uint64_t dt = ipx_now() - t0;
    IPX_ASSERT_GE(dt, 45 * IPX_MSEC);
    IPX_ASSERT_LT(dt, 10 * IPX_SEC);
    IPX_ASSERT_ERR(k->try_lock(&s->lock), IPX_EBUSY);
    IPX_ASSERT_ERR(k->lock_for(&s->lock, 0), IPX_ETIMEDOUT);
    t0 = ipx_now();
    IPX_ASSERT_ERR(k->lock_for(&s->lock, 0), IPX_ETIMEDOUT);
    IPX_ASSERT_LT(ipx_now() - t0, 5 * IPX_SEC);
    kill(p, SIGKILL);
    IPX_ASSERT_CHILD_SIGNALED(p, SIGKILL);
  }
  ipx_mutex_t m;
  IPX_ASSERT_OK(ipx_mutex_init(&m));
  IPX_ASSERT_OK(ipx_mutex_lock(&m));
  /* An absolute deadline already past. */
  IPX_ASSERT_ERR(ipx_mutex_lock_until(&m, ipx_now() - IPX_MSEC), IPX_EDEADLK);
  IPX_ASSERT_OK(ipx_mutex_unlock(&m));
}

/* ---- scoped locking --------------------------------------------------------- */
static int with_return(ipx_mutex_t *m) {
  int rc;
  IPX_WITH_LOCK(m, &rc) { return 42; }
  return rc;
}
static int with_goto(ipx_mutex_t *m) {
  int rc;
  IPX_WITH_LOCK(m, &rc) { goto out; }
  return -1;
out:
  return rc;
}

IPX_TEST(scoped_lock_releases_on_every_exit) {
  shared_t *s = shared_new(&mutex_kind);
  ipx_mutex_t *m = &s->lock.m;
  int rc = -1, ran = 0;
  IPX_WITH_LOCK(m, &rc) {
    ran = 1;
    IPX_ASSERT_ERR(ipx_mutex_try_lock(m), IPX_EDEADLK);
  }
  IPX_ASSERT_EQ(rc, 0);
  IPX_ASSERT_EQ(ran, 1);
  IPX_ASSERT_OK(ipx_mutex_try_lock(m));
  IPX_ASSERT_OK(ipx_mutex_unlock(m));

  IPX_ASSERT_EQ(with_return(m), 42);
  IPX_ASSERT_OK(ipx_mutex_try_lock(m));
  IPX_ASSERT_OK(ipx_mutex_unlock(m));
  IPX_ASSERT_EQ(with_goto(m), 0);
  IPX_ASSERT_OK(ipx_mutex_try_lock(m));
  IPX_ASSERT_OK(ipx_mutex_unlock(m));
  for (int i = 0; i < 3; i++) {
    IPX_WITH_LOCK(m, &rc) {
      if (i == 1) break; /* leaves the block only */
      ran++;
    }
  }
  IPX_ASSERT_EQ(ran, 3);
  IPX_ASSERT_OK(ipx_mutex_try_lock(m));
  IPX_ASSERT_OK(ipx_mutex_unlock(m));

  /* A failed lock skips the block and says why. */
  ran = 0;
  IPX_ASSERT_OK(ipx_mutex_lock(m));
  IPX_WITH_LOCK(m, &rc) { ran = 1; }
  IPX_ASSERT_EQ(ran, 0);
  IPX_ASSERT_EQ(rc, IPX_EDEADLK);
  IPX_ASSERT_OK(ipx_mutex_unlock(m));

  /* Owner death is handed to the block, with the lock held. */
  kill_holder(s);
  IPX_WITH_LOCK(m, &rc) {
    ran = 1;
    IPX_ASSERT_EQ(rc, IPX_EOWNERDEAD);
    IPX_ASSERT_OK(ipx_mutex_consistent(m));
  }
  IPX_ASSERT_EQ(ran, 1);
  IPX_ASSERT_OK(ipx_mutex_try_lock(m));
  IPX_ASSERT_OK(ipx_mutex_unlock(m));

  ipx_recursive_mutex_t r;
  IPX_ASSERT_OK(ipx_recursive_mutex_init(&r));
  IPX_WITH_RECURSIVE_LOCK(&r, &rc) {
    IPX_WITH_RECURSIVE_LOCK(&r, &rc) { ran = 2; }
  }
  IPX_ASSERT_EQ(ran, 2);
  IPX_ASSERT_OK(ipx_recursive_mutex_destroy(&r));
}
