/* ThreadSanitizer annotations for ipx's own futex locks, so TSan knows
 * where they are acquired and released (it cannot see through futexes).
 * Empty in every other build. */
#ifndef IPX_SYNC_TSAN_H
#define IPX_SYNC_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define IPX__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPX__TSAN 1
#endif
#endif

#ifdef IPX__TSAN
#include <sanitizer/tsan_interface.h>
/* Locks in shared memory are never statically initialised. */
#define IPX__TSAN_FLAGS(f) ((unsigned)(f) | __tsan_mutex_not_static)
#define IPX__TSAN_CREATE(a, f) __tsan_mutex_create((a), IPX__TSAN_FLAGS(f))
#define IPX__TSAN_DESTROY(a) __tsan_mutex_destroy((a), __tsan_mutex_not_static)
#define IPX__TSAN_PRE_LOCK(a, f) __tsan_mutex_pre_lock((a), IPX__TSAN_FLAGS(f))
#define IPX__TSAN_POST_LOCK(a, f, rec) \
  __tsan_mutex_post_lock((a), IPX__TSAN_FLAGS(f), (rec))
#define IPX__TSAN_PRE_UNLOCK(a, f) \
  ((void)__tsan_mutex_pre_unlock((a), IPX__TSAN_FLAGS(f)))
#define IPX__TSAN_POST_UNLOCK(a, f) \
  __tsan_mutex_post_unlock((a), IPX__TSAN_FLAGS(f))
#define IPX__TSAN_TRY __tsan_mutex_try_lock
#define IPX__TSAN_TRY_FAILED \
  (__tsan_mutex_try_lock | __tsan_mutex_try_lock_failed)
#define IPX__TSAN_RECURSIVE_LOCK __tsan_mutex_recursive_lock
#define IPX__TSAN_RECURSIVE_UNLOCK __tsan_mutex_recursive_unlock
#define IPX__TSAN_WRITE_REENTRANT __tsan_mutex_write_reentrant
#else
#define IPX__TSAN_CREATE(a, f) ((void)(a), (void)(f))
#define IPX__TSAN_DESTROY(a) ((void)(a))
#define IPX__TSAN_PRE_LOCK(a, f) ((void)(a), (void)(f))
#define IPX__TSAN_POST_LOCK(a, f, rec) ((void)(a), (void)(f), (void)(rec))
#define IPX__TSAN_PRE_UNLOCK(a, f) ((void)(a), (void)(f))
#define IPX__TSAN_POST_UNLOCK(a, f) ((void)(a), (void)(f))
#define IPX__TSAN_TRY 0
#define IPX__TSAN_TRY_FAILED 0
#define IPX__TSAN_RECURSIVE_LOCK 0
#define IPX__TSAN_RECURSIVE_UNLOCK 0
#define IPX__TSAN_WRITE_REENTRANT 0
#endif

#endif /* IPX_SYNC_TSAN_H */
