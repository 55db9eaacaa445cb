/* ipx/semaphore.h - counting semaphore placed in shared memory
 * (Boost: interprocess_semaphore).
 *
 * A 64-byte, 8-aligned struct living in memory shared by the processes
 * (any mapping address in each); initialise it once with
 * ipx_semaphore_init(), never copy an initialised one.  Layout:
 * docs/FORMAT.md; design: docs/sync.md.
 *
 * Waiting spins briefly, then sleeps on a futex; post makes a wake-up
 * system call only when someone may be asleep.  A waiter killed while
 * waiting is harmless: it holds nothing and takes no unit with it (a unit
 * it had already taken when killed is gone, as with any consumer that dies).
 *
 * Errors common to every call: IPX_EINVAL for NULL or memory that is not an
 * initialised semaphore (never initialised or destroyed), IPX_ECORRUPT for
 * memory whose magic word is neither.  All calls are thread-safe and work
 * between threads and processes; post is async-signal-safe. */
#ifndef IPX_SEMAPHORE_H
#define IPX_SEMAPHORE_H

#include "common.h"

IPX_EXTERN_C_BEGIN

#define IPX_SEMAPHORE_SIZE 64
/* The largest value a semaphore can hold. */
#define IPX_SEMAPHORE_VALUE_MAX 0x7fffffffu

typedef struct ipx_semaphore {
  union {
    unsigned char bytes_[IPX_SEMAPHORE_SIZE];
    uint64_t align_;
  } u_;
} ipx_semaphore_t;

IPX_STATIC_ASSERT(sizeof(ipx_semaphore_t) == IPX_SEMAPHORE_SIZE,
                  "ipx_semaphore_t size");

/* Initialise with `value` units.  Errors: IPX_EINVAL (NULL, or value above
 * IPX_SEMAPHORE_VALUE_MAX). */
IPX_API int ipx_semaphore_init(ipx_semaphore_t *s, unsigned value);

/* Invalidate; never blocks (waiters still asleep, live or dead, are the
 * caller's error and are not waited for).  Common errors only. */
IPX_API int ipx_semaphore_destroy(ipx_semaphore_t *s);

/* Add one unit, waking one waiter if any.  Errors: IPX_EOVERFLOW (already
 * IPX_SEMAPHORE_VALUE_MAX). */
IPX_API int ipx_semaphore_post(ipx_semaphore_t *s);

/* Take one unit, waiting while there is none. */
IPX_API int ipx_semaphore_wait(ipx_semaphore_t *s);

/* Take one unit if there is one now: else IPX_EBUSY. */
IPX_API int ipx_semaphore_try_wait(ipx_semaphore_t *s);

/* Take one unit, waiting at most until `deadline_ns` (CLOCK_MONOTONIC):
 * else IPX_ETIMEDOUT. */
IPX_API int ipx_semaphore_wait_until(ipx_semaphore_t *s, uint64_t deadline_ns);

/* ipx_semaphore_wait_until(s, ipx_deadline_after(timeout_ns)). */
IPX_API int ipx_semaphore_wait_for(ipx_semaphore_t *s, uint64_t timeout_ns);

/* The current number of units (a snapshot). */
IPX_API int ipx_semaphore_value(ipx_semaphore_t *s, unsigned *value);

IPX_EXTERN_C_END

#endif /* IPX_SEMAPHORE_H */
