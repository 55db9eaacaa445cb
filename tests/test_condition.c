/* condition: one-slot producer/consumer between processes and threads,
 * broadcast, a killed waiter, a mutex whose holder dies during a wait,
 * timeouts, bad input. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

typedef struct shared {
  ipx_mutex_t m;
  ipx_condition_t c;
  long slot; /* 0 = empty */
  long items;
  long produced, consumed; /* tickets, under m */
  long sum;
  atomic_int ready, woken, result;
} shared_t;

static shared_t *shared_new(void) {
  shared_t *s = ipx_test_shared_alloc(sizeof *s);
  memset(s, 0, sizeof *s);
  IPX_ASSERT_OK(ipx_mutex_init(&s->m));
  IPX_ASSERT_OK(ipx_condition_init(&s->c));
  return s;
}

static void wait_ready(shared_t *s, int n) {
  for (int i = 0; i < 20000 && atomic_load(&s->ready) < n; i++)
    ipx_test_sleep_ms(1);
  IPX_ASSERT_GE(atomic_load(&s->ready), n);
}

/* One slot, one condition for both directions (broadcast, since the two
 * sides wait for different predicates). */
static void producer(void *arg) {
  shared_t *s = arg;
  for (long i = 1; i <= s->items; i++) {
    IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
    while (s->slot != 0) IPX_ASSERT_OK(ipx_condition_wait(&s->c, &s->m));
    s->slot = i;
    IPX_ASSERT_OK(ipx_condition_broadcast(&s->c));
    IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  }
}
static void consumer(void *arg) {
  shared_t *s = arg;
  for (long i = 1; i <= s->items; i++) {
    IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
    while (s->slot == 0) IPX_ASSERT_OK(ipx_condition_wait(&s->c, &s->m));
    IPX_ASSERT_EQ(s->slot, i); /* nothing lost, duplicated or reordered */
    s->sum += s->slot;
    s->slot = 0;
    IPX_ASSERT_OK(ipx_condition_broadcast(&s->c));
    IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  }
}

IPX_TEST(one_slot_between_processes) {
  shared_t *s = shared_new();
  s->items = ipx_test_scale(50000, 500);
  pid_t c = ipx_test_fork(consumer, s);
  pid_t p = ipx_test_fork(producer, s);
  IPX_ASSERT_CHILD_OK(p);
  IPX_ASSERT_CHILD_OK(c);
  IPX_ASSERT_EQ(s->sum, s->items * (s->items + 1) / 2);
  IPX_ASSERT_OK(ipx_condition_destroy(&s->c));
}

static void *consumer_thread(void *arg) {
  consumer(arg);
  return NULL;
}

IPX_TEST(one_slot_between_threads_with_signal) {
  shared_t *s = shared_new();
  s->items = ipx_test_scale(50000, 500);
  pthread_t t;
  IPX_ASSERT_EQ(pthread_create(&t, NULL, consumer_thread, s), 0);
  producer(s);
  pthread_join(t, NULL);
  IPX_ASSERT_EQ(s->sum, s->items * (s->items + 1) / 2);
}

/* Waits for one ticket and takes it. */
static void take_ticket(void *arg) {
  shared_t *s = arg;
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  atomic_fetch_add(&s->ready, 1);
  while (s->consumed >= s->produced) {
    int r = ipx_condition_wait_for(&s->c, &s->m, 30 * IPX_SEC);
    if (r != 0) IPX_FAIL("wait: %s", ipx_err_name(r));
  }
  s->consumed++;
  atomic_fetch_add(&s->woken, 1);
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
}

static void give_ticket(shared_t *s) {
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  s->produced++;
  IPX_ASSERT_OK(ipx_condition_signal(&s->c));
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
}

/* A waiter killed in its sleep must not absorb a signal meant for the
 * live ones: one signal per live waiter gets them all out. */
