/* semaphore: counting, hand-off between processes and threads, a killed
 * waiter, overflow, timeouts, bad input. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

typedef struct shared {
  ipx_semaphore_t empty, full, sem;
  volatile long slot;
  long items;
  atomic_long sum;
  atomic_int ready, woken;
} shared_t;

static shared_t *shared_new(void) {
  shared_t *s = ipx_test_shared_alloc(sizeof *s);
  memset(s, 0, sizeof *s);
  IPX_ASSERT_OK(ipx_semaphore_init(&s->empty, 1));
  IPX_ASSERT_OK(ipx_semaphore_init(&s->full, 0));
  IPX_ASSERT_OK(ipx_semaphore_init(&s->sem, 0));
  return s;
}

IPX_TEST(counting) {
  ipx_semaphore_t s;
  unsigned v = 99;
  IPX_ASSERT_OK(ipx_semaphore_init(&s, 2));
  IPX_ASSERT_OK(ipx_semaphore_value(&s, &v));
  IPX_ASSERT_EQ(v, 2);
  IPX_ASSERT_OK(ipx_semaphore_try_wait(&s));
  IPX_ASSERT_OK(ipx_semaphore_wait(&s));
  IPX_ASSERT_ERR(ipx_semaphore_try_wait(&s), IPX_EBUSY);
  IPX_ASSERT_OK(ipx_semaphore_post(&s));
  IPX_ASSERT_OK(ipx_semaphore_post(&s));
  IPX_ASSERT_OK(ipx_semaphore_value(&s, &v));
  IPX_ASSERT_EQ(v, 2);
  IPX_ASSERT_OK(ipx_semaphore_wait_for(&s, IPX_MSEC));
  IPX_ASSERT_OK(ipx_semaphore_wait_until(&s, 0)); /* a unit is there */
  IPX_ASSERT_OK(ipx_semaphore_value(&s, &v));
  IPX_ASSERT_EQ(v, 0);
  IPX_ASSERT_OK(ipx_semaphore_destroy(&s));
}

IPX_TEST(overflow) {
  ipx_semaphore_t s;
  IPX_ASSERT_OK(ipx_semaphore_init(&s, IPX_SEMAPHORE_VALUE_MAX - 1));
  IPX_ASSERT_OK(ipx_semaphore_post(&s));
  IPX_ASSERT_ERR(ipx_semaphore_post(&s), IPX_EOVERFLOW);
  unsigned v;
  IPX_ASSERT_OK(ipx_semaphore_value(&s, &v));
  IPX_ASSERT_EQ(v, IPX_SEMAPHORE_VALUE_MAX);
  IPX_ASSERT_OK(ipx_semaphore_try_wait(&s));
  IPX_ASSERT_OK(ipx_semaphore_post(&s));
}

