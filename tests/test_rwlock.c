/* sharable and upgradable mutexes: modes, writer preference, processes,
 * kill -9 of readers, writers and upgradable holders, bad input. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

#define NFIELDS 8
struct shared {
  ipx_upgradable_mutex_t um __attribute__((aligned(64)));
  ipx_sharable_mutex_t sm __attribute__((aligned(64)));
  long rec[NFIELDS]; /* a record: all fields equal when consistent */
  long writes;
  int flag;
  int stage;
  int bad_reads;
  long reads;
};

static struct shared *new_shared(void) {
  struct shared *sh = ipx_test_shared_alloc(sizeof *sh);
  IPX_ASSERT_OK(ipx_sharable_mutex_init(&sh->sm));
  IPX_ASSERT_OK(ipx_upgradable_mutex_init(&sh->um));
  return sh;
}

static void wait_stage(struct shared *sh, int stage) {
  uint64_t end = ipx_deadline_after(20 * IPX_SEC);
  while (__atomic_load_n(&sh->stage, __ATOMIC_SEQ_CST) < stage) {
    if (ipx_now() > end) IPX_FAIL("stage %d never reached", stage);
    ipx_test_sleep_ms(1);
  }
}
static void set_stage(struct shared *sh, int stage) {
  __atomic_store_n(&sh->stage, stage, __ATOMIC_SEQ_CST);
}

/* Runs fn in a thread and returns its result. */
struct call {
  int (*fn)(ipx_sharable_mutex_t *);
  ipx_sharable_mutex_t *m;
  int r;
};
static void *call_thread(void *p) {
  struct call *c = p;
  c->r = c->fn(c->m);
  return NULL;
}
static int in_other_thread(int (*fn)(ipx_sharable_mutex_t *),
                           ipx_sharable_mutex_t *m) {
  struct call c = {fn, m, 0};
  pthread_t th;
  if (pthread_create(&th, NULL, call_thread, &c) != 0) IPX_FAIL("thread");
  pthread_join(th, NULL);
  return c.r;
}
static int try_sh_and_release(ipx_sharable_mutex_t *m) {
  int r = ipx_sharable_mutex_try_lock_sharable(m);
  if (r == 0) IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
  return r;
}
static int try_ex_and_release(ipx_sharable_mutex_t *m) {
  int r = ipx_sharable_mutex_try_lock(m);
  if (r == 0 || r == IPX_EOWNERDEAD) IPX_ASSERT_OK(ipx_sharable_mutex_unlock(m));
  return r;
}

IPX_TEST(sharable_modes_exclude_as_they_should) {
  struct shared *sh = new_shared();
  ipx_sharable_mutex_t *m = &sh->sm;
  IPX_ASSERT_OK(ipx_sharable_mutex_lock(m));
  IPX_ASSERT_ERR(in_other_thread(try_sh_and_release, m), IPX_EBUSY);
  IPX_ASSERT_ERR(in_other_thread(try_ex_and_release, m), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock(m), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock_sharable(m), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock_sharable(m), IPX_ENOTOWNER);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock(m));
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock(m), IPX_ENOTOWNER);

  IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(m));
  IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(m)); /* a second share */
  IPX_ASSERT_OK(in_other_thread(try_sh_and_release, m));
  IPX_ASSERT_ERR(in_other_thread(try_ex_and_release, m), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_sharable_mutex_try_lock(m), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock(m), IPX_ENOTOWNER);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
  IPX_ASSERT_ERR(in_other_thread(try_ex_and_release, m), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock_sharable(m), IPX_ENOTOWNER);
  IPX_ASSERT_OK(in_other_thread(try_ex_and_release, m));

  /* exclusive -> sharable keeps writers out, lets readers in. */
  IPX_ASSERT_OK(ipx_sharable_mutex_lock(m));
  IPX_ASSERT_OK(ipx_sharable_mutex_demote(m));
  IPX_ASSERT_ERR(ipx_sharable_mutex_demote(m), IPX_ENOTOWNER);
  IPX_ASSERT_OK(in_other_thread(try_sh_and_release, m));
  IPX_ASSERT_ERR(in_other_thread(try_ex_and_release, m), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
  IPX_ASSERT_OK(ipx_sharable_mutex_destroy(m));
}

