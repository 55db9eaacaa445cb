/* ipx/objects.h - named, unique and anonymous objects inside a managed
 * segment (Boost: segment_manager::construct / find / find_or_construct /
 * destroy, unique_instance, anonymous_instance, atomic_func).
 *
 * An object is an array of `count` elements of `elem_size` bytes, aligned
 * to `align`, allocated from the segment's heap with a small header in
 * front (docs/FORMAT.md, section "objects").  Three kinds:
 *
 *   IPX_OBJECT_NAMED      found by its name;
 *   IPX_OBJECT_UNIQUE     one per type: the "name" is the type's name, which
 *                         the caller passes (C has no typeid; the IPX_UNIQUE_*
 *                         macros pass the stringified type);
 *   IPX_OBJECT_ANONYMOUS  no name, reachable only through its address.
 *
 * Named and unique objects are separate name spaces: a unique "point" and
 * a named "point" may both exist.
 *
 * Names: 1..IPX_OBJECT_NAME_MAX bytes, any bytes except NUL.  Unlike the
 * names of shared-memory objects they never reach the file system, so
 * slashes, spaces and UTF-8 are fine.  The empty name and longer names are
 * IPX_EBADNAME.
 *
 * Elements: elem_size >= 1; count may be 0 (an empty array with an
 * address); align is 0 (the default, 16 = alignof(max_align_t)) or a power
 * of two up to 4096.  elem_size * count is checked for overflow: too large
 * is IPX_ENOMEM.
 *
 * Initialisation: an object is zero-filled, or, when an init callback is
 * given, the callback runs once per element in index order, under the
 * segment lock, before any other thread or process can find the object.  A
 * callback returning non-zero stops the construction: the object is
 * released and the call returns that value.  The callback may allocate and
 * construct other objects (the segment lock is recursive).
 *
 * Concurrency: read-write and copy-on-write openers serialise every call on
 * the segment lock (a robust recursive mutex).  Read-only openers never
 * write a byte: their finds, queries and iterations read without the lock
 * and retry while a writer is inside (the segment's generation counter),
 * bounds-checking every offset they read; they fail with IPX_EBUSY if no
 * quiet moment comes within a second.  Every function is thread-safe.
 *
 * Crash safety: a process killed at any instruction inside construct,
 * find-or-construct, destroy or ipx_segment_atomic_func leaves the objects
 * usable for everyone else: the next lock holder rebuilds the name index
 * from the heap, keeping every finished object and releasing every
 * half-constructed one; a half-constructed object is never findable.
 * (docs/objects.md, "Crash semantics".)
 *
 * Addresses are process-local (each process maps the segment at its own
 * address); pass handles (ipx_segment_handle_from_address) between
 * processes, or find by name.  fork(): as for the segment handle. */
#ifndef IPX_OBJECTS_H
#define IPX_OBJECTS_H

#include "common.h"
#include "segment.h"

IPX_EXTERN_C_BEGIN

/* Longest object name in bytes (without the terminating NUL). */
#define IPX_OBJECT_NAME_MAX 255
/* Largest alignment of an object's elements. */
#define IPX_OBJECT_MAX_ALIGN 4096u
/* Alignment when 0 is passed. */
#define IPX_OBJECT_DEFAULT_ALIGN 16u

typedef enum ipx_object_kind {
  IPX_OBJECT_NAMED = 1,
  IPX_OBJECT_UNIQUE = 2,
  IPX_OBJECT_ANONYMOUS = 3
} ipx_object_kind_t;

/* Initialise element `index` at `elem` (elem_size bytes, zero-filled
 * beforehand).  Return 0, or non-zero to abandon the construction. */
typedef int (*ipx_object_init_fn)(void *elem, size_t index, void *ctx);

/* What ipx_object_query and ipx_object_foreach report. */
typedef struct ipx_object_info {
  ipx_object_kind_t kind;
  void *address;    /* first element, in this process */
  size_t elem_size; /* bytes per element */
  size_t count;     /* elements */
  size_t align;     /* alignment the object was constructed with */
  size_t name_len;  /* bytes of name (0 for anonymous objects) */
  char name[IPX_OBJECT_NAME_MAX + 1]; /* a copy, NUL-terminated */
} ipx_object_info_t;

/* Construct an object of `kind` called `name` (NULL for anonymous) and put
 * the address of its first element in *out.  init NULL: zero-filled.
 * Errors: IPX_EINVAL (NULL seg/out, NULL name for a named or unique
 * object, a name for an anonymous one, bad kind, elem_size 0, align not a
 * power of two or above IPX_OBJECT_MAX_ALIGN), IPX_EBADNAME, IPX_EEXIST
 * (that name is taken, finished or under construction), IPX_ENOMEM,
 * IPX_EREADONLY, IPX_EBUSY (called from an ipx_object_foreach callback),
 * IPX_ECORRUPT, lock errors, or the init callback's non-zero result. */
IPX_API int ipx_object_construct(ipx_segment_t *seg, ipx_object_kind_t kind,
                                 const char *name, size_t elem_size,
                                 size_t align, size_t count,
                                 ipx_object_init_fn init, void *ctx,
                                 void **out);

