/* ipx/condition.h - condition variable placed in shared memory
 * (Boost: interprocess_condition), used with an ipx_mutex_t.
 *
 * A 64-byte, 8-aligned struct living in memory shared by the processes
 * (any mapping address in each); initialise it once with
 * ipx_condition_init(), never copy an initialised one.  Layout:
 * docs/FORMAT.md; design: docs/sync.md.
 *
 * The usual contract: call wait with the mutex held, in a loop re-checking
 * the predicate (wake-ups may be spurious, and a signal may wake more than
 * one waiter); signal and broadcast may be called with or without the mutex
 * held.  A signal or broadcast wakes every waiter that started waiting
 * before it (no lost wake-ups); signal and broadcast make no system call
 * when nobody waits.  Called by the thread holding the waiters' mutex, they
 * move the waiters onto the mutex instead of waking them (the unlock wakes
 * one, which takes the mutex without sleeping again on it); when the mutex
 * cannot be verified from the calling thread (not held, or mapped at
 * another distance from the condition than in the waiters' process) they
 * wake them.  Either way the waiters return the same way.
 *
 * Crashes.  A waiter killed while waiting never swallows a wake-up meant
 * for the others (the kernel wakes only live sleepers), and destroy never
 * waits for anybody.  If the mutex's owner died (while the waiter slept or
 * earlier), the wait returns IPX_EOWNERDEAD with the mutex held, exactly as
 * ipx_mutex_lock does.  A mutex held inconsistent (IPX_EOWNERDEAD, not yet
 * consistent) when wait is called stays inconsistent: whoever takes it
 * next, the waiter included, gets IPX_EOWNERDEAD again.
 *
 * Errors common to every call: IPX_EINVAL for NULL or memory that is not an
 * initialised condition (never initialised or destroyed), IPX_ECORRUPT for
 * memory whose magic word is neither.  Thread-safe, between threads and
 * processes. */
#ifndef IPX_CONDITION_H
#define IPX_CONDITION_H

#include "common.h"
#include "mutex.h"

IPX_EXTERN_C_BEGIN

#define IPX_CONDITION_SIZE 64

typedef struct ipx_condition {
  union {
    unsigned char bytes_[IPX_CONDITION_SIZE];
    uint64_t align_;
  } u_;
} ipx_condition_t;

IPX_STATIC_ASSERT(sizeof(ipx_condition_t) == IPX_CONDITION_SIZE,
                  "ipx_condition_t size");

/* Errors: IPX_EINVAL (NULL). */
IPX_API int ipx_condition_init(ipx_condition_t *c);

/* Invalidate; never blocks.  Live waiters are woken (and return as from a
 * spurious wake-up); destroying a condition others still wait on is the
 * caller's error.  Common errors only. */
IPX_API int ipx_condition_destroy(ipx_condition_t *c);

/* Release `m` (held by the caller), sleep until signalled, re-lock `m`.
 * Returns 0 or IPX_EOWNERDEAD with `m` held.  Errors with `m` not held:
 * IPX_ENOTRECOVERABLE (while re-locking); errors with `m` held as on entry:
 * IPX_ENOTOWNER (the caller does not hold `m`), IPX_EINVAL/IPX_ECORRUPT
 * (bad condition or mutex). */
IPX_API int ipx_condition_wait(ipx_condition_t *c, ipx_mutex_t *m);

/* As ipx_condition_wait, giving up at `deadline_ns` (CLOCK_MONOTONIC):
 * IPX_ETIMEDOUT, with `m` held.  IPX_EOWNERDEAD takes precedence over
 * IPX_ETIMEDOUT (the mutex is held either way). */
IPX_API int ipx_condition_wait_until(ipx_condition_t *c, ipx_mutex_t *m,
                                     uint64_t deadline_ns);

/* ipx_condition_wait_until(c, m, ipx_deadline_after(timeout_ns)). */
IPX_API int ipx_condition_wait_for(ipx_condition_t *c, ipx_mutex_t *m,
                                   uint64_t timeout_ns);

/* Wake at least one waiter, if any. */
IPX_API int ipx_condition_signal(ipx_condition_t *c);

/* Wake every waiter. */
IPX_API int ipx_condition_broadcast(ipx_condition_t *c);

IPX_EXTERN_C_END

#endif /* IPX_CONDITION_H */
