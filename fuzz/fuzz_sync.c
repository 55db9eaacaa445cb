/* A synchronisation object whose bytes another process damaged: the first
 * input byte picks the kind (mutex, recursive mutex, condition, semaphore,
 * sharable or upgradable mutex), the object is initialised, and the rest of
 * the input is XORed over its bytes (so an input of zeros is a good object
 * and a few set bits are a few flipped ones).  Then every non-blocking
 * operation of that kind runs: try forms, timed forms with a deadline
 * already past or a microsecond away, unlocks, consistent, post, value,
 * signal, broadcast.  Each must return, with a result or an error code:
 * never crash, never hang, never spin.
 *
 * Every input runs on one worker thread, which afterwards forgets its robust
 * list: a lock the damaged bytes let it take and not release would stay
 * linked there, and the next input, rewriting those bytes, would corrupt a
 * list the harness keeps using.  A worker not done within five seconds
 * aborts the run, which libFuzzer reports with the input. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ipx/ipx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static alignas(64) unsigned char obj[4096];

static void mutex_ops(ipx_mutex_t *m) {
  int r = ipx_mutex_try_lock(m);
  if (r == IPX_EOWNERDEAD) ipx_mutex_consistent(m);
  if (r == 0 || r == IPX_EOWNERDEAD) ipx_mutex_unlock(m);
  r = ipx_mutex_lock_for(m, 0);
  if (r == 0 || r == IPX_EOWNERDEAD) ipx_mutex_unlock(m);
  ipx_mutex_unlock(m); /* not held: refused */
  ipx_mutex_consistent(m);
}

static void recursive_ops(ipx_recursive_mutex_t *m) {
  int r = ipx_recursive_mutex_try_lock(m);
  int held = r == 0 || r == IPX_EOWNERDEAD;
  if (r == IPX_EOWNERDEAD) ipx_recursive_mutex_consistent(m);
  r = ipx_recursive_mutex_lock_for(m, 0);
  if (r == 0 || r == IPX_EOWNERDEAD) ipx_recursive_mutex_unlock(m);
  if (held) ipx_recursive_mutex_unlock(m);
  ipx_recursive_mutex_unlock(m);
}

static void condition_ops(ipx_condition_t *c, ipx_mutex_t *m) {
  ipx_condition_signal(c);
  ipx_condition_broadcast(c);
  if (ipx_mutex_try_lock(m) == 0) {
    ipx_condition_wait_for(c, m, 0);
    ipx_condition_wait_for(c, m, 1000);
    ipx_mutex_unlock(m);
  }
  ipx_condition_wait_for(c, m, 0); /* mutex not held: refused */
}

static void semaphore_ops(ipx_semaphore_t *s) {
  unsigned v;
  ipx_semaphore_value(s, &v);
  ipx_semaphore_try_wait(s);
  ipx_semaphore_wait_for(s, 0);
  ipx_semaphore_post(s);
  ipx_semaphore_post(s);
  ipx_semaphore_wait_for(s, 1000);
  ipx_semaphore_value(s, &v);
}

static void sharable_ops(ipx_sharable_mutex_t *m) {
  int r = ipx_sharable_mutex_try_lock(m);
  if (r == IPX_EOWNERDEAD) ipx_sharable_mutex_consistent(m);
  if (r == 0 || r == IPX_EOWNERDEAD) {
    if (ipx_sharable_mutex_demote(m) == 0)
      ipx_sharable_mutex_unlock_sharable(m);
    else
      ipx_sharable_mutex_unlock(m);
  }
  r = ipx_sharable_mutex_try_lock_sharable(m);
  if (r == 0 || r == IPX_EOWNERDEAD) ipx_sharable_mutex_unlock_sharable(m);
  r = ipx_sharable_mutex_lock_for(m, 0);
  if (r == 0 || r == IPX_EOWNERDEAD) ipx_sharable_mutex_unlock(m);
  r = ipx_sharable_mutex_lock_sharable_for(m, 0);
  if (r == 0 || r == IPX_EOWNERDEAD) ipx_sharable_mutex_unlock_sharable(m);
  ipx_sharable_mutex_unlock(m);
  ipx_sharable_mutex_unlock_sharable(m);
}