/* Find the named or unique object `name`: *out gets its address, *count
 * (may be NULL) its element count.  elem_size 0 accepts any element size;
 * otherwise it must match the object's.  Objects under construction are
 * not found.  Errors: IPX_EINVAL (NULL seg/name/out, kind anonymous),
 * IPX_EBADNAME, IPX_ENOTFOUND, IPX_EWRONGKIND (the object's element size
 * differs from elem_size), IPX_EBUSY (read-only opener: no quiet moment),
 * IPX_ECORRUPT, lock errors. */
IPX_API int ipx_object_find(ipx_segment_t *seg, ipx_object_kind_t kind,
                            const char *name, size_t elem_size, void **out,
                            size_t *count);

/* Find `name`, or construct it if absent, atomically: of any number of
 * racing callers exactly one constructs, and all get the same object.
 * *count (may be NULL) gets the found object's count; *constructed (may be
 * NULL) 1 if this call constructed it.  A found object whose element size
 * differs from elem_size is IPX_EWRONGKIND.  A read-only opener finds or
 * fails with IPX_EREADONLY.  Errors as construct and find; IPX_EBUSY also
 * when called from the object's own init callback. */
IPX_API int ipx_object_find_or_construct(
    ipx_segment_t *seg, ipx_object_kind_t kind, const char *name,
    size_t elem_size, size_t align, size_t count, ipx_object_init_fn init,
    void *ctx, void **out, size_t *count_out, int *constructed);

/* Destroy the named or unique object `name` and free its memory.
 * elem_size 0 accepts any element size.  No destructor runs: release what
 * the elements own before.  Errors: IPX_EINVAL, IPX_EBADNAME,
 * IPX_ENOTFOUND, IPX_EWRONGKIND, IPX_EREADONLY, IPX_EBUSY (inside an
 * ipx_object_foreach callback), IPX_ECORRUPT, lock errors. */
IPX_API int ipx_object_destroy(ipx_segment_t *seg, ipx_object_kind_t kind,
                               const char *name, size_t elem_size);

/* Destroy the object (of any kind) whose first element is at `addr`.
 * Errors: IPX_EINVAL (NULL), IPX_ERANGE (addr outside the segment),
 * IPX_ENOTFOUND (not the address of an object of this segment),
 * IPX_EREADONLY, IPX_EBUSY, IPX_ECORRUPT, lock errors. */
IPX_API int ipx_object_destroy_ptr(ipx_segment_t *seg, void *addr);

/* Describe the object whose first element is at `addr` (Boost:
 * get_instance_name / get_instance_length / get_instance_type).
 * Errors: IPX_EINVAL, IPX_ERANGE, IPX_ENOTFOUND, IPX_EBUSY (read-only),
 * IPX_ECORRUPT, lock errors. */
IPX_API int ipx_object_query(ipx_segment_t *seg, const void *addr,
                             ipx_object_info_t *info);

/* Bits for ipx_object_foreach's `kinds`. */
#define IPX_OBJECT_NAMED_BIT (1u << IPX_OBJECT_NAMED)
#define IPX_OBJECT_UNIQUE_BIT (1u << IPX_OBJECT_UNIQUE)

/* Called once per object; non-zero stops the walk and is returned. */
typedef int (*ipx_object_visit_fn)(void *ctx, const ipx_object_info_t *info);

/* Visit every finished named and/or unique object (kinds: the bits above;
 * anonymous objects are not indexed), in no particular order.
 * Read-write openers: the walk holds the segment lock, so it sees one
 * consistent state and the addresses stay valid while `fn` runs; `fn` may
 * read and write the objects and allocate, but constructing or destroying
 * a named or unique object from `fn` fails with IPX_EBUSY.  Read-only
 * openers: the walk first takes a consistent snapshot without the lock,
 * then calls `fn` for each entry; objects may change after the snapshot.
 * Errors: IPX_EINVAL (NULL seg/fn, kinds without a valid bit), -ENOMEM
 * (read-only snapshot), IPX_EBUSY, IPX_ECORRUPT, lock errors, or fn's
 * non-zero result. */
IPX_API int ipx_object_foreach(ipx_segment_t *seg, unsigned kinds,
                               ipx_object_visit_fn fn, void *ctx);

/* Number of finished named (IPX_OBJECT_NAMED) or unique objects.
 * Errors: IPX_EINVAL (NULL, anonymous), IPX_EBUSY (read-only),
 * IPX_ECORRUPT, lock errors.  ipx_segment_named_count() gives the same
 * count for IPX_OBJECT_NAMED. */
IPX_API int ipx_object_count(ipx_segment_t *seg, ipx_object_kind_t kind,
                             uint64_t *out);

/* Make room in the name index for `n` named plus unique objects in all,
 * so constructing them never grows the index (Boost:
 * reserve_named_objects).  Errors: IPX_EINVAL, IPX_ENOMEM, IPX_EREADONLY,
 * IPX_EBUSY (inside foreach), IPX_ECORRUPT, lock errors. */
