/* ipx/common.h - definitions every ipx header shares.
 *
 * Included by every public header; users normally include <ipx/ipx.h>. */
#ifndef IPX_COMMON_H
#define IPX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__cplusplus)
#define IPX_EXTERN_C_BEGIN extern "C" {
#define IPX_EXTERN_C_END }
#else
#define IPX_EXTERN_C_BEGIN
#define IPX_EXTERN_C_END
#endif

/* Only symbols marked IPX_API are exported from libipx.so; the library is
 * built with -fvisibility=hidden. */
#if defined(IPX_BUILDING_LIBRARY) && defined(__GNUC__)
#define IPX_API __attribute__((visibility("default")))
#else
#define IPX_API
#endif

/* Cache line size assumed by the in-segment layouts (part of the layout
 * fingerprint, see docs/FORMAT.md). */
#define IPX_CACHE_LINE 64

#if defined(__cplusplus)
#define IPX_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define IPX_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

IPX_EXTERN_C_BEGIN

/* How to open a named object (shared memory, segment, named lock...). */
typedef enum ipx_open_mode {
  IPX_CREATE_ONLY = 1,    /* create it; IPX_EEXIST if the name exists */
  IPX_OPEN_ONLY = 2,      /* open it; IPX_ENOTFOUND if it does not exist */
  IPX_OPEN_OR_CREATE = 3  /* open it, creating it if needed (race-free) */
} ipx_open_mode_t;

/* How to access an object or a mapping. */
typedef enum ipx_access {
  IPX_READ_ONLY = 1,
  IPX_READ_WRITE = 2,
  IPX_COPY_ON_WRITE = 3 /* private writable mapping: changes stay local */
} ipx_access_t;

/* Default permissions of created objects: owner only.  (Boost uses 0644,
 * letting every local user read what processes share; ipx does not leak
 * data by default.  Pass explicit permissions to share wider.) */
#define IPX_DEFAULT_PERM 0600

/* Longest user name of a named object: NAME_MAX (255) less the "ipx."
 * prefix ipx puts before it in /dev/shm. */
#define IPX_NAME_MAX 251

/* 0 if `name` is a valid object name (1..IPX_NAME_MAX bytes of
 * [A-Za-z0-9._-], not "." or ".."), IPX_EINVAL if NULL, else
 * IPX_EBADNAME.  Thread-safe. */
IPX_API int ipx_name_check(const char *name);

IPX_EXTERN_C_END

#endif /* IPX_COMMON_H */