static int timed_ex(ipx_sharable_mutex_t *m) {
  uint64_t t0 = ipx_now();
  int r = ipx_sharable_mutex_lock_for(m, 30 * IPX_MSEC);
  IPX_ASSERT_GE(ipx_now() - t0, 30 * IPX_MSEC);
  return r;
}
static int timed_sh(ipx_sharable_mutex_t *m) {
  uint64_t t0 = ipx_now();
  int r = ipx_sharable_mutex_lock_sharable_until(
      m, ipx_deadline_after(30 * IPX_MSEC));
  IPX_ASSERT_GE(ipx_now() - t0, 30 * IPX_MSEC);
  return r;
}

IPX_TEST(timeouts) {
  struct shared *sh = new_shared();
  ipx_sharable_mutex_t *m = &sh->sm;
  IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(m));
  IPX_ASSERT_ERR(in_other_thread(timed_ex, m), IPX_ETIMEDOUT);
  /* The timed-out writer left no claim behind: readers still enter. */
  IPX_ASSERT_OK(in_other_thread(try_sh_and_release, m));
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
  IPX_ASSERT_OK(ipx_sharable_mutex_lock(m));
  IPX_ASSERT_ERR(in_other_thread(timed_sh, m), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(in_other_thread(timed_ex, m), IPX_ETIMEDOUT);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock(m));
  /* A past deadline still gets a free lock. */
  IPX_ASSERT_OK(ipx_sharable_mutex_lock_until(m, 0));
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock(m));
  IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable_for(m, 0));
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
}

/* The upgradable mutex's timed forms, against each mode held by another
 * thread: what coexists gets in before its deadline, what conflicts times
 * out, and a timed-out attempt leaves no claim behind. */
static ipx_upgradable_mutex_t *UM(ipx_sharable_mutex_t *m) {
  return (ipx_upgradable_mutex_t *)(void *)m;
}
static int um_ex_for(ipx_sharable_mutex_t *m) {
  int r = ipx_upgradable_mutex_lock_for(UM(m), 20 * IPX_MSEC);
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(UM(m)));
  return r;
}
static int um_ex_until(ipx_sharable_mutex_t *m) {
  int r = ipx_upgradable_mutex_lock_until(UM(m), ipx_deadline_after(20 * IPX_MSEC));
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(UM(m)));
  return r;
}
static int um_sh_for(ipx_sharable_mutex_t *m) {
  int r = ipx_upgradable_mutex_lock_sharable_for(UM(m), 20 * IPX_MSEC);
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(UM(m)));
  return r;
}
static int um_sh_until(ipx_sharable_mutex_t *m) {
  int r = ipx_upgradable_mutex_lock_sharable_until(UM(m), ipx_deadline_after(20 * IPX_MSEC));
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(UM(m)));
  return r;
}
static int um_upg_for(ipx_sharable_mutex_t *m) {
  int r = ipx_upgradable_mutex_lock_upgradable_for(UM(m), 20 * IPX_MSEC);
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_upgradable(UM(m)));
  return r;
}
static int um_upg_until(ipx_sharable_mutex_t *m) {
  int r = ipx_upgradable_mutex_lock_upgradable_until(UM(m), ipx_deadline_after(20 * IPX_MSEC));
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_upgradable(UM(m)));
  return r;
}

