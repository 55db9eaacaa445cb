/* condition: one-slot producer/consumer between processes and threads,
 * broadcast, a killed waiter, a mutex whose holder dies during a wait,
 * timeouts, bad input; wait morphing (signal under the mutex requeues onto
 * the mutex word): ping-pong on one and two CPUs, with and without the
 * mutex, broadcast to several processes, a requeued waiter killed, the
 * broadcaster killed before unlocking, condition and mutex mapped at
 * different distances in two processes, a layout-1 mutex. */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* ---- wait morphing: a signal under the mutex requeues the waiters onto
 * the mutex word; without the mutex, or when the mutex cannot be verified,
 * it wakes them. ---------------------------------------------------------- */

typedef struct pp {
  shared_t *s;
  int who;        /* 0 or 1: whose turn `slot` says it is */
  int under;      /* signal while holding the mutex */
  int cpu;        /* pin to this CPU, or -1 */
} pp_t;

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  IPX_ASSERT_EQ(sched_setaffinity(0, sizeof set, &set), 0);
}

/* Round trips on a turn word: each side waits for its turn, passes it on,
 * signals.  A lost wake-up hangs (and the case times out); a duplicated or
 * early one is caught by the turn check. */
static void pingpong_side(pp_t *p, ipx_condition_t *c, ipx_mutex_t *m,
                          long *turn, long rounds) {
  for (long i = 0; i < rounds; i++) {
    IPX_ASSERT_OK(ipx_mutex_lock(m));
    while (*turn % 2 != p->who) IPX_ASSERT_OK(ipx_condition_wait(c, m));
    IPX_ASSERT_EQ(*turn, 2 * i + p->who);
    (*turn)++;
    if (p->under) IPX_ASSERT_OK(ipx_condition_signal(c));
    IPX_ASSERT_OK(ipx_mutex_unlock(m));
    if (!p->under) IPX_ASSERT_OK(ipx_condition_signal(c));
  }
}

static void pingpong_child(void *arg) {
  pp_t *p = arg;
  pin(p->cpu);
  pingpong_side(p, &p->s->c, &p->s->m, &p->s->slot, p->s->items);
}

static void pingpong_processes(int under, int cpu0, int cpu1) {
  shared_t *s = shared_new();
  s->items = ipx_test_scale(20000, 300);
  pp_t *p = ipx_test_shared_alloc(2 * sizeof *p);
  p[0] = (pp_t){s, 0, under, cpu0};
  p[1] = (pp_t){s, 1, under, cpu1};
  pid_t a = ipx_test_fork(pingpong_child, &p[0]);
  pid_t b = ipx_test_fork(pingpong_child, &p[1]);
  IPX_ASSERT_CHILD_OK(a);
  IPX_ASSERT_CHILD_OK(b);
  IPX_ASSERT_EQ(s->slot, 2 * s->items);
  IPX_ASSERT_EQ(ipx_mutex_try_lock(&s->m), 0); /* nobody left holding it */
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  IPX_ASSERT_OK(ipx_condition_destroy(&s->c));
}

/* One CPU: every wait sleeps and every signal finds the waiter asleep, so
 * every round goes through the requeue. */
IPX_TEST(pingpong_signal_under_mutex_one_cpu) { pingpong_processes(1, 0, 0); }
IPX_TEST(pingpong_signal_under_mutex_two_cpus) {
  pingpong_processes(1, -1, -1);
}
/* The caller does not hold the mutex: the plain wake. */
IPX_TEST(pingpong_signal_without_mutex) {
  pingpong_processes(0, 0, 0);
  pingpong_processes(0, -1, -1);
}

/* Several waiter processes, one producer broadcasting under the mutex: each
 * item is taken exactly once, none lost. */
static void take_items(void *arg) {
  shared_t *s = arg;
  long mine = 0;
  for (;;) {
    IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
    while (s->slot == 0 && s->consumed < s->items)
      IPX_ASSERT_OK(ipx_condition_wait(&s->c, &s->m));
    if (s->slot == 0) { /* all taken */
      IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
      break;
    }
    s->sum += s->slot;
    s->slot = 0;
    s->consumed++;
    mine++;
    IPX_ASSERT_OK(ipx_condition_broadcast(&s->c));
    IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  }
  atomic_fetch_add(&s->woken, (int)mine);
}

IPX_TEST(broadcast_under_mutex_to_several_processes) {
  shared_t *s = shared_new();
  s->items = ipx_test_scale(10000, 200);
  pid_t p[3];
  for (int i = 0; i < 3; i++) p[i] = ipx_test_fork(take_items, s);
  for (long i = 1; i <= s->items; i++) {
    IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
    while (s->slot != 0) IPX_ASSERT_OK(ipx_condition_wait(&s->c, &s->m));
    s->slot = i;
    IPX_ASSERT_OK(ipx_condition_broadcast(&s->c));
    IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  }
  for (int i = 0; i < 3; i++) IPX_ASSERT_CHILD_OK(p[i]);
  IPX_ASSERT_EQ(s->sum, s->items * (s->items + 1) / 2);
  IPX_ASSERT_EQ(s->consumed, s->items);
  IPX_ASSERT_EQ(atomic_load(&s->woken), s->items);
}