IPX_TEST(killed_waiter_costs_no_wakeup) {
  shared_t *s = shared_new();
  pid_t victim = ipx_test_fork(take_ticket, s);
  wait_ready(s, 1);
  pid_t live[2];
  for (int i = 0; i < 2; i++) live[i] = ipx_test_fork(take_ticket, s);
  wait_ready(s, 3);
  ipx_test_sleep_ms(50); /* all three asleep in the wait */
  kill(victim, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(victim, SIGKILL);
  give_ticket(s);
  give_ticket(s);
  /* Each signal reaches a live waiter well before its 30 s time-out. */
  uint64_t t0 = ipx_now();
  for (int i = 0; i < 2; i++) IPX_ASSERT_CHILD_OK(live[i]);
  IPX_ASSERT_LT(ipx_now() - t0, 20 * IPX_SEC);
  IPX_ASSERT_EQ(atomic_load(&s->woken), 2);
  /* Destroy does not wait for the dead waiter. */
  IPX_ASSERT_OK(ipx_condition_destroy(&s->c));
}

IPX_TEST(broadcast_wakes_everyone) {
  shared_t *s = shared_new();
  pid_t p[3];
  for (int i = 0; i < 3; i++) p[i] = ipx_test_fork(take_ticket, s);
  wait_ready(s, 3);
  ipx_test_sleep_ms(30);
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  s->produced = 3;
  IPX_ASSERT_OK(ipx_condition_broadcast(&s->c));
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  for (int i = 0; i < 3; i++) IPX_ASSERT_CHILD_OK(p[i]);
  IPX_ASSERT_EQ(atomic_load(&s->woken), 3);
}

/* The waiter: expects to come back from the wait owning a mutex whose
 * holder died meanwhile. */
static void wait_expect_ownerdead(void *arg) {
  shared_t *s = arg;
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  atomic_fetch_add(&s->ready, 1);
  int r;
  do
    r = ipx_condition_wait(&s->c, &s->m);
  while (r == 0 && s->produced == 0);
  atomic_store(&s->result, r);
  IPX_ASSERT_ERR(r, IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_mutex_consistent(&s->m));
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
}
static void signal_and_hang(void *arg) {
  shared_t *s = arg;
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  s->produced = 1;
  IPX_ASSERT_OK(ipx_condition_signal(&s->c));
  atomic_fetch_add(&s->ready, 1);
  for (;;) pause(); /* killed holding the mutex */
}

IPX_TEST(mutex_holder_dies_during_wait) {
  shared_t *s = shared_new();
  pid_t waiter = ipx_test_fork(wait_expect_ownerdead, s);
  wait_ready(s, 1);
  pid_t holder = ipx_test_fork(signal_and_hang, s);
  wait_ready(s, 2);
  ipx_test_sleep_ms(30);
  kill(holder, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(holder, SIGKILL);
  IPX_ASSERT_CHILD_OK(waiter);
  IPX_ASSERT_EQ(atomic_load(&s->result), IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
}

static void lock_and_die(void *arg) {
  shared_t *s = arg;
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  ipx_test_expect_crash();
  raise(SIGKILL);
}

/* Waiting on a mutex still inconsistent keeps it inconsistent. */
IPX_TEST(inconsistent_mutex_stays_inconsistent_across_wait) {
  shared_t *s = shared_new();
  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(lock_and_die, s), SIGKILL);
  IPX_ASSERT_ERR(ipx_mutex_lock(&s->m), IPX_EOWNERDEAD);
  IPX_ASSERT_ERR(ipx_condition_wait_for(&s->c, &s->m, IPX_MSEC),
                 IPX_EOWNERDEAD);
  IPX_ASSERT_OK(ipx_mutex_consistent(&s->m));
  IPX_ASSERT_ERR(ipx_condition_wait_for(&s->c, &s->m, IPX_MSEC), IPX_ETIMEDOUT);
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
}

IPX_TEST(timeouts_return_with_the_mutex_held) {
  shared_t *s = shared_new();
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  uint64_t t0 = ipx_now();
  IPX_ASSERT_ERR(ipx_condition_wait_for(&s->c, &s->m, 50 * IPX_MSEC),
                 IPX_ETIMEDOUT);
  uint64_t dt = ipx_now() - t0;
  IPX_ASSERT_GE(dt, 45 * IPX_MSEC);
  IPX_ASSERT_LT(dt, 10 * IPX_SEC);
  IPX_ASSERT_ERR(ipx_mutex_try_lock(&s->m), IPX_EDEADLK); /* still ours */
  IPX_ASSERT_ERR(ipx_condition_wait_until(&s->c, &s->m, ipx_now() - 1),
                 IPX_ETIMEDOUT);
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
}

IPX_TEST(bad_input_is_reported) {
  shared_t *s = shared_new();
  ipx_condition_t junk;
  IPX_ASSERT_ERR(ipx_condition_init(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_condition_destroy(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_condition_signal(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_condition_broadcast(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_condition_wait(NULL, &s->m), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_condition_wait_for(NULL, &s->m, 1), IPX_EINVAL);
  /* Waiting without holding the mutex, or with no mutex. */
  IPX_ASSERT_ERR(ipx_condition_wait(&s->c, &s->m), IPX_ENOTOWNER);
  IPX_ASSERT_ERR(ipx_condition_wait(&s->c, NULL), IPX_EINVAL);
  ipx_mutex_t zero;
  memset(&zero, 0, sizeof zero);
  IPX_ASSERT_ERR(ipx_condition_wait(&s->c, &zero), IPX_EINVAL);
  memset(&junk, 0, sizeof junk); /* never initialised */
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  IPX_ASSERT_ERR(ipx_condition_wait(&junk, &s->m), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_condition_signal(&junk), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_condition_destroy(&junk), IPX_EINVAL);
  memset(&junk, 0x77, sizeof junk); /* overwritten */
  IPX_ASSERT_ERR(ipx_condition_wait(&junk, &s->m), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_condition_broadcast(&junk), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_mutex_try_lock(&s->m), IPX_EDEADLK); /* still held */
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  IPX_ASSERT_OK(ipx_condition_destroy(&s->c));
  IPX_ASSERT_ERR(ipx_condition_signal(&s->c), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_condition_destroy(&s->c), IPX_EINVAL);
}