IPX_TEST(upgradable_timed_forms) {
  struct shared *sh = new_shared();
  ipx_upgradable_mutex_t *u = &sh->um;
  ipx_sharable_mutex_t *m = (ipx_sharable_mutex_t *)(void *)u;
  /* Nothing held: everything gets in. */
  IPX_ASSERT_OK(in_other_thread(um_ex_for, m));
  IPX_ASSERT_OK(in_other_thread(um_ex_until, m));
  IPX_ASSERT_OK(in_other_thread(um_sh_for, m));
  IPX_ASSERT_OK(in_other_thread(um_sh_until, m));
  IPX_ASSERT_OK(in_other_thread(um_upg_for, m));
  IPX_ASSERT_OK(in_other_thread(um_upg_until, m));
  /* A reader: readers and an upgradable holder coexist, a writer waits. */
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_sharable(u));
  IPX_ASSERT_ERR(in_other_thread(um_ex_for, m), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(in_other_thread(um_ex_until, m), IPX_ETIMEDOUT);
  IPX_ASSERT_OK(in_other_thread(um_sh_for, m));
  IPX_ASSERT_OK(in_other_thread(um_sh_until, m));
  IPX_ASSERT_OK(in_other_thread(um_upg_for, m));
  IPX_ASSERT_OK(in_other_thread(um_upg_until, m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(u));
  /* An upgradable holder: readers enter, writers and upgraders wait. */
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_upgradable(u));
  IPX_ASSERT_ERR(in_other_thread(um_ex_for, m), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(in_other_thread(um_ex_until, m), IPX_ETIMEDOUT);
  IPX_ASSERT_OK(in_other_thread(um_sh_for, m));
  IPX_ASSERT_OK(in_other_thread(um_sh_until, m));
  IPX_ASSERT_ERR(in_other_thread(um_upg_for, m), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(in_other_thread(um_upg_until, m), IPX_ETIMEDOUT);
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_upgradable(u));
  /* A writer: everything waits. */
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock(u));
  IPX_ASSERT_ERR(in_other_thread(um_ex_for, m), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(in_other_thread(um_sh_for, m), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(in_other_thread(um_sh_until, m), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(in_other_thread(um_upg_for, m), IPX_ETIMEDOUT);
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(u));
  /* The timed-out attempts left no claim: all free again. */
  IPX_ASSERT_OK(ipx_upgradable_mutex_try_lock(u));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(u));
}

/* ---- readers and writers in several processes ------------------------- */
struct rw_arg {
  struct shared *sh;
  long iters;
  int use_upgradable;
};

static void writer_proc(void *p) {
  struct rw_arg *a = p;
  struct shared *sh = a->sh;
  for (long i = 0; i < a->iters; i++) {
    if (a->use_upgradable) {
      IPX_ASSERT_OK(ipx_upgradable_mutex_lock_upgradable(&sh->um));
      IPX_ASSERT_OK(ipx_upgradable_mutex_promote(&sh->um));
    } else {
      IPX_ASSERT_OK(ipx_sharable_mutex_lock(&sh->sm));
    }
    long v = sh->rec[0];
    for (int f = 0; f < NFIELDS; f++) {
      sh->rec[f] = v + 1;
      if (f == NFIELDS / 2) sched_yield(); /* a half-written record */
    }
    sh->writes++;
    if (a->use_upgradable) {
      IPX_ASSERT_OK(ipx_upgradable_mutex_demote_to_sharable(&sh->um));
      IPX_ASSERT_EQ(sh->rec[NFIELDS - 1], v + 1);
      IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(&sh->um));
    } else {
      IPX_ASSERT_OK(ipx_sharable_mutex_unlock(&sh->sm));
    }
  }
}

static void reader_proc(void *p) {
  struct rw_arg *a = p;
  struct shared *sh = a->sh;
  for (long i = 0; i < a->iters * 2; i++) {
    if (a->use_upgradable)
      IPX_ASSERT_OK(ipx_upgradable_mutex_lock_sharable(&sh->um));
    else
      IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(&sh->sm));
    long v = sh->rec[0];
    if (i % 16 == 0) sched_yield();
    for (int f = 1; f < NFIELDS; f++)
      if (sh->rec[f] != v) __atomic_fetch_add(&sh->bad_reads, 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&sh->reads, 1, __ATOMIC_SEQ_CST);
    if (a->use_upgradable)
      IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(&sh->um));
    else
      IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(&sh->sm));
  }
}

static void run_readers_writers(int use_upgradable) {
  struct shared *sh = new_shared();
  struct rw_arg a = {sh, ipx_test_scale(3000, 100), use_upgradable};
  pid_t pids[5];
  int n = 0;
  for (int i = 0; i < 3; i++) pids[n++] = ipx_test_fork(reader_proc, &a);
  for (int i = 0; i < 2; i++) pids[n++] = ipx_test_fork(writer_proc, &a);
  for (int i = 0; i < n; i++) IPX_ASSERT_CHILD_OK(pids[i]);
  IPX_ASSERT_EQ(sh->bad_reads, 0);
  IPX_ASSERT_EQ(sh->writes, 2 * a.iters);
  IPX_ASSERT_EQ(sh->reads, 3 * 2 * a.iters);
  for (int f = 0; f < NFIELDS; f++) IPX_ASSERT_EQ(sh->rec[f], 2 * a.iters);
}

IPX_TEST(readers_and_writers_in_processes) { run_readers_writers(0); }
IPX_TEST(upgradable_readers_and_writers_in_processes) { run_readers_writers(1); }

/* Threads of one process on plain data: ThreadSanitizer checks the
 * annotations make every access ordered. */
