/* Robust ownership of 32-bit lock words: the kernel marks a word whose
 * owner thread dies, by joining glibc's per-thread robust futex list.
 *
 * How it works.  At thread (and process) death the kernel walks the list
 * registered with set_robust_list(); for each entry E it reads the 32-bit
 * word at E + futex_offset and, if the word's low 30 bits equal the dying
 * thread's TID, replaces it with FUTEX_OWNER_DIED | (its FUTEX_WAITERS bit)
 * and wakes one waiter when FUTEX_WAITERS was set.  It does the same for
 * the single `list_op_pending` entry (an operation in flight), and when that
 * word is exactly 0 it wakes one waiter (an unlock that died between
 * release and wake).
 *
 * glibc registers one list per thread for its own robust pthread mutexes and
 * nobody else may call set_robust_list (that would hide glibc's mutexes from
 * the kernel).  So ipx puts its entries on glibc's list, laid out exactly as
 * glibc lays out a robust pthread_mutex_t, and links them exactly as glibc's
 * ENQUEUE_MUTEX / DEQUEUE_MUTEX do, so both kinds of entries interleave on
 * one list:
 *
 *     word + 0   uint32_t lock word: owner TID | FUTEX_WAITERS | OWNER_DIED
 *     word + 24  prev: address of the previous entry's `next` field
 *     word + 32  next: address of the next entry's `next` field, or of the
 *                list head when last (the kernel follows these)
 *
 * futex_offset is therefore -32, which is what glibc registers on x86_64 and
 * aarch64 (the generic 64-bit pthread mutex has the same offsets);
 * ipx__robust_self() checks the registered value and fails with
 * IPX_ENOTSUP if it differs, rather than corrupting memory.
 *
 * The prev/next fields are raw addresses of the owner thread's address
 * space stored in shared memory: the one forced exception to "offsets only".
 * Only the owner thread (while it holds the word) and the kernel (at its
 * death) read them; another process never follows them.
 *
 * Rules for a user of this API (a lock kind built on robust words):
 *  - the word is owned when its TID bits hold the owner's TID; bits 30 and
 *    31 are the kernel's FUTEX_OWNER_DIED and FUTEX_WAITERS;
 *  - ipx__robust_pending() before the atomic operation that may acquire the
 *    word; then ipx__robust_enqueue() once acquired (it also clears the
 *    pending slot) or ipx__robust_cancel() if not;
 *  - ipx__robust_release_begin() before the atomic operation that releases
 *    the word, ipx__robust_release_end() after it (and after any wake);
 *  - a word whose TID bits are 0 and whose FUTEX_OWNER_DIED bit is set was
 *    owned by a thread that died (ipx__robust_owner_died());
 *  - memory holding an owned word must stay mapped and must not be reused
 *    until it is released: the kernel writes into it when the owner dies,
 *    and a list entry that cannot be read ends the kernel's walk (later
 *    entries, glibc's included, are then never marked);
 *  - not async-signal-safe (neither is glibc's own list handling): a signal
 *    handler must not take a robust lock the interrupted thread could be
 *    taking or releasing;
 *  - the kernel walks at most 2048 entries per thread (ROBUST_LIST_LIMIT):
 *    locks held beyond that many at once are not marked at death. */
#ifndef IPX_SYNC_ROBUST_H
#define IPX_SYNC_ROBUST_H

#include <linux/futex.h>
#include <stddef.h>
#include <stdint.h>

#define IPX__FUTEX_WAITERS 0x80000000u
#define IPX__FUTEX_OWNER_DIED 0x40000000u
#define IPX__FUTEX_TID_MASK 0x3fffffffu

/* Offsets of the list node relative to the lock word. */
#define IPX__ROBUST_PREV_OFFSET 24
#define IPX__ROBUST_NEXT_OFFSET 32
/* The futex_offset glibc registers (word - next). */
#define IPX__ROBUST_FUTEX_OFFSET (-32L)

