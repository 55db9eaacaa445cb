/* ipx/ipx.h - umbrella header: everything ipx offers.
 *
 * ipx is Boost.Interprocess for C: shared memory, mapped regions, offset
 * pointers, managed segments, robust synchronization and message queues
 * between processes on one Linux machine.  See README.md and docs/. */
#ifndef IPX_IPX_H
#define IPX_IPX_H

#include "alloc.h"
#include "common.h"
#include "condition.h"
#include "error.h"
#include "file_lock.h"
#include "mutex.h"
#include "named.h"
#include "objects.h"
#include "offset_ptr.h"
#include "region.h"
#include "rwlock.h"
#include "segment.h"
#include "semaphore.h"
#include "shm.h"
#include "time.h"
#include "version.h"

#endif /* IPX_IPX_H */
