/* ipx/offset_ptr.h - pointers that stay valid wherever memory is mapped
 * (Boost: offset_ptr).  Header-only.
 *
 * A shared memory object is mapped at a different address in each process,
 * so a raw pointer stored in it means nothing to the others.  An offset
 * pointer stores the distance from its own address to its target; any
 * process that maps the whole structure, wherever, resolves it correctly.
 *
 * Representation: one 64-bit word (8 bytes, aligned to 8 on every ABI,
 * 32-bit ones included, so processes of either width could share it):
 *
 *   bits  0..47  signed distance in bytes from the pointer to its target
 *   bits 48..56  bits 3..11 of the pointer's own address ("position tag")
 *   bit  57      1 if the tag is valid (every ipx_offset_ptr_set writes it)
 *   bits 58..63  0
 *
 * Null is distance 1 (like Boost): distance 0 would be "points at itself",
 * which self-referencing structures (an empty circular list head) need,
 * while distance 1 would point inside the pointer itself.
 *
 * THE RULES
 *  - No raw pointers in shared memory, and no function pointers at all
 *    (code sits at different addresses in different programs): use offset
 *    pointers, or plain offsets from the start of the segment.
 *  - Both the pointer and its target must lie in the same mapping; the
 *    distance must be below 2^47 bytes.
 *  - Copying a struct that holds offset pointers to another address
 *    (assignment, memcpy, realloc) silently makes them point elsewhere:
 *    the distance is copied, not the target.  Copy pointers one by one
 *    with ipx_offset_ptr_copy() / IPX_OPTR_COPY(), which re-aims them.
 *  - Zeroed memory is NOT a null pointer: offset 0 means "points to
 *    itself".  Set every pointer (ipx_offset_ptr_set_null) before use, or
 *    initialise static ones with IPX_OFFSET_PTR_NULL_INIT.
 *
 * DEBUG MODE (define IPX_OFFSET_PTR_DEBUG before including this header)
 * ipx_offset_ptr_get() then checks the position tag and executes a trap
 * instruction (SIGILL) when the pointer was moved since it was set, or was
 * never set (zeroed memory).  Mappings start at page boundaries, so the
 * low 12 bits of an address are the same in every process that maps the
 * object: mapping elsewhere passes, and a copy is caught unless it moved
 * the pointer by a multiple of 4096 bytes.  A null pointer is never
 * checked (a copied null is still null).  The layout is identical in both
 * modes, so checked and unchecked programs may share a segment.  Cost:
 * about four extra instructions and a well-predicted branch per get.
 * ipx_offset_ptr_check() performs the same check in any mode and returns
 * an error instead of trapping.
 *
 * Thread safety: these are plain loads and stores of one aligned 64-bit
 * word (atomic on 64-bit targets, but with no ordering): synchronise
 * concurrent writers and readers with a lock, as for any shared data. */
#ifndef IPX_OFFSET_PTR_H
#define IPX_OFFSET_PTR_H

#include "common.h"
#include "error.h"

IPX_EXTERN_C_BEGIN

typedef struct ipx_offset_ptr {
  int64_t raw __attribute__((aligned(8))); /* see the layout above */
} ipx_offset_ptr_t;

IPX_STATIC_ASSERT(sizeof(ipx_offset_ptr_t) == 8, "offset pointer is 8 bytes");

/* A null offset pointer as a static initialiser (valid at any address). */
#define IPX_OFFSET_PTR_NULL_INIT {1}

#define IPX__OPTR_DIST_BITS 48
#define IPX__OPTR_TAG_SHIFT 48
#define IPX__OPTR_TAG_MASK UINT64_C(0x1ff)
#define IPX__OPTR_TAG_VALID (UINT64_C(1) << 57)

/* The distance stored in the low 48 bits, sign-extended. */
static inline int64_t ipx__optr_dist(const ipx_offset_ptr_t *p) {
  return (int64_t)((uint64_t)p->raw << (64 - IPX__OPTR_DIST_BITS)) >>
         (64 - IPX__OPTR_DIST_BITS);
}

/* Tag and valid bit for a pointer living at `self`. */
static inline uint64_t ipx__optr_tag(const void *self) {
  return ((((uint64_t)(uintptr_t)self >> 3) & IPX__OPTR_TAG_MASK)
          << IPX__OPTR_TAG_SHIFT) |
         IPX__OPTR_TAG_VALID;
}

/* 1 if p is null.  Thread-safe as a plain read. */
static inline int ipx_offset_ptr_is_null(const ipx_offset_ptr_t *p) {
  return ipx__optr_dist(p) == 1;
}

/* The target, or NULL; no check. */
static inline void *ipx_offset_ptr_get_unchecked(const ipx_offset_ptr_t *p) {
  int64_t d = ipx__optr_dist(p);
  return d == 1 ? NULL : (void *)((uintptr_t)p + (uintptr_t)d);
}

/* 0 if p may be trusted: null, set at this very position, or written
 * without a tag (IPX_OFFSET_PTR_NULL_INIT).  IPX_ECORRUPT if it was moved
 * since it was set, or never set (zero).  Works in any mode. */