static void *thread_mix(void *p) {
  struct rw_arg *a = p;
  for (long i = 0; i < a->iters; i++) {
    if (i % 4 == 0) {
      IPX_ASSERT_OK(ipx_upgradable_mutex_lock(&a->sh->um));
      a->sh->writes++;
      IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(&a->sh->um));
    } else if (i % 4 == 1) {
      IPX_ASSERT_OK(ipx_upgradable_mutex_lock_upgradable(&a->sh->um));
      long w = a->sh->writes;
      IPX_ASSERT_OK(ipx_upgradable_mutex_promote(&a->sh->um));
      a->sh->writes = w + 1;
      IPX_ASSERT_OK(ipx_upgradable_mutex_demote_to_upgradable(&a->sh->um));
      IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_upgradable(&a->sh->um));
    } else {
      IPX_ASSERT_OK(ipx_upgradable_mutex_lock_sharable(&a->sh->um));
      IPX_ASSERT_GE(a->sh->writes, 0);
      IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(&a->sh->um));
    }
  }
  return NULL;
}

IPX_TEST(threads_mixing_modes) {
  struct shared *sh = new_shared();
  struct rw_arg a = {sh, ipx_test_scale(4000, 200), 1};
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    IPX_ASSERT_OK(pthread_create(&th[i], NULL, thread_mix, &a));
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  IPX_ASSERT_EQ(sh->writes, 4 * ((a.iters + 3) / 4 + (a.iters + 2) / 4));
}

/* ---- writer preference ------------------------------------------------- */
/* Children are forked before the parent takes its hold: a fork child holds
 * none of its parent's holds, but ThreadSanitizer's copied state would say
 * otherwise. */
static void blocked_writer(void *p) {
  struct shared *sh = p;
  wait_stage(sh, 1);
  set_stage(sh, 2);
  IPX_ASSERT_OK(ipx_sharable_mutex_lock(&sh->sm));
  sh->flag = 1;
  ipx_test_sleep_ms(20);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock(&sh->sm));
}

IPX_TEST(waiting_writer_blocks_new_readers) {
  struct shared *sh = new_shared();
  pid_t pid = ipx_test_fork(blocked_writer, sh);
  IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(&sh->sm));
  set_stage(sh, 1);
  wait_stage(sh, 2);
  /* Once the writer waits, a new reader is refused even though only
   * readers hold the lock. */
  uint64_t end = ipx_deadline_after(10 * IPX_SEC);
  while (in_other_thread(try_sh_and_release, &sh->sm) == 0) {
    if (ipx_now() > end) IPX_FAIL("writer never announced itself");
    ipx_test_sleep_ms(1);
  }
  IPX_ASSERT_EQ(sh->flag, 0);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(&sh->sm));
  /* Our read blocks until the writer is done. */
  IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(&sh->sm));
  IPX_ASSERT_EQ(sh->flag, 1);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(&sh->sm));
  IPX_ASSERT_CHILD_OK(pid);
}

static void overlapping_reader(void *p) {
  struct shared *sh = p;
  while (!__atomic_load_n(&sh->flag, __ATOMIC_SEQ_CST)) {
    IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(&sh->sm));
    __atomic_fetch_add(&sh->reads, 1, __ATOMIC_SEQ_CST);
    ipx_test_sleep_ms(2);
    IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(&sh->sm));
  }
}

IPX_TEST(stream_of_readers_does_not_starve_a_writer) {
  struct shared *sh = new_shared();
  pid_t r[3];
  for (int i = 0; i < 3; i++) r[i] = ipx_test_fork(overlapping_reader, sh);
  while (__atomic_load_n(&sh->reads, __ATOMIC_SEQ_CST) < 20) ipx_test_sleep_ms(1);
  /* Three readers holding 2 ms each, back to back: without writer
   * preference the lock is never free of readers. */
  for (int k = 0; k < 5; k++) {
    IPX_ASSERT_OK(ipx_sharable_mutex_lock_for(&sh->sm, 5 * IPX_SEC));
    long before = sh->reads;
    ipx_test_sleep_ms(5);
    IPX_ASSERT_EQ(sh->reads, before);
    IPX_ASSERT_OK(ipx_sharable_mutex_unlock(&sh->sm));
    ipx_test_sleep_ms(5);
  }
  __atomic_store_n(&sh->flag, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 3; i++) IPX_ASSERT_CHILD_OK(r[i]);
}

/* ---- death ------------------------------------------------------------- */
enum hold { HOLD_SHARED, HOLD_EXCL, HOLD_UPG, HOLD_EXCL_PENDING };
struct hold_arg {
  struct shared *sh;
  enum hold how;
};