/* Put in a struct holding a robust word to check its layout. */
#define IPX__ROBUST_LAYOUT_CHECK(type, word, prev, next)                      \
  _Static_assert(offsetof(type, prev) - offsetof(type, word) ==               \
                         IPX__ROBUST_PREV_OFFSET &&                           \
                     offsetof(type, next) - offsetof(type, word) ==           \
                         IPX__ROBUST_NEXT_OFFSET,                             \
                 #type ": robust list node must sit at word+24/word+32")

/* The calling thread's robust context. */
typedef struct ipx__robust_self {
  struct robust_list_head *head; /* glibc's head for this thread */
  uint32_t tid;                  /* 0 until initialised (and after fork) */
} ipx__robust_self_t;

/* initial-exec: a global-dynamic TLS access would cost a __tls_get_addr
 * call on every lock from the shared library. */
extern __thread ipx__robust_self_t ipx__robust_tls
    __attribute__((tls_model("initial-exec")));

/* Slow path of ipx__robust_self: fetch the head with get_robust_list, check
 * futex_offset, cache the TID.  0, IPX_ENOTSUP (no robust list or another
 * layout), or -errno. */
int ipx__robust_init_thread(void);

/* The calling thread's context, initialised on first use.  0 on success,
 * IPX_ENOTSUP or -errno.  The TID cache is reset in a fork child. */
static inline int ipx__robust_self(ipx__robust_self_t **out) {
  if (__builtin_expect(ipx__robust_tls.tid == 0, 0)) {
    int r = ipx__robust_init_thread();
    if (r != 0) return r;
  }
  *out = &ipx__robust_tls;
  return 0;
}

#define IPX__ROBUST_ENTRY(word) ((char *)(word) + IPX__ROBUST_NEXT_OFFSET)
/* The kernel reads the list only while the thread is stopped (at its
 * death), so only the compiler's ordering of the thread's own stores
 * matters, exactly as in glibc. */
#define IPX__ROBUST_BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)

/* About to try to acquire `word`. */
static inline void ipx__robust_pending(ipx__robust_self_t *s, uint32_t *word) {
  s->head->list_op_pending = (struct robust_list *)IPX__ROBUST_ENTRY(word);
  IPX__ROBUST_BARRIER();
}

/* The attempt announced by ipx__robust_pending failed. */
static inline void ipx__robust_cancel(ipx__robust_self_t *s) {
  IPX__ROBUST_BARRIER();
  s->head->list_op_pending = NULL;
}

/* `word` was acquired: link it at the front of the thread's list (as
 * glibc's ENQUEUE_MUTEX_BOTH) and clear the pending slot. */
static inline void ipx__robust_enqueue(ipx__robust_self_t *s, uint32_t *word) {
  struct robust_list_head *h = s->head;
  char *entry = IPX__ROBUST_ENTRY(word);
  char *first = (char *)h->list.next;
  /* first's prev field; for the empty list this is glibc's robust_prev,
   * which sits just before the head for exactly this purpose. */
  *(void **)(((uintptr_t)first & ~(uintptr_t)1) - 8) = entry;
  /* Two separate 8-byte stores, never one 16-byte vector store (GCC's SLP
   * vectorizer merges them at -O3): the unlock reads each half back with
   * an 8-byte load, and a load that only partly overlaps a wider store is
   * not forwarded from it (measured on AMD EPYC: 9.5 ns per uncontended
   * lock + unlock instead of 4.5 ns). */
  __atomic_store_n((void **)entry, (void *)first, __ATOMIC_RELAXED);
  __atomic_store_n((void **)(entry - 8), (void *)h, __ATOMIC_RELAXED);
  IPX__ROBUST_BARRIER();
  h->list.next = (struct robust_list *)entry;
  IPX__ROBUST_BARRIER();
  h->list_op_pending = NULL;
}

/* About to release `word`: announce it and unlink it (as glibc's
 * DEQUEUE_MUTEX).  The word itself is still owned. */
static inline void ipx__robust_release_begin(ipx__robust_self_t *s,
                                             uint32_t *word) {
  char *entry = IPX__ROBUST_ENTRY(word);
  s->head->list_op_pending = (struct robust_list *)entry;
  IPX__ROBUST_BARRIER();
  char *next = *(char **)entry;
  char *prev = *(char **)(entry - 8);
  *(void **)(((uintptr_t)next & ~(uintptr_t)1) - 8) = prev;
  *(void **)((uintptr_t)prev & ~(uintptr_t)1) = next;
  IPX__ROBUST_BARRIER();
  *(void **)(entry - 8) = NULL;
  *(void **)entry = NULL;
}

/* The release announced by ipx__robust_release_begin is done. */
static inline void ipx__robust_release_end(ipx__robust_self_t *s) {
  IPX__ROBUST_BARRIER();
  s->head->list_op_pending = NULL;
}

/* How far ipx__robust_holds() walks the list. */
#define IPX__ROBUST_HOLDS_WALK 32
/* The kernel stops reading a robust list after this many entries
 * (ROBUST_LIST_LIMIT): no thread usefully holds more robust locks. */
#define IPX__ROBUST_LIST_LIMIT 2048

/* Whether `entry` is on the calling thread's list within its first `limit`
 * entries.  Reads only the list's own links, which are fields of locks this
 * thread holds and therefore mapped (see the rules above): `entry` itself
 * is never dereferenced, so any value is safe. */
static inline int ipx__robust_listed(const ipx__robust_self_t *s,
                                     uintptr_t entry, int limit) {
  const uintptr_t end = (uintptr_t)s->head;
  uintptr_t e = (uintptr_t)s->head->list.next & ~(uintptr_t)1;
  for (int i = 0; i < limit && e != end && e != 0; i++) {
    if (e == entry) return 1;
    e = (uintptr_t)(*(void *const *)e) & ~(uintptr_t)1;
  }
  return 0;
}

/* Whether `addr` is the lock word of an entry on the calling thread's list,
 * looking at no more than the first IPX__ROBUST_HOLDS_WALK entries (0 when
 * not found within them); any value of `addr` is safe. */
static inline int ipx__robust_holds(const ipx__robust_self_t *s,
                                    uintptr_t addr) {
  return ipx__robust_listed(s, addr + IPX__ROBUST_NEXT_OFFSET,
                            IPX__ROBUST_HOLDS_WALK);
}

/* Whether lock word `word`, which holds the caller's TID, is really the
 * caller's: linked on its list, at this address or, for a lock mapped
 * twice in the process, at another address of the same memory (an entry
 * whose word and both links read the same as ours: two nodes of one list
 * never share both links).  A word can hold the caller's TID without being
 * its hold, by damage or from a thread of another boot or PID namespace
 * that had the same number; trusting it would unlink a node that was never
 * linked (a crash) or release another thread's lock.  The usual case, the
 * lock taken last, costs one compare. */
static inline int ipx__robust_linked(const ipx__robust_self_t *s,
                                     const uint32_t *word) {
  const char *entry = IPX__ROBUST_ENTRY(word);
  const uintptr_t end = (uintptr_t)s->head;
  uintptr_t e = (uintptr_t)s->head->list.next & ~(uintptr_t)1;
  if (e == (uintptr_t)entry) return 1;
  void *next = *(void *const *)entry, *prev = *(void *const *)(entry - 8);
  for (int i = 0; i < IPX__ROBUST_LIST_LIMIT && e != end && e != 0; i++) {
    const char *x = (const char *)e;
    if (x == entry ||
        (*(void *const *)x == next && *(void *const *)(x - 8) == prev &&
         *(const uint32_t *)(x - IPX__ROBUST_NEXT_OFFSET) == *word))
      return 1;
    e = (uintptr_t)(*(void *const *)x) & ~(uintptr_t)1;
  }
  return 0;
}

/* Whether a lock word value says its owner died (and nobody has taken it
 * since). */
static inline int ipx__robust_owner_died(uint32_t v) {
  return (v & (IPX__FUTEX_OWNER_DIED | IPX__FUTEX_TID_MASK)) ==
         IPX__FUTEX_OWNER_DIED;
}

#endif /* IPX_SYNC_ROBUST_H */
