/* ipx/time.h - the one time convention.
 *
 * Every timed ipx call takes an absolute deadline in nanoseconds on
 * CLOCK_MONOTONIC (uint64_t), so a change of the wall clock never changes a
 * wait; each also has a _for(ns) form taking a relative timeout.  Waits
 * interrupted by a signal restart with the time that remains. */
#ifndef IPX_TIME_H
#define IPX_TIME_H

#include "common.h"

IPX_EXTERN_C_BEGIN

/* A deadline that never passes. */
#define IPX_FOREVER UINT64_MAX

/* Nanoseconds per unit, for readable timeouts: 5 * IPX_MSEC. */
#define IPX_USEC UINT64_C(1000)
#define IPX_MSEC UINT64_C(1000000)
#define IPX_SEC UINT64_C(1000000000)

/* Now, in ns on CLOCK_MONOTONIC.  Thread-safe. */
IPX_API uint64_t ipx_now(void);

/* The deadline `ns` from now, saturating at IPX_FOREVER.  Thread-safe. */
IPX_API uint64_t ipx_deadline_after(uint64_t ns);

IPX_EXTERN_C_END

#endif /* IPX_TIME_H */