static void upgradable_ops(ipx_upgradable_mutex_t *m) {
  int r = ipx_upgradable_mutex_try_lock_upgradable(m);
  if (r == IPX_EOWNERDEAD) ipx_upgradable_mutex_consistent(m);
  if (r == 0 || r == IPX_EOWNERDEAD) {
    if (ipx_upgradable_mutex_try_promote(m) == 0 ||
        ipx_upgradable_mutex_promote_for(m, 0) == 0) {
      if (ipx_upgradable_mutex_demote_to_sharable(m) == 0)
        ipx_upgradable_mutex_unlock_sharable(m);
      else
        ipx_upgradable_mutex_unlock(m);
    } else {
      ipx_upgradable_mutex_unlock_upgradable(m);
    }
  }
  r = ipx_upgradable_mutex_try_lock(m);
  if (r == 0 || r == IPX_EOWNERDEAD) {
    if (ipx_upgradable_mutex_demote_to_upgradable(m) == 0)
      ipx_upgradable_mutex_unlock_upgradable(m);
    else
      ipx_upgradable_mutex_unlock(m);
  }
  r = ipx_upgradable_mutex_try_lock_sharable(m);
  if (r == 0 || r == IPX_EOWNERDEAD) ipx_upgradable_mutex_unlock_sharable(m);
  r = ipx_upgradable_mutex_lock_upgradable_for(m, 0);
  if (r == 0 || r == IPX_EOWNERDEAD) ipx_upgradable_mutex_unlock_upgradable(m);
  ipx_upgradable_mutex_unlock(m);
  ipx_upgradable_mutex_unlock_upgradable(m);
}

static void run(const uint8_t *data, size_t size) {
  unsigned kind = data[0] % 6u;
  size_t n = 0;
  memset(obj, 0, sizeof obj);
  switch (kind) {
  case 0: ipx_mutex_init((ipx_mutex_t *)(void *)obj); n = sizeof(ipx_mutex_t); break;
  case 1:
    ipx_recursive_mutex_init((ipx_recursive_mutex_t *)(void *)obj);
    n = sizeof(ipx_recursive_mutex_t);
    break;
  case 2:
    ipx_condition_init((ipx_condition_t *)(void *)obj);
    /* The condition's mutex, right after it, is damaged too. */
    ipx_mutex_init((ipx_mutex_t *)(void *)(obj + 64));
    n = 128;
    break;
  case 3:
    ipx_semaphore_init((ipx_semaphore_t *)(void *)obj, data[0] >> 3);
    n = sizeof(ipx_semaphore_t);
    break;
  case 4:
    ipx_sharable_mutex_init((ipx_sharable_mutex_t *)(void *)obj);
    n = sizeof(ipx_sharable_mutex_t);
    break;
  default:
    ipx_upgradable_mutex_init((ipx_upgradable_mutex_t *)(void *)obj);
    n = sizeof(ipx_upgradable_mutex_t);
    break;
  }
  for (size_t i = 1; i < size && i - 1 < n; i++) obj[i - 1] ^= data[i];
  switch (kind) {
  case 0: mutex_ops((ipx_mutex_t *)(void *)obj); break;
  case 1: recursive_ops((ipx_recursive_mutex_t *)(void *)obj); break;
  case 2:
    condition_ops((ipx_condition_t *)(void *)obj,
                  (ipx_mutex_t *)(void *)(obj + 64));
    break;
  case 3: semaphore_ops((ipx_semaphore_t *)(void *)obj); break;
  case 4: sharable_ops((ipx_sharable_mutex_t *)(void *)obj); break;
  default: upgradable_ops((ipx_upgradable_mutex_t *)(void *)obj); break;
  }
}

/* Whatever the input left linked is dropped: the list is emptied, as the
 * kernel would find it for a thread holding nothing. */
static void forget_robust_list(void) {
  struct robust_list_head *h;
  size_t len;
  if (syscall(SYS_get_robust_list, 0, &h, &len) != 0 || !h) return;
  h->list.next = &h->list;
  h->list_op_pending = NULL;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static const uint8_t *job_data;
static size_t job_size;
static int job_ready, job_done;

static void *worker(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&mu);
    while (!job_ready) pthread_cond_wait(&cv, &mu);
    job_ready = 0;
    pthread_mutex_unlock(&mu);
    run(job_data, job_size);
    forget_robust_list();
    pthread_mutex_lock(&mu);
    job_done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int started;
  if (size < 1) return 0;
  pthread_mutex_lock(&mu);
  if (!started) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_destroy(&cv);
    pthread_cond_init(&cv, &ca);
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) abort();
    pthread_detach(t);
    started = 1;
  }
  job_data = data;
  job_size = size;
  job_done = 0;
  job_ready = 1;
  pthread_cond_broadcast(&cv);
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += 5;
  while (!job_done)
    if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT)
      abort(); /* a hang or a spin on damaged bytes */
  pthread_mutex_unlock(&mu);
  return 0;
}