static void hold_and_die(void *p) {
  struct hold_arg *a = p;
  ipx_upgradable_mutex_t *m = &a->sh->um;
  switch (a->how) {
    case HOLD_SHARED: IPX_ASSERT_OK(ipx_upgradable_mutex_lock_sharable(m)); break;
    case HOLD_EXCL:
      IPX_ASSERT_OK(ipx_upgradable_mutex_lock(m));
      a->sh->rec[0] = 1; /* half-written */
      break;
    case HOLD_UPG: IPX_ASSERT_OK(ipx_upgradable_mutex_lock_upgradable(m)); break;
    case HOLD_EXCL_PENDING:
      while (!__atomic_load_n(&a->sh->flag, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
      set_stage(a->sh, 1);
      IPX_ASSERT_OK(ipx_upgradable_mutex_lock(m)); /* blocks behind a reader */
      IPX_FAIL("writer got in past a reader");
  }
  set_stage(a->sh, 1);
  for (;;) pause();
}

static pid_t start_holder(struct shared *sh, enum hold how) {
  static struct hold_arg a;
  a.sh = sh;
  a.how = how;
  pid_t pid = ipx_test_fork(hold_and_die, &a);
  wait_stage(sh, 1);
  return pid;
}

static void kill_it(pid_t pid) {
  kill(pid, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(pid, SIGKILL);
}

static int um_try_sh(ipx_sharable_mutex_t *m) {
  ipx_upgradable_mutex_t *u = (ipx_upgradable_mutex_t *)m;
  int r = ipx_upgradable_mutex_try_lock_sharable(u);
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(u));
  return r;
}
static int um_lock_ex(ipx_sharable_mutex_t *m) {
  ipx_upgradable_mutex_t *u = (ipx_upgradable_mutex_t *)m;
  int r = ipx_upgradable_mutex_lock_for(u, 10 * IPX_SEC);
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(u));
  return r;
}

IPX_TEST(killed_reader_is_reclaimed_silently) {
  struct shared *sh = new_shared();
  ipx_upgradable_mutex_t *m = &sh->um;
  pid_t pid = start_holder(sh, HOLD_SHARED);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_try_lock(m), IPX_EBUSY);
  kill_it(pid);
  /* No EOWNERDEAD: a reader changed nothing. */
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_for(m, 10 * IPX_SEC));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_destroy(m));
}

static void *kill_later(void *p) {
  ipx_test_sleep_ms(50);
  kill(*(pid_t *)p, SIGKILL);
  return NULL;
}

IPX_TEST(writer_waiting_on_a_reader_is_woken_by_its_death) {
  struct shared *sh = new_shared();
  ipx_upgradable_mutex_t *m = &sh->um;
  pid_t pids[2];
  pids[0] = start_holder(sh, HOLD_SHARED);
  set_stage(sh, 0);
  pids[1] = start_holder(sh, HOLD_SHARED);
  pthread_t th1, th2;
  IPX_ASSERT_OK(pthread_create(&th1, NULL, kill_later, &pids[0]));
  IPX_ASSERT_OK(pthread_create(&th2, NULL, kill_later, &pids[1]));
  uint64_t t0 = ipx_now();
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock(m)); /* sleeps, no deadline */
  IPX_ASSERT_GE(ipx_now() - t0, 40 * IPX_MSEC);
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
  pthread_join(th1, NULL);
  pthread_join(th2, NULL);
  IPX_ASSERT_CHILD_SIGNALED(pids[0], SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(pids[1], SIGKILL);
}

IPX_TEST(killed_writer_gives_eownerdead_then_recovers) {
  struct shared *sh = new_shared();
  ipx_upgradable_mutex_t *m = &sh->um;
  kill_it(start_holder(sh, HOLD_EXCL));
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock(m), IPX_EOWNERDEAD);
  IPX_ASSERT_ERR(in_other_thread(um_try_sh, (ipx_sharable_mutex_t *)m), IPX_EBUSY);
  sh->rec[0] = 0; /* repair */
  IPX_ASSERT_OK(ipx_upgradable_mutex_consistent(m));
  IPX_ASSERT_ERR(ipx_upgradable_mutex_consistent(m), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_sharable(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(m));
}

