/* The layout behind ipx_mutex_t / ipx_recursive_mutex_t (docs/FORMAT.md)
 * and what the condition variable needs from a mutex. */
#ifndef IPX_SYNC_MUTEX_INTERNAL_H
#define IPX_SYNC_MUTEX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ipx/mutex.h"
#include "sync/robust.h"

/* Magic words: "IPM" / "IPR" and the layout version in the low byte.  A
 * plain mutex of layout 1 (no identity) is still accepted: it works, it is
 * just never the target of a condition's requeue. */
#define IPX__MUTEX_MAGIC 0x49504d02u
#define IPX__MUTEX_MAGIC_V1 0x49504d01u
#define IPX__RMUTEX_MAGIC 0x49505201u
#define IPX__MUTEX_DESTROYED 0x49504400u

/* The TID bits of a mutex nobody can ever lock again (no thread has this
 * TID: PID_MAX_LIMIT is 2^22). */
#define IPX__MUTEX_NOTREC IPX__FUTEX_TID_MASK

typedef struct ipx__mutex {
  /* owner TID | FUTEX_WAITERS | FUTEX_OWNER_DIED.  OWNER_DIED together with
   * an owner TID means "owned, not yet marked consistent". */
  uint32_t word;
  uint32_t magic;
  uint32_t count; /* recursion depth (recursive kind); owner-only */
  uint32_t reserved0;
  /* Random, non-zero, set at init (plain mutex of layout 2; 0 otherwise):
   * lets a condition's signaller tell this mutex from any other lock it
   * holds at the same address (condition.c). */
  uint64_t id;
  uint64_t prev; /* robust list node: owner-local addresses (robust.h) */
  uint64_t next;
  uint32_t reserved1[6];
} ipx__mutex_t;

_Static_assert(sizeof(ipx__mutex_t) == IPX_MUTEX_SIZE, "mutex size");
_Static_assert(sizeof(ipx__mutex_t) == IPX_RECURSIVE_MUTEX_SIZE,
               "recursive mutex size");
_Static_assert(_Alignof(ipx__mutex_t) == 8, "mutex alignment");
_Static_assert(_Alignof(ipx_mutex_t) == 8, "public mutex alignment");
_Static_assert(sizeof(ipx_mutex_t) == 64 && sizeof(ipx_recursive_mutex_t) == 64,
               "public mutex sizes");
_Static_assert(_Alignof(ipx_recursive_mutex_t) == 8,
               "public recursive mutex alignment");
IPX__ROBUST_LAYOUT_CHECK(ipx__mutex_t, word, prev, next);
/* Inside the first 40 bytes, which every entry of a robust list has mapped
 * (glibc's pthread_mutex_t is 40 bytes): condition.c reads it from any
 * lock the calling thread holds. */
_Static_assert(offsetof(ipx__mutex_t, magic) == 4 &&
                   offsetof(ipx__mutex_t, id) == 16,
               "mutex magic and identity offsets");

/* Check that `m` is a plain mutex the caller holds and give its identity
 * (0 for a layout-1 mutex).  IPX_EINVAL, IPX_ECORRUPT, IPX_ENOTOWNER,
 * IPX_ENOTSUP. */
int ipx__mutex_wait_check(ipx_mutex_t *m, uint64_t *id);

/* Release `m`, held by the caller, for a condition wait.  A mutex still
 * inconsistent (owner died, not yet consistent) is released as "owner
 * died", so whoever takes it next (the waiter itself, usually) gets
 * IPX_EOWNERDEAD again instead of the mutex becoming unrecoverable.
 * 0, IPX_EINVAL, IPX_ECORRUPT, IPX_ENOTOWNER, IPX_ENOTSUP. */
int ipx__mutex_release_for_wait(ipx_mutex_t *m);

/* Re-take `m` after a condition wait that may have slept: as
 * ipx_mutex_lock, except that the word is taken with FUTEX_WAITERS set, as
 * by any thread that slept on it, because a waiter may have been requeued
 * onto it and others may still sleep there. */
int ipx__mutex_lock_after_wait(ipx_mutex_t *m);

#endif /* IPX_SYNC_MUTEX_INTERNAL_H */