static inline int ipx_offset_ptr_check(const ipx_offset_ptr_t *p) {
  uint64_t raw = (uint64_t)p->raw;
  if (ipx__optr_dist(p) == 1) return 0;
  if (raw == 0) return IPX_ECORRUPT;
  if (!(raw & IPX__OPTR_TAG_VALID)) return 0;
  uint64_t tag = raw & ((IPX__OPTR_TAG_MASK << IPX__OPTR_TAG_SHIFT) |
                        IPX__OPTR_TAG_VALID);
  return tag == ipx__optr_tag(p) ? 0 : IPX_ECORRUPT;
}

/* The target, or NULL; traps if ipx_offset_ptr_check() fails. */
static inline void *ipx_offset_ptr_get_checked(const ipx_offset_ptr_t *p) {
  if (ipx_offset_ptr_check(p) != 0) __builtin_trap();
  return ipx_offset_ptr_get_unchecked(p);
}

/* The target, or NULL (checked in debug mode). */
static inline void *ipx_offset_ptr_get(const ipx_offset_ptr_t *p) {
#ifdef IPX_OFFSET_PTR_DEBUG
  return ipx_offset_ptr_get_checked(p);
#else
  return ipx_offset_ptr_get_unchecked(p);
#endif
}

/* Make p null. */
static inline void ipx_offset_ptr_set_null(ipx_offset_ptr_t *p) {
  p->raw = (int64_t)(ipx__optr_tag(p) | 1u);
}

/* Point p at target (NULL makes it null).  target must lie in the same
 * mapping as p and must not be the byte right after p's first byte. */
static inline void ipx_offset_ptr_set(ipx_offset_ptr_t *p,
                                      const void *target) {
  uint64_t d = target ? (uint64_t)((uintptr_t)target - (uintptr_t)p) : 1u;
#if UINTPTR_MAX == UINT32_MAX
  d = (uint64_t)(int64_t)(int32_t)(uint32_t)d; /* sign-extend distances */
#endif
  p->raw = (int64_t)((d & ((UINT64_C(1) << IPX__OPTR_DIST_BITS) - 1)) |
                     ipx__optr_tag(p));
}

/* Point dst where src points (the right way to copy an offset pointer). */
static inline void ipx_offset_ptr_copy(ipx_offset_ptr_t *dst,
                                       const ipx_offset_ptr_t *src) {
  ipx_offset_ptr_set(dst, ipx_offset_ptr_get(src));
}

/* Move p by `bytes` (a null pointer stays null). */
static inline void ipx_offset_ptr_add(ipx_offset_ptr_t *p, ptrdiff_t bytes) {
  char *t = (char *)ipx_offset_ptr_get(p);
  if (t) ipx_offset_ptr_set(p, t + bytes);
}

/* 1 if a and b point to the same target (or are both null). */
static inline int ipx_offset_ptr_eq(const ipx_offset_ptr_t *a,
                                    const ipx_offset_ptr_t *b) {
  return ipx_offset_ptr_get(a) == ipx_offset_ptr_get(b);
}

/* ---- typed form ----------------------------------------------------------
 * IPX_OFFSET_PTR(T) is the type "offset pointer to T", 8 bytes like the raw
 * one.  It is a union whose `ipx_type_` member only carries T for the
 * macros (never read or written); `raw` is the pointer.  Declare members as
 * `IPX_OFFSET_PTR(struct node) next;` or typedef it once.
 *
 *   IPX_OPTR_GET(&n->next)          the T*, or NULL
 *   IPX_OPTR_SET(&n->next, t)       t must be a T* (checked by the compiler)
 *   IPX_OPTR_SET_NULL(&n->next)
 *   IPX_OPTR_IS_NULL(&n->next)
 *   IPX_OPTR_COPY(&a->next, &b->next)
 *   IPX_OPTR_ADD(&p, n)             move by n elements of T
 *
 * Each macro evaluates its arguments once. */
#define IPX_OFFSET_PTR(T)   \
  union {                   \
    ipx_offset_ptr_t raw;   \
    T *ipx_type_;           \
  }

#define IPX_OPTR_GET(p) \
  ((__typeof__((p)->ipx_type_))ipx_offset_ptr_get(&(p)->raw))
#define IPX_OPTR_SET(p, target) \
  ipx_offset_ptr_set(&(p)->raw, (1 ? (target) : (p)->ipx_type_))
#define IPX_OPTR_SET_NULL(p) ipx_offset_ptr_set_null(&(p)->raw)
#define IPX_OPTR_IS_NULL(p) ipx_offset_ptr_is_null(&(p)->raw)
#define IPX_OPTR_COPY(dst, src) IPX_OPTR_SET(dst, IPX_OPTR_GET(src))
#define IPX_OPTR_ADD(p, n) \
  ipx_offset_ptr_add(&(p)->raw, (ptrdiff_t)(n) * (ptrdiff_t)sizeof(*(p)->ipx_type_))

IPX_EXTERN_C_END

#endif /* IPX_OFFSET_PTR_H */