IPX_TEST(killed_writer_unrepaired_is_not_recoverable) {
  struct shared *sh = new_shared();
  ipx_upgradable_mutex_t *m = &sh->um;
  kill_it(start_holder(sh, HOLD_EXCL));
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock(m), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock(m), IPX_ENOTRECOVERABLE);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_try_lock(m), IPX_ENOTRECOVERABLE);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock_sharable(m), IPX_ENOTRECOVERABLE);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock_upgradable(m), IPX_ENOTRECOVERABLE);
  IPX_ASSERT_OK(ipx_upgradable_mutex_destroy(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_init(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
}

IPX_TEST(reader_finding_a_dead_writer_recovers_exclusively) {
  struct shared *sh = new_shared();
  ipx_upgradable_mutex_t *m = &sh->um;
  kill_it(start_holder(sh, HOLD_EXCL));
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock_sharable(m), IPX_EOWNERDEAD);
  /* Held exclusively while the data may be broken. */
  IPX_ASSERT_ERR(in_other_thread(um_try_sh, (ipx_sharable_mutex_t *)m), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_upgradable_mutex_consistent(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(m));
  IPX_ASSERT_OK(in_other_thread(um_try_sh, (ipx_sharable_mutex_t *)m));
  IPX_ASSERT_OK(in_other_thread(um_lock_ex, (ipx_sharable_mutex_t *)m));
}

IPX_TEST(killed_upgradable_holder_gives_eownerdead) {
  struct shared *sh = new_shared();
  ipx_upgradable_mutex_t *m = &sh->um;
  kill_it(start_holder(sh, HOLD_UPG));
  /* Readers coexisted with it and are not concerned. */
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_sharable(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(m));
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock_upgradable(m), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_upgradable_mutex_consistent(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_promote(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_upgradable(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_upgradable(m));
}

IPX_TEST(writer_killed_while_waiting_for_readers_leaves_no_trace) {
  struct shared *sh = new_shared();
  ipx_upgradable_mutex_t *m = &sh->um;
  static struct hold_arg a;
  a.sh = sh;
  a.how = HOLD_EXCL_PENDING;
  pid_t pid = ipx_test_fork(hold_and_die, &a);
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_sharable(m));
  __atomic_store_n(&sh->flag, 1, __ATOMIC_SEQ_CST);
  wait_stage(sh, 1);
  uint64_t end = ipx_deadline_after(10 * IPX_SEC);
  while (in_other_thread(um_try_sh, (ipx_sharable_mutex_t *)m) == 0) {
    if (ipx_now() > end) IPX_FAIL("writer never announced itself");
    ipx_test_sleep_ms(1);
  }
  kill_it(pid);
  /* Its claim is cleared by the next reader, without EOWNERDEAD. */
  IPX_ASSERT_OK(in_other_thread(um_try_sh, (ipx_sharable_mutex_t *)m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
}

/* ---- upgradable ----------------------------------------------------------- */
static int um_try_upg(ipx_sharable_mutex_t *m) {
  ipx_upgradable_mutex_t *u = (ipx_upgradable_mutex_t *)m;
  int r = ipx_upgradable_mutex_try_lock_upgradable(u);
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_upgradable(u));
  return r;
}
static int um_try_ex(ipx_sharable_mutex_t *m) {
  ipx_upgradable_mutex_t *u = (ipx_upgradable_mutex_t *)m;
  int r = ipx_upgradable_mutex_try_lock(u);
  if (r == 0) IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(u));
  return r;
}
/* A reader that holds its share until told to let go (a fixed hold time
 * would race with a descheduled test thread on a loaded machine). */
static int hold_sh_release;
static int um_hold_sh_until_released(ipx_sharable_mutex_t *m) {
  ipx_upgradable_mutex_t *u = (ipx_upgradable_mutex_t *)m;
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_sharable(u));
  while (!__atomic_load_n(&hold_sh_release, __ATOMIC_SEQ_CST)) ipx_test_sleep_ms(1);
  ipx_test_sleep_ms(5);
  return ipx_upgradable_mutex_unlock_sharable(u);
}
static void *hold_sh_thread(void *p) {
  IPX_ASSERT_OK(um_hold_sh_until_released(p));
  return NULL;
}

IPX_TEST(upgradable_promotion_and_demotion) {
  struct shared *sh = new_shared();
  ipx_upgradable_mutex_t *m = &sh->um;
  ipx_sharable_mutex_t *as = (ipx_sharable_mutex_t *)m;
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_upgradable(m));
  IPX_ASSERT_OK(in_other_thread(um_try_sh, as)); /* coexists with readers */
  IPX_ASSERT_ERR(in_other_thread(um_try_upg, as), IPX_EBUSY);
  IPX_ASSERT_ERR(in_other_thread(um_try_ex, as), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock_upgradable(m), IPX_EDEADLK);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_unlock(m), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_demote_to_upgradable(m), IPX_ENOTOWNER);

  /* A reader holds: promotion waits; try and timed forms give up and keep
   * the upgradable lock. */
  pthread_t th;
  IPX_ASSERT_OK(pthread_create(&th, NULL, hold_sh_thread, as));
  uint64_t end = ipx_deadline_after(10 * IPX_SEC);
  while (ipx_upgradable_mutex_try_promote(m) == 0) {
    IPX_ASSERT_OK(ipx_upgradable_mutex_demote_to_upgradable(m));
    if (ipx_now() > end) IPX_FAIL("reader never came");
    sched_yield();
  }
  IPX_ASSERT_ERR(ipx_upgradable_mutex_promote_for(m, 5 * IPX_MSEC), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(in_other_thread(um_try_upg, as), IPX_EBUSY);
  uint64_t t0 = ipx_now();
  __atomic_store_n(&hold_sh_release, 1, __ATOMIC_SEQ_CST);
  IPX_ASSERT_OK(ipx_upgradable_mutex_promote_until(m, ipx_deadline_after(10 * IPX_SEC)));
  IPX_ASSERT_GE(ipx_now() - t0, IPX_MSEC);
  pthread_join(th, NULL);
  IPX_ASSERT_ERR(in_other_thread(um_try_sh, as), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_promote(m), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_unlock_upgradable(m), IPX_ENOTOWNER);

  /* exclusive -> upgradable -> sharable */
  IPX_ASSERT_OK(ipx_upgradable_mutex_demote_to_upgradable(m));
  IPX_ASSERT_OK(in_other_thread(um_try_sh, as));
  IPX_ASSERT_ERR(in_other_thread(um_try_upg, as), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_upgradable_mutex_demote_to_sharable(m));
  IPX_ASSERT_OK(in_other_thread(um_try_upg, as));
  IPX_ASSERT_ERR(in_other_thread(um_try_ex, as), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_demote_to_sharable(m), IPX_ENOTOWNER);
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(m));
  /* exclusive -> sharable */
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_demote_to_sharable(m));
  IPX_ASSERT_OK(in_other_thread(um_try_upg, as));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock_sharable(m));
  IPX_ASSERT_OK(in_other_thread(um_try_ex, as));
  /* blocking promotion */
  IPX_ASSERT_OK(ipx_upgradable_mutex_lock_upgradable(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_promote(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_unlock(m));
  IPX_ASSERT_OK(ipx_upgradable_mutex_destroy(m));
}

IPX_TEST(reader_table_full_is_efull) {
  struct shared *sh = new_shared();
  ipx_sharable_mutex_t *m = &sh->sm;
  for (int i = 0; i < IPX_RWLOCK_READER_SLOTS; i++)
    IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(m));
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock_sharable(m), IPX_EFULL);
  IPX_ASSERT_ERR(in_other_thread(try_sh_and_release, m), IPX_EFULL);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock_sharable_for(m, IPX_MSEC), IPX_EFULL);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
  IPX_ASSERT_OK(in_other_thread(try_sh_and_release, m));
  for (int i = 1; i < IPX_RWLOCK_READER_SLOTS; i++)
    IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock_sharable(m), IPX_ENOTOWNER);
  /* Exclusive -> sharable with a full table keeps the exclusive hold. */
  IPX_ASSERT_OK(ipx_sharable_mutex_lock(m));
  IPX_ASSERT_OK(ipx_sharable_mutex_demote(m));
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(m));
}