IPX_TEST(bad_input_is_reported) {
  unsigned v;
  IPX_ASSERT_ERR(ipx_semaphore_init(NULL, 0), IPX_EINVAL);
  ipx_semaphore_t s;
  IPX_ASSERT_ERR(ipx_semaphore_init(&s, IPX_SEMAPHORE_VALUE_MAX + 1u),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_destroy(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_post(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_wait(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_try_wait(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_wait_for(NULL, 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_wait_until(NULL, 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_value(NULL, &v), IPX_EINVAL);
  memset(&s, 0, sizeof s); /* never initialised */
  IPX_ASSERT_ERR(ipx_semaphore_post(&s), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_wait(&s), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_try_wait(&s), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_value(&s, &v), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_destroy(&s), IPX_EINVAL);
  memset(&s, 0x5a, sizeof s); /* overwritten */
  IPX_ASSERT_ERR(ipx_semaphore_post(&s), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_semaphore_wait_for(&s, 1), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_semaphore_destroy(&s), IPX_ECORRUPT);
  IPX_ASSERT_OK(ipx_semaphore_init(&s, 1));
  IPX_ASSERT_ERR(ipx_semaphore_value(&s, NULL), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_semaphore_destroy(&s));
  IPX_ASSERT_ERR(ipx_semaphore_post(&s), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_semaphore_try_wait(&s), IPX_EINVAL);
}

IPX_TEST(timeouts) {
  ipx_semaphore_t s;
  IPX_ASSERT_OK(ipx_semaphore_init(&s, 0));
  uint64_t t0 = ipx_now();
  IPX_ASSERT_ERR(ipx_semaphore_wait_for(&s, 50 * IPX_MSEC), IPX_ETIMEDOUT);
  uint64_t dt = ipx_now() - t0;
  IPX_ASSERT_GE(dt, 45 * IPX_MSEC);
  IPX_ASSERT_LT(dt, 10 * IPX_SEC);
  IPX_ASSERT_ERR(ipx_semaphore_wait_until(&s, ipx_now() - 1), IPX_ETIMEDOUT);
  IPX_ASSERT_ERR(ipx_semaphore_wait_for(&s, 0), IPX_ETIMEDOUT);
}

/* One-slot buffer: `empty` and `full` hand the slot back and forth. */
static void producer(void *arg) {
  shared_t *s = arg;
  for (long i = 1; i <= s->items; i++) {
    IPX_ASSERT_OK(ipx_semaphore_wait(&s->empty));
    s->slot = i;
    IPX_ASSERT_OK(ipx_semaphore_post(&s->full));
  }
}
static void consumer(void *arg) {
  shared_t *s = arg;
  for (long i = 1; i <= s->items; i++) {
    IPX_ASSERT_OK(ipx_semaphore_wait(&s->full));
    IPX_ASSERT_EQ(s->slot, i); /* nothing lost, duplicated or reordered */
    atomic_fetch_add(&s->sum, s->slot);
    IPX_ASSERT_OK(ipx_semaphore_post(&s->empty));
  }
}

IPX_TEST(handoff_between_processes) {
  shared_t *s = shared_new();
  s->items = ipx_test_scale(100000, 1000);
  pid_t c = ipx_test_fork(consumer, s);
  pid_t p = ipx_test_fork(producer, s);
  IPX_ASSERT_CHILD_OK(p);
  IPX_ASSERT_CHILD_OK(c);
  IPX_ASSERT_EQ(atomic_load(&s->sum), s->items * (s->items + 1) / 2);
}

static void *consumer_thread(void *arg) {
  consumer(arg);
  return NULL;
}

IPX_TEST(handoff_between_threads) {
  shared_t *s = shared_new();
  s->items = ipx_test_scale(100000, 1000);
  pthread_t t;
  IPX_ASSERT_EQ(pthread_create(&t, NULL, consumer_thread, s), 0);
  producer(s);
  pthread_join(t, NULL);
  IPX_ASSERT_EQ(atomic_load(&s->sum), s->items * (s->items + 1) / 2);
}

/* Many posters and waiters: every unit is taken exactly once. */
static void poster(void *arg) {
  shared_t *s = arg;
  for (long i = 0; i < s->items; i++) IPX_ASSERT_OK(ipx_semaphore_post(&s->sem));
}
static void taker(void *arg) {
  shared_t *s = arg;
  for (long i = 0; i < s->items; i++) {
    IPX_ASSERT_OK(ipx_semaphore_wait(&s->sem));
    atomic_fetch_add(&s->sum, 1);
  }
}

IPX_TEST(many_posters_and_waiters) {
  shared_t *s = shared_new();
  s->items = ipx_test_scale(50000, 500);
  pid_t p[6];
  for (int i = 0; i < 3; i++) p[i] = ipx_test_fork(taker, s);
  for (int i = 3; i < 6; i++) p[i] = ipx_test_fork(poster, s);
  for (int i = 0; i < 6; i++) IPX_ASSERT_CHILD_OK(p[i]);
  IPX_ASSERT_EQ(atomic_load(&s->sum), 3 * s->items);
  unsigned v;
  IPX_ASSERT_OK(ipx_semaphore_value(&s->sem, &v));
  IPX_ASSERT_EQ(v, 0);
}

static void wait_once(void *arg) {
  shared_t *s = arg;
  atomic_fetch_add(&s->ready, 1);
  IPX_ASSERT_OK(ipx_semaphore_wait_for(&s->sem, 30 * IPX_SEC));
  atomic_fetch_add(&s->woken, 1);
}

/* A waiter killed in its sleep takes nothing with it. */
IPX_TEST(killed_waiter_is_harmless) {
  shared_t *s = shared_new();
  pid_t victim = ipx_test_fork(wait_once, s);
  pid_t live = ipx_test_fork(wait_once, s);
  for (int i = 0; i < 10000 && atomic_load(&s->ready) < 2; i++) ipx_test_sleep_ms(1);
  ipx_test_sleep_ms(50); /* both asleep on the futex */
  kill(victim, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(victim, SIGKILL);
  IPX_ASSERT_OK(ipx_semaphore_post(&s->sem)); /* goes to the live one */
  IPX_ASSERT_CHILD_OK(live);
  IPX_ASSERT_EQ(atomic_load(&s->woken), 1);
  unsigned v;
  IPX_ASSERT_OK(ipx_semaphore_value(&s->sem, &v));
  IPX_ASSERT_EQ(v, 0);
  IPX_ASSERT_OK(ipx_semaphore_post(&s->sem));
  IPX_ASSERT_OK(ipx_semaphore_try_wait(&s->sem));
  IPX_ASSERT_OK(ipx_semaphore_destroy(&s->sem)); /* never blocks */
}
