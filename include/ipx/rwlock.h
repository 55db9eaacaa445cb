/* ipx/rwlock.h - robust sharable (read-write) and upgradable mutexes placed
 * in shared memory (Boost: interprocess_sharable_mutex,
 * interprocess_upgradable_mutex).
 *
 * Both are fixed-size structs (IPX_SHARABLE_MUTEX_SIZE bytes, 8-aligned;
 * place them on a 64-byte boundary so readers do not share cache lines) that
 * live anywhere both sides can map.  Initialise once with _init; never copy
 * an initialised one.  They work between processes and between threads of
 * one process.  Design: docs/rwlock.md; bytes: docs/FORMAT.md.
 *
 * Modes.  Exclusive (one holder, nobody else), sharable (any number of
 * holders, up to IPX_RWLOCK_READER_SLOTS at once), and, for the upgradable
 * mutex, upgradable: one holder at a time, coexisting with sharable holders
 * but excluding exclusive and other upgradable holders; it can be promoted
 * to exclusive without letting another writer in between.
 *
 * Writer preference: once an exclusive locker (or a promotion) is waiting,
 * new sharable lockers wait behind it, so a stream of readers never starves
 * a writer.  Readers that already hold finish normally.  Writers among
 * themselves are not ordered (a release wakes every waiter).
 *
 * Reader table.  Each sharable hold occupies one of IPX_RWLOCK_READER_SLOTS
 * slots, a robust word holding the reader's thread id.  A sharable lock
 * when every slot is held returns IPX_EFULL at once (it neither waits nor
 * holds an uncounted share).  A thread may hold several shares (each takes
 * a slot).
 *
 * Death.  A reader that dies holding a share is marked by the kernel in its
 * slot; the share is simply gone (writers no longer wait for it, the slot is
 * reused), nobody is told: a reader cannot have corrupted the data.  An
 * exclusive or upgradable holder that dies makes the next exclusive or
 * upgradable locker (or a sharable locker that finds the dead exclusive
 * holder in its way) get IPX_EOWNERDEAD with the lock held *exclusively*
 * (upgradable for an upgradable locker).  That caller may repair the data
 * and call _consistent(); if it releases without doing so, every later
 * locker gets IPX_ENOTRECOVERABLE.  A sharable locker that gets
 * IPX_EOWNERDEAD holds the lock exclusively: it releases it with the unlock
 * of the call it made (_unlock_sharable) or with _unlock.  A writer that
 * died while still waiting for readers to leave had not written anything:
 * its claim is cleared silently.
 *
 * Memory that holds a lock with a holder must stay mapped and not be
 * reused: the kernel writes into it when a holder dies.  Locks are held by
 * threads; a fork() child holds none of its parent's holds.
 *
 * Errors common to every call: IPX_EINVAL for NULL or memory that is not an
 * initialised lock of this kind (never initialised, destroyed, or the other
 * kind), IPX_ECORRUPT for memory whose magic is not an ipx rw-lock's (and
 * from a sharable lock call on a state no holder can leave behind: an
 * exclusive claim with no owner, alive or dead, read repeatedly),
 * IPX_ENOTSUP when the calling thread has no glibc robust list.
 * Lock calls: 0, IPX_EOWNERDEAD (held, see above), IPX_EBUSY (try forms),
 * IPX_ETIMEDOUT (timed forms), IPX_EDEADLK (the calling thread already holds
 * the lock in a mode that would deadlock), IPX_ENOTRECOVERABLE.  Unlock and
 * mode-change calls: IPX_ENOTOWNER when the calling thread does not hold the
 * mode it releases.  All calls are thread-safe; none is async-signal-safe.
 * Timed forms take an absolute CLOCK_MONOTONIC deadline in ns (_until;
 * IPX_FOREVER for none) or a relative timeout (_for). */
#ifndef IPX_RWLOCK_H
#define IPX_RWLOCK_H

#include "common.h"

IPX_EXTERN_C_BEGIN

/* Sharable holders at once per lock. */
#define IPX_RWLOCK_READER_SLOTS 32
#define IPX_SHARABLE_MUTEX_SIZE (64 + 64 * IPX_RWLOCK_READER_SLOTS)
#define IPX_UPGRADABLE_MUTEX_SIZE IPX_SHARABLE_MUTEX_SIZE

typedef struct ipx_sharable_mutex {
  union {
    unsigned char bytes_[IPX_SHARABLE_MUTEX_SIZE];
    uint64_t align_;
  } u_;
} ipx_sharable_mutex_t;

typedef struct ipx_upgradable_mutex {
  union {
    unsigned char bytes_[IPX_UPGRADABLE_MUTEX_SIZE];
    uint64_t align_;
  } u_;
} ipx_upgradable_mutex_t;

IPX_STATIC_ASSERT(sizeof(ipx_sharable_mutex_t) == 2112, "sharable mutex size");
IPX_STATIC_ASSERT(sizeof(ipx_upgradable_mutex_t) == 2112,
                  "upgradable mutex size");

/* ---- sharable mutex ---------------------------------------------------- */

/* Initialise unlocked.  Initialising a lock in use is undefined.
 * Errors: IPX_EINVAL (NULL). */
IPX_API int ipx_sharable_mutex_init(ipx_sharable_mutex_t *m);
/* Invalidate.  Never blocks; dead holders do not count.  Errors: IPX_EBUSY
 * (a live holder), common errors. */
IPX_API int ipx_sharable_mutex_destroy(ipx_sharable_mutex_t *m);