IPX_TEST(bad_input) {
  struct shared *sh = new_shared();
  IPX_ASSERT_ERR(ipx_sharable_mutex_init(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_init(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock_sharable(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock_sharable(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_sharable_mutex_destroy(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock_upgradable(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_promote(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_demote_to_sharable(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_consistent(NULL), IPX_EINVAL);

  /* Never initialised (zero), garbage, wrong kind, destroyed. */
  ipx_sharable_mutex_t *zero = calloc(1, sizeof *zero);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock(zero), IPX_EINVAL);
  memset(zero, 0x5a, sizeof *zero);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock_sharable(zero), IPX_ECORRUPT);
  free(zero);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock((ipx_sharable_mutex_t *)&sh->um), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock((ipx_upgradable_mutex_t *)&sh->sm), IPX_EINVAL);

  /* Releasing what we do not hold. */
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock(&sh->sm), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock_sharable(&sh->sm), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_sharable_mutex_consistent(&sh->sm), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_unlock_upgradable(&sh->um), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_promote(&sh->um), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_try_promote(&sh->um), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_demote_to_upgradable(&sh->um), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_demote_to_sharable(&sh->um), IPX_ENOTOWNER);
  /* Another thread's hold is not ours to release. */
  IPX_ASSERT_OK(ipx_sharable_mutex_lock(&sh->sm));
  IPX_ASSERT_ERR(in_other_thread(ipx_sharable_mutex_unlock, &sh->sm), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_sharable_mutex_consistent(&sh->sm), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_sharable_mutex_destroy(&sh->sm), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock(&sh->sm));
  IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(&sh->sm));
  IPX_ASSERT_ERR(ipx_sharable_mutex_destroy(&sh->sm), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(&sh->sm));
  IPX_ASSERT_OK(ipx_sharable_mutex_destroy(&sh->sm));
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock(&sh->sm), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_sharable_mutex_destroy(&sh->sm), IPX_EINVAL);
}

/* Bytes damaged into "exclusive wanted" with no owner at all, alive or
 * dead: no writer ever leaves that state (a releasing writer clears the
 * state before the owner word), so a reader that sees it read after read
 * reports the damage instead of spinning for ever, whatever form it
 * called, try, timed or blocking. */
IPX_TEST_T(damaged_claim_without_owner_is_reported_not_spun_on, 20) {
  ipx_sharable_mutex_t *sm = calloc(1, sizeof *sm);
  ipx_upgradable_mutex_t *um = calloc(1, sizeof *um);
  IPX_ASSERT(sm && um);
  IPX_ASSERT_OK(ipx_sharable_mutex_init(sm));
  IPX_ASSERT_OK(ipx_upgradable_mutex_init(um));
  const uint32_t xwant = 1; /* the state word, at byte 8 (rwlock.c) */
  memcpy((char *)sm + 8, &xwant, 4);
  memcpy((char *)um + 8, &xwant, 4);
  uint64_t t0 = ipx_now();
  IPX_ASSERT_ERR(ipx_sharable_mutex_try_lock_sharable(sm), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock_sharable_for(sm, 5 * IPX_SEC),
                 IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_sharable_mutex_lock_sharable(sm), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_try_lock_sharable(um), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_lock_sharable(um), IPX_ECORRUPT);
  /* At once: not after the timed form's five seconds. */
  IPX_ASSERT_LT(ipx_now() - t0, IPX_SEC);
  free(sm);
  free(um);
}

/* The caller's TID in the owner word or a reader slot it never took (damage,
 * or a thread of another boot or PID namespace with the same number): not
 * its hold, so nothing is released or unlinked (that used to crash), and
 * the lock is busy. */
IPX_TEST(own_tid_in_words_never_taken_is_not_a_hold) {
  uint32_t tid = (uint32_t)syscall(SYS_gettid);
  ipx_sharable_mutex_t *sm = calloc(1, sizeof *sm);
  ipx_upgradable_mutex_t *um = calloc(1, sizeof *um);
  IPX_ASSERT(sm && um);
  /* The owner word, at byte 0. */
  IPX_ASSERT_OK(ipx_sharable_mutex_init(sm));
  memcpy(sm, &tid, 4);
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock(sm), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_sharable_mutex_consistent(sm), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_sharable_mutex_try_lock(sm), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_upgradable_mutex_init(um));
  memcpy(um, &tid, 4);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_unlock_upgradable(um), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_demote_to_sharable(um), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_upgradable_mutex_try_lock_upgradable(um), IPX_EBUSY);
  /* A reader slot, the first at byte 64 (its word first); hwm (byte 12)
   * says slot 0 may be in use. */
  IPX_ASSERT_OK(ipx_sharable_mutex_init(sm));
  uint32_t one = 1;
  memcpy((char *)sm + 64, &tid, 4);
  memcpy((char *)sm + 12, &one, 4);
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock_sharable(sm), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_sharable_mutex_try_lock(sm), IPX_EBUSY);
  /* A share of its own is still taken and given back. */
  IPX_ASSERT_OK(ipx_sharable_mutex_lock_sharable(sm));
  IPX_ASSERT_OK(ipx_sharable_mutex_unlock_sharable(sm));
  IPX_ASSERT_ERR(ipx_sharable_mutex_unlock_sharable(sm), IPX_ENOTOWNER);
  free(sm);
  free(um);
}