/* Three waiters requeued by a broadcast under the mutex; one is killed
 * while it sleeps on the mutex word; the unlock still gets both others
 * out (the kernel wakes only live sleepers, and each woken waiter takes
 * the mutex announcing the rest). */
IPX_TEST(requeued_waiter_killed_on_the_mutex_word) {
  shared_t *s = shared_new();
  pid_t victim = ipx_test_fork(take_ticket, s);
  wait_ready(s, 1);
  pid_t live[2];
  for (int i = 0; i < 2; i++) live[i] = ipx_test_fork(take_ticket, s);
  wait_ready(s, 3);
  ipx_test_sleep_ms(50); /* all three asleep in the wait */
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  s->produced = 2;
  IPX_ASSERT_OK(ipx_condition_broadcast(&s->c));
  /* The requeue announced sleepers on the word we hold. */
  IPX_ASSERT_NE(*(volatile uint32_t *)(void *)&s->m & 0x80000000u, 0);
  ipx_test_sleep_ms(30);
  kill(victim, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(victim, SIGKILL);
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
  uint64_t t0 = ipx_now();
  for (int i = 0; i < 2; i++) IPX_ASSERT_CHILD_OK(live[i]);
  IPX_ASSERT_LT(ipx_now() - t0, 20 * IPX_SEC);
  IPX_ASSERT_EQ(atomic_load(&s->woken), 2);
  IPX_ASSERT_OK(ipx_condition_destroy(&s->c));
}

/* A broadcast under the mutex, then the broadcaster dies holding it: the
 * kernel wakes one requeued waiter, which gets IPX_EOWNERDEAD, repairs and
 * unlocks; the other two then get the mutex normally. */
static void take_ticket_note_death(void *arg) {
  shared_t *s = arg;
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  atomic_fetch_add(&s->ready, 1);
  int r = 0;
  while (s->consumed >= s->produced) {
    r = ipx_condition_wait_for(&s->c, &s->m, 30 * IPX_SEC);
    if (r == IPX_EOWNERDEAD) {
      atomic_fetch_add(&s->result, 1);
      IPX_ASSERT_OK(ipx_mutex_consistent(&s->m));
    } else if (r != 0) {
      IPX_FAIL("wait: %s", ipx_err_name(r));
    }
  }
  s->consumed++;
  atomic_fetch_add(&s->woken, 1);
  IPX_ASSERT_OK(ipx_mutex_unlock(&s->m));
}
static void broadcast_and_hang(void *arg) {
  shared_t *s = arg;
  IPX_ASSERT_OK(ipx_mutex_lock(&s->m));
  s->produced = 3;
  IPX_ASSERT_OK(ipx_condition_broadcast(&s->c));
  atomic_fetch_add(&s->ready, 1);
  for (;;) pause(); /* killed holding the mutex */
}

IPX_TEST(broadcaster_killed_before_unlock) {
  shared_t *s = shared_new();
  pid_t w[3];
  for (int i = 0; i < 3; i++) w[i] = ipx_test_fork(take_ticket_note_death, s);
  wait_ready(s, 3);
  ipx_test_sleep_ms(50);
  pid_t holder = ipx_test_fork(broadcast_and_hang, s);
  wait_ready(s, 4);
  ipx_test_sleep_ms(30);
  kill(holder, SIGKILL);
  IPX_ASSERT_CHILD_SIGNALED(holder, SIGKILL);
  for (int i = 0; i < 3; i++) IPX_ASSERT_CHILD_OK(w[i]);
  IPX_ASSERT_EQ(atomic_load(&s->woken), 3);
  IPX_ASSERT_EQ(atomic_load(&s->result), 1);
}

/* ---- condition and mutex in separate mappings -------------------------
 *
 * Each object is its own memfd, mapped by each process at a distance of its
 * choosing, so the offset one side records points elsewhere in the other:
 *   waiter A:    cond page at base, mutex page at base + 2 pages,
 *                base + 6 pages left PROT_NONE;
 *   signaller B: cond page at base, a decoy mutex page (B-private, its
 *                mutex held by B throughout) at base + 2 pages, mutex page
 *                at base + 6 pages.
 * B's signals find, at A's recorded offset, a mutex B holds but with another
 * identity (a requeue onto it would strand A until the decoy is unlocked,
 * which B never does before A answers); A's signals find, at B's offset,
 * memory that faults if read.  Both must fall back to the wake. */
#define PAGE 4096
#define COND_AT 128
#define MUTEX_AT 256

typedef struct sep {
  int cfd, mfd;
  long rounds;
} sep_t;

static char *reserve(size_t pages) {
  char *b = mmap(NULL, pages * PAGE, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  IPX_ASSERT(b != MAP_FAILED);
  return b;
}
/* Map fd's first page over page `at` of a reservation (freed first, then
 * MAP_FIXED_NOREPLACE, so nothing else can be replaced). */
static char *map_at(char *base, size_t at, int fd) {
  char *want = base + at * PAGE;
  IPX_ASSERT_EQ(munmap(want, PAGE), 0);
  char *p = mmap(want, PAGE, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
  IPX_ASSERT(p == want);
  return p;
}

typedef struct {
  ipx_condition_t c;
  long turn;
} sep_cond_t;

static void sep_side(sep_t *x, int who) {
  pin(0); /* every signal finds the other side asleep */
  char *base = reserve(8);
  char *cp = map_at(base, 0, x->cfd);
  char *mp;
  ipx_mutex_t *decoy = NULL;
  if (who == 0) {
    mp = map_at(base, 2, x->mfd);
  } else {
    char *dp = base + 2 * PAGE;
    IPX_ASSERT_EQ(munmap(dp, PAGE), 0);
    IPX_ASSERT(mmap(dp, PAGE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
                    0) == dp);
    decoy = (ipx_mutex_t *)(void *)(dp + MUTEX_AT);
    IPX_ASSERT_OK(ipx_mutex_init(decoy));
    IPX_ASSERT_OK(ipx_mutex_lock(decoy));
    mp = map_at(base, 6, x->mfd);
  }
  sep_cond_t *sc = (sep_cond_t *)(void *)(cp + COND_AT);
  ipx_mutex_t *m = (ipx_mutex_t *)(void *)(mp + MUTEX_AT);
  pp_t p = {NULL, who, 1, -1};
  pingpong_side(&p, &sc->c, m, &sc->turn, x->rounds);
  if (decoy != NULL) IPX_ASSERT_OK(ipx_mutex_unlock(decoy));
}
static void sep_a(void *arg) { sep_side(arg, 0); }
static void sep_b(void *arg) { sep_side(arg, 1); }

IPX_TEST(condition_and_mutex_mapped_at_different_distances) {
  sep_t *x = ipx_test_shared_alloc(sizeof *x);
  x->cfd = memfd_create("ipx-test-cond", MFD_CLOEXEC);
  x->mfd = memfd_create("ipx-test-mutex", MFD_CLOEXEC);
  IPX_ASSERT(x->cfd >= 0 && x->mfd >= 0);
  IPX_ASSERT_EQ(ftruncate(x->cfd, PAGE), 0);
  IPX_ASSERT_EQ(ftruncate(x->mfd, PAGE), 0);
  char *cp = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, x->cfd, 0);
  char *mp = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, x->mfd, 0);
  IPX_ASSERT(cp != MAP_FAILED && mp != MAP_FAILED);
  sep_cond_t *sc = (sep_cond_t *)(void *)(cp + COND_AT);
  IPX_ASSERT_OK(ipx_condition_init(&sc->c));
  IPX_ASSERT_OK(ipx_mutex_init((ipx_mutex_t *)(void *)(mp + MUTEX_AT)));
  x->rounds = ipx_test_scale(2000, 100);
  pid_t a = ipx_test_fork(sep_a, x);
  pid_t b = ipx_test_fork(sep_b, x);
  IPX_ASSERT_CHILD_OK(a);
  IPX_ASSERT_CHILD_OK(b);
  IPX_ASSERT_EQ(sc->turn, 2 * x->rounds);
  munmap(cp, PAGE);
  munmap(mp, PAGE);
  close(x->cfd);
  close(x->mfd);
}

/* A plain mutex of layout 1 (no identity) keeps working with conditions,
 * through the wake. */
IPX_TEST(layout1_mutex_still_works) {
  shared_t *s = shared_new();
  unsigned char *b = (unsigned char *)(void *)&s->m;
  uint32_t v1 = 0x49504d01u;
  memcpy(b + 4, &v1, 4);
  memset(b + 16, 0, 8);
  s->items = ipx_test_scale(2000, 100);
  pp_t *p = ipx_test_shared_alloc(2 * sizeof *p);
  p[0] = (pp_t){s, 0, 1, 0};
  p[1] = (pp_t){s, 1, 1, 0};
  pid_t x = ipx_test_fork(pingpong_child, &p[0]);
  pid_t y = ipx_test_fork(pingpong_child, &p[1]);
  IPX_ASSERT_CHILD_OK(x);
  IPX_ASSERT_CHILD_OK(y);
  IPX_ASSERT_EQ(s->slot, 2 * s->items);
  IPX_ASSERT_OK(ipx_mutex_destroy(&s->m));
}