/* Exclusive. */
IPX_API int ipx_sharable_mutex_lock(ipx_sharable_mutex_t *m);
IPX_API int ipx_sharable_mutex_try_lock(ipx_sharable_mutex_t *m);
IPX_API int ipx_sharable_mutex_lock_until(ipx_sharable_mutex_t *m,
                                          uint64_t deadline_ns);
IPX_API int ipx_sharable_mutex_lock_for(ipx_sharable_mutex_t *m,
                                        uint64_t timeout_ns);
IPX_API int ipx_sharable_mutex_unlock(ipx_sharable_mutex_t *m);

/* Sharable.  Also IPX_EFULL: every reader slot is taken. */
IPX_API int ipx_sharable_mutex_lock_sharable(ipx_sharable_mutex_t *m);
IPX_API int ipx_sharable_mutex_try_lock_sharable(ipx_sharable_mutex_t *m);
IPX_API int ipx_sharable_mutex_lock_sharable_until(ipx_sharable_mutex_t *m,
                                                   uint64_t deadline_ns);
IPX_API int ipx_sharable_mutex_lock_sharable_for(ipx_sharable_mutex_t *m,
                                                 uint64_t timeout_ns);
IPX_API int ipx_sharable_mutex_unlock_sharable(ipx_sharable_mutex_t *m);

/* Exclusive -> sharable without letting a writer in.  IPX_EFULL (no slot:
 * the exclusive hold is kept), IPX_ENOTOWNER.  Demoting a lock that is
 * still inconsistent (IPX_EOWNERDEAD, no _consistent) makes it not
 * recoverable, like unlocking it. */
IPX_API int ipx_sharable_mutex_demote(ipx_sharable_mutex_t *m);

/* After IPX_EOWNERDEAD: the data is repaired.  IPX_ENOTOWNER (the caller
 * does not hold it exclusively or upgradably), IPX_EINVAL (not
 * inconsistent). */
IPX_API int ipx_sharable_mutex_consistent(ipx_sharable_mutex_t *m);

/* ---- upgradable mutex -------------------------------------------------- */

IPX_API int ipx_upgradable_mutex_init(ipx_upgradable_mutex_t *m);
IPX_API int ipx_upgradable_mutex_destroy(ipx_upgradable_mutex_t *m);

IPX_API int ipx_upgradable_mutex_lock(ipx_upgradable_mutex_t *m);
IPX_API int ipx_upgradable_mutex_try_lock(ipx_upgradable_mutex_t *m);
IPX_API int ipx_upgradable_mutex_lock_until(ipx_upgradable_mutex_t *m,
                                            uint64_t deadline_ns);
IPX_API int ipx_upgradable_mutex_lock_for(ipx_upgradable_mutex_t *m,
                                          uint64_t timeout_ns);
IPX_API int ipx_upgradable_mutex_unlock(ipx_upgradable_mutex_t *m);

IPX_API int ipx_upgradable_mutex_lock_sharable(ipx_upgradable_mutex_t *m);
IPX_API int ipx_upgradable_mutex_try_lock_sharable(ipx_upgradable_mutex_t *m);
IPX_API int ipx_upgradable_mutex_lock_sharable_until(ipx_upgradable_mutex_t *m,
                                                     uint64_t deadline_ns);
IPX_API int ipx_upgradable_mutex_lock_sharable_for(ipx_upgradable_mutex_t *m,
                                                   uint64_t timeout_ns);
IPX_API int ipx_upgradable_mutex_unlock_sharable(ipx_upgradable_mutex_t *m);

/* Upgradable: coexists with sharable holders, excludes exclusive and
 * upgradable ones. */
IPX_API int ipx_upgradable_mutex_lock_upgradable(ipx_upgradable_mutex_t *m);
IPX_API int ipx_upgradable_mutex_try_lock_upgradable(ipx_upgradable_mutex_t *m);
IPX_API int ipx_upgradable_mutex_lock_upgradable_until(
    ipx_upgradable_mutex_t *m, uint64_t deadline_ns);
IPX_API int ipx_upgradable_mutex_lock_upgradable_for(ipx_upgradable_mutex_t *m,
                                                     uint64_t timeout_ns);
IPX_API int ipx_upgradable_mutex_unlock_upgradable(ipx_upgradable_mutex_t *m);

/* Upgradable -> exclusive: waits for the sharable holders to leave (new
 * ones wait behind it).  On IPX_EBUSY / IPX_ETIMEDOUT the caller still
 * holds the upgradable lock.  IPX_ENOTOWNER if it does not hold it. */
IPX_API int ipx_upgradable_mutex_promote(ipx_upgradable_mutex_t *m);
IPX_API int ipx_upgradable_mutex_try_promote(ipx_upgradable_mutex_t *m);
IPX_API int ipx_upgradable_mutex_promote_until(ipx_upgradable_mutex_t *m,
                                               uint64_t deadline_ns);
IPX_API int ipx_upgradable_mutex_promote_for(ipx_upgradable_mutex_t *m,
                                             uint64_t timeout_ns);

/* Exclusive -> upgradable (never fails for a holder). */
IPX_API int ipx_upgradable_mutex_demote_to_upgradable(
    ipx_upgradable_mutex_t *m);
/* Exclusive or upgradable -> sharable.  IPX_EFULL (no slot: the caller
 * keeps what it held); an inconsistent lock becomes not recoverable. */
IPX_API int ipx_upgradable_mutex_demote_to_sharable(ipx_upgradable_mutex_t *m);

IPX_API int ipx_upgradable_mutex_consistent(ipx_upgradable_mutex_t *m);

IPX_EXTERN_C_END

#endif /* IPX_RWLOCK_H */