IPX_API int ipx_object_reserve(ipx_segment_t *seg, uint64_t n);

/* Run fn(ctx) while holding the segment lock (Boost: atomic_func); returns
 * fn's result.  fn may allocate, construct, find and destroy (the lock is
 * recursive).  A process killed inside fn leaves the objects usable (but
 * what fn itself half did is fn's business).  Errors: IPX_EINVAL (NULL),
 * IPX_EREADONLY, IPX_ECORRUPT, lock errors. */
IPX_API int ipx_segment_atomic_func(ipx_segment_t *seg, int (*fn)(void *ctx),
                                    void *ctx);

/* ---- typed macros ----------------------------------------------------- *
 * T is a complete object type, pp a T ** (checked at compile time), n an
 * element count.  Each returns the int of the function it calls.
 *   IPX_CONSTRUCT(seg, T, name, n, pp)              zero-filled
 *   IPX_CONSTRUCT_INIT(seg, T, name, n, fn, ctx, pp)
 *   IPX_FIND(seg, T, name, pp, count_p)             count_p may be NULL
 *   IPX_FIND_OR_CONSTRUCT(seg, T, name, n, pp)
 *   IPX_FIND_OR_CONSTRUCT_INIT(seg, T, name, n, fn, ctx, pp)
 *   IPX_DESTROY(seg, T, name)
 *   IPX_UNIQUE_CONSTRUCT(seg, T, n, pp), IPX_UNIQUE_FIND(seg, T, pp, count_p),
 *   IPX_UNIQUE_FIND_OR_CONSTRUCT(seg, T, n, pp), IPX_UNIQUE_DESTROY(seg, T)
 *                      the unique instance's name is the spelling of T
 *                      ("struct point"): spell T the same everywhere
 *   IPX_ANONYMOUS_CONSTRUCT(seg, T, n, pp) */
#if defined(__cplusplus)
#define IPX__ALIGNOF(T) alignof(T)
#else
#define IPX__ALIGNOF(T) _Alignof(T)
#endif
/* Compile-time check that pp is a T ** (unevaluated). */
#define IPX__PP(T, pp) ((void)sizeof(*(pp) = (T *)0), (void **)(void *)(pp))

#define IPX_CONSTRUCT_INIT(seg, T, name, n, fn, ctx, pp)                     \
  ipx_object_construct((seg), IPX_OBJECT_NAMED, (name), sizeof(T),            \
                       IPX__ALIGNOF(T), (n), (fn), (ctx), IPX__PP(T, pp))
#define IPX_CONSTRUCT(seg, T, name, n, pp) \
  IPX_CONSTRUCT_INIT(seg, T, name, n, NULL, NULL, pp)
#define IPX_FIND(seg, T, name, pp, count_p)                                  \
  ipx_object_find((seg), IPX_OBJECT_NAMED, (name), sizeof(T),                 \
                  IPX__PP(T, pp), (count_p))
#define IPX_FIND_OR_CONSTRUCT_INIT(seg, T, name, n, fn, ctx, pp)             \
  ipx_object_find_or_construct((seg), IPX_OBJECT_NAMED, (name), sizeof(T),    \
                               IPX__ALIGNOF(T), (n), (fn), (ctx),             \
                               IPX__PP(T, pp), NULL, NULL)
#define IPX_FIND_OR_CONSTRUCT(seg, T, name, n, pp) \
  IPX_FIND_OR_CONSTRUCT_INIT(seg, T, name, n, NULL, NULL, pp)
#define IPX_DESTROY(seg, T, name) \
  ipx_object_destroy((seg), IPX_OBJECT_NAMED, (name), sizeof(T))

#define IPX_UNIQUE_CONSTRUCT(seg, T, n, pp)                                  \
  ipx_object_construct((seg), IPX_OBJECT_UNIQUE, #T, sizeof(T),               \
                       IPX__ALIGNOF(T), (n), NULL, NULL, IPX__PP(T, pp))
#define IPX_UNIQUE_FIND(seg, T, pp, count_p)                                 \
  ipx_object_find((seg), IPX_OBJECT_UNIQUE, #T, sizeof(T), IPX__PP(T, pp),    \
                  (count_p))
#define IPX_UNIQUE_FIND_OR_CONSTRUCT(seg, T, n, pp)                          \
  ipx_object_find_or_construct((seg), IPX_OBJECT_UNIQUE, #T, sizeof(T),       \
                               IPX__ALIGNOF(T), (n), NULL, NULL,              \
                               IPX__PP(T, pp), NULL, NULL)
#define IPX_UNIQUE_DESTROY(seg, T) \
  ipx_object_destroy((seg), IPX_OBJECT_UNIQUE, #T, sizeof(T))

#define IPX_ANONYMOUS_CONSTRUCT(seg, T, n, pp)                               \
  ipx_object_construct((seg), IPX_OBJECT_ANONYMOUS, NULL, sizeof(T),          \
                       IPX__ALIGNOF(T), (n), NULL, NULL, IPX__PP(T, pp))

IPX_EXTERN_C_END

#endif /* IPX_OBJECTS_H */
