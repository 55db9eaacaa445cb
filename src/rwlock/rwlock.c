/* Robust sharable and upgradable mutexes (ipx/rwlock.h).
 *
 * Design (docs/rwlock.md has the long form, docs/FORMAT.md the bytes):
 *
 *  - `owner` is a robust word (sync/robust.h): the TID of the one thread
 *    holding exclusive or upgradable rights, on that thread's robust list.
 *    Writers and upgraders serialise on it like on a robust mutex.
 *  - `state` holds mode flags and is written only by the owner-word holder
 *    (or by whoever takes over a dead owner word).  XWANT tells readers to
 *    stay out: it is set from the moment a writer starts draining readers.
 *  - Each sharable hold is a reader slot: a robust word holding the reader's
 *    TID.  There is no reader count; the slots are the truth, so a reader
 *    that dies (the kernel sets OWNER_DIED in its slot) leaves nothing to
 *    repair: the slot just stops counting and is reused.
 *  - Reader entry and writer drain are a Dekker pair, all seq_cst: a reader
 *    publishes its slot (and raises `hwm`) then reads `state`; a writer
 *    publishes XWANT then reads `hwm` and the slots.  One of them sees the
 *    other; a reader that sees XWANT withdraws its slot.
 *  - Readers blocked by a writer sleep on the owner word (setting its
 *    FUTEX_WAITERS bit), so the kernel wakes them when the writer dies; a
 *    writer sleeps on a reader's slot word the same way, so a reader's
 *    death wakes it.
 *  - Only slots below `hwm` (raised by readers, never lowered) are scanned,
 *    so a lock used by few readers at once costs a writer few loads. */
#include "ipx/rwlock.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "ipx/error.h"
#include "ipx/time.h"
#include "os/futex.h"
#include "sync/robust.h"
#include "sync/tsan.h"

/* "IRS" / "IRU" and the layout version in the low byte. */
#define RW_MAGIC_SHARABLE 0x49525301u
#define RW_MAGIC_UPGRADABLE 0x49525501u
#define RW_DESTROYED 0x49524400u

enum {
  ST_XWANT = 1u,          /* exclusive wanted or held: readers stay out */
  ST_XHELD = 2u,          /* exclusive granted (readers drained) */
  ST_UPG = 4u,            /* owner holds upgradable rights */
  ST_VIA_SHARED = 8u,     /* exclusive granted to a sharable call (recovery) */
  ST_INCONSISTENT = 16u,  /* a holder died; not yet marked consistent */
  ST_NOTREC = 32u         /* released while inconsistent: unusable */
};
#define ST_MODE (ST_XWANT | ST_XHELD | ST_UPG | ST_VIA_SHARED)

#define SLOTS IPX_RWLOCK_READER_SLOTS
_Static_assert((SLOTS & (SLOTS - 1)) == 0, "slot count is a power of two");

/* Spins before sleeping: readers' critical sections are short, and a
 * futex round trip costs microseconds. */
#define SPIN 100

typedef struct rw_slot {
  uint32_t word; /* reader TID | FUTEX_WAITERS | FUTEX_OWNER_DIED, or 0 */
  uint32_t pad0[5];
  uint64_t prev; /* robust list node (owner-local addresses) */
  uint64_t next;
  uint64_t pad1[3];
} rw_slot_t;

typedef struct ipx__rw {
  uint32_t owner; /* exclusive/upgradable holder TID | WAITERS | OWNER_DIED */
  uint32_t magic;
  uint32_t state; /* ST_* */
  uint32_t hwm;   /* slots [0, hwm) may be in use */
  uint32_t pad0[2];
  uint64_t prev; /* robust list node of `owner` */
  uint64_t next;
  uint64_t pad1[3];
  rw_slot_t slot[SLOTS];
} ipx__rw_t;

_Static_assert(sizeof(rw_slot_t) == 64, "reader slot is one cache line");
_Static_assert(offsetof(ipx__rw_t, slot) == 64, "slots follow the header");
_Static_assert(sizeof(ipx__rw_t) == IPX_SHARABLE_MUTEX_SIZE, "rw-lock size");
_Static_assert(sizeof(ipx__rw_t) == IPX_UPGRADABLE_MUTEX_SIZE, "rw-lock size");
_Static_assert(_Alignof(ipx__rw_t) == 8, "rw-lock alignment");
_Static_assert(_Alignof(ipx_sharable_mutex_t) == 8 &&
                   _Alignof(ipx_upgradable_mutex_t) == 8,
               "public rw-lock alignment");
IPX__ROBUST_LAYOUT_CHECK(ipx__rw_t, owner, prev, next);
IPX__ROBUST_LAYOUT_CHECK(rw_slot_t, word, prev, next);

#define W_WAITERS IPX__FUTEX_WAITERS
#define W_DIED IPX__FUTEX_OWNER_DIED
#define W_TID IPX__FUTEX_TID_MASK

/* Where this thread last held a share, to find its slot again at once. */
static __thread struct {
  const ipx__rw_t *rw;
  uint32_t slot;
} rd_hint __attribute__((tls_model("initial-exec")));

static inline uint32_t ld(const uint32_t *p) {
  return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline void st_store(ipx__rw_t *rw, uint32_t v) {
  __atomic_store_n(&rw->state, v, __ATOMIC_SEQ_CST);
}
static inline int cas(uint32_t *p, uint32_t *expected, uint32_t v) {
  return __atomic_compare_exchange_n(p, expected, v, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST);
}

static int get(void *m, uint32_t magic, ipx__rw_t **rw,
               ipx__robust_self_t **self) {
  if (!m) return IPX_EINVAL;
  *rw = m;
  uint32_t mg = __atomic_load_n(&(*rw)->magic, __ATOMIC_ACQUIRE);
  if (mg != magic)
    return mg == 0 || mg == RW_DESTROYED || mg == RW_MAGIC_SHARABLE ||
                   mg == RW_MAGIC_UPGRADABLE
               ? IPX_EINVAL
               : IPX_ECORRUPT;
  return ipx__robust_self(self);
}

/* Set FUTEX_WAITERS on *w (holding v) and sleep while it is unchanged.
 * 0 (re-examine) or IPX_ETIMEDOUT. */
static int sleep_on(uint32_t *w, uint32_t v, uint64_t deadline) {
  if (!(v & W_WAITERS)) {
    uint32_t e = v;
    if (!cas(w, &e, v | W_WAITERS)) return 0;
    v |= W_WAITERS;
  }
  return ipx__futex_wait(w, v, deadline) == -ETIMEDOUT ? IPX_ETIMEDOUT : 0;
}

/* A waiter giving up: if the owner word is dead, the kernel's single
 * wake-up may have been meant for us; pass it on. */
static void leave_owner_wait(ipx__rw_t *rw) {
  uint32_t o = ld(&rw->owner);
  if ((o & W_TID) == 0 && (o & W_WAITERS)) ipx__futex_wake(&rw->owner, INT_MAX);
}

/* Wake everyone sleeping on the owner word (readers waiting for XWANT to
 * clear, writers waiting for the word); those still blocked sleep again. */
static void wake_owner_waiters(ipx__rw_t *rw) {
  uint32_t o = __atomic_fetch_and(&rw->owner, ~W_WAITERS, __ATOMIC_SEQ_CST);
  if (o & W_WAITERS) ipx__futex_wake(&rw->owner, INT_MAX);
}

/* Whether lock word w (value v, just read) is the calling thread's hold:
 * its TID, and linked on its list (robust.h: a word can hold the TID of
 * a thread of another boot or PID namespace, or be damaged into it). */
static int mine(const uint32_t *w, const ipx__robust_self_t *s, uint32_t v) {
  return (v & W_TID) == s->tid && ipx__robust_linked(s, w);
}

/* ---- the owner word ------------------------------------------------------ */

static int owner_acquire(ipx__rw_t *rw, ipx__robust_self_t *s, int trying,
                         uint64_t deadline, int *died) {
  int spins = SPIN;
  for (;;) {
    uint32_t o = ld(&rw->owner);
    if ((o & W_TID) == 0) {
      ipx__robust_pending(s, &rw->owner);
      /* Keep WAITERS: others may still sleep on the word. */
      if (cas(&rw->owner, &o, s->tid | (o & W_WAITERS))) {
        ipx__robust_enqueue(s, &rw->owner);
        *died = (o & W_DIED) != 0;
        return 0;
      }
      ipx__robust_cancel(s);
      continue;
    }
    if (mine(&rw->owner, s, o)) return IPX_EDEADLK;
    if (trying) return IPX_EBUSY;
    if (spins > 0) {
      spins--;
      ipx__cpu_relax();
      continue;
    }
    if (sleep_on(&rw->owner, o, deadline) == IPX_ETIMEDOUT) {
      leave_owner_wait(rw);
      return IPX_ETIMEDOUT;
    }
  }
}

static void owner_release(ipx__rw_t *rw, ipx__robust_self_t *s) {
  ipx__robust_release_begin(s, &rw->owner);
  uint32_t old = __atomic_exchange_n(&rw->owner, 0, __ATOMIC_SEQ_CST);
  if (old & W_WAITERS) ipx__futex_wake(&rw->owner, INT_MAX);
  ipx__robust_release_end(s);
}

/* The caller has just taken the owner word (from a dead owner if `died`):
 * clear what the previous owner left and decide whether the data may be
 * inconsistent.  0, IPX_EOWNERDEAD, or IPX_ENOTRECOVERABLE (word released). */
static int settle(ipx__rw_t *rw, ipx__robust_self_t *s, int died) {
  uint32_t st = ld(&rw->state);
  if (st & ST_NOTREC) {
    owner_release(rw, s);
    return IPX_ENOTRECOVERABLE;
  }
  if (died) {
    /* Write access or upgradable rights: the data may be half-changed.  A
     * writer that died still draining readers had written nothing. */
    if (st & (ST_XHELD | ST_UPG)) st |= ST_INCONSISTENT;
    st_store(rw, st & ~ST_MODE);
    /* Readers it was holding back sleep on the owner word. */
    if (st & ST_XWANT) wake_owner_waiters(rw);
  }
  return (st & ST_INCONSISTENT) ? IPX_EOWNERDEAD : 0;
}

/* ---- reader slots -------------------------------------------------------- */

static int claim_slot(ipx__rw_t *rw, ipx__robust_self_t *s, uint32_t *out) {
  uint32_t start = rd_hint.rw == rw ? rd_hint.slot : 0;
  for (uint32_t k = 0; k < SLOTS; k++) {
    uint32_t j = (start + k) & (SLOTS - 1);
    uint32_t *w = &rw->slot[j].word;
    uint32_t v = __atomic_load_n(w, __ATOMIC_RELAXED);
    /* A dead reader's slot is free: its share ended with it. */
    if (v != 0 && !ipx__robust_owner_died(v)) continue;
    ipx__robust_pending(s, w);
    if (!cas(w, &v, s->tid)) {
      ipx__robust_cancel(s);
      continue;
    }
    ipx__robust_enqueue(s, w);
    uint32_t h = ld(&rw->hwm);
    while (h <= j && !cas(&rw->hwm, &h, j + 1)) {
    }
    rd_hint.rw = rw;
    rd_hint.slot = j;
    *out = j;
    return 0;
  }
  return IPX_EFULL;
}

static void slot_release(ipx__rw_t *rw, ipx__robust_self_t *s, uint32_t j) {
  uint32_t *w = &rw->slot[j].word;
  ipx__robust_release_begin(s, w);
  uint32_t old = __atomic_exchange_n(w, 0, __ATOMIC_SEQ_CST);
  if (old & W_WAITERS) ipx__futex_wake(w, INT_MAX);
  ipx__robust_release_end(s);
}

/* A slot the calling thread holds, or -1. */
static int find_own_slot(ipx__rw_t *rw, ipx__robust_self_t *s) {
  if (rd_hint.rw == rw && mine(&rw->slot[rd_hint.slot].word, s,
                               ld(&rw->slot[rd_hint.slot].word)))
    return (int)rd_hint.slot;
  uint32_t n = ld(&rw->hwm);
  for (uint32_t j = 0; j < n && j < SLOTS; j++)
    if (mine(&rw->slot[j].word, s, ld(&rw->slot[j].word))) return (int)j;
  return -1;
}

/* XWANT is published: wait until no live reader holds a slot.  Dead
 * readers' slots are cleared on the way. */
static int drain(ipx__rw_t *rw, ipx__robust_self_t *s, int trying,
                 uint64_t deadline) {
  uint32_t n = ld(&rw->hwm);
  for (uint32_t j = 0; j < n && j < SLOTS; j++) {
    uint32_t *w = &rw->slot[j].word;
    int spins = SPIN;
    for (;;) {
      uint32_t v = ld(w);
      if (v == 0) break;
      if (ipx__robust_owner_died(v)) {
        (void)cas(w, &v, 0);
        continue;
      }
      if (mine(w, s, v)) return IPX_EDEADLK;
      if (trying) return IPX_EBUSY;
      if (spins > 0) {
        spins--;
        ipx__cpu_relax();
        continue;
      }
      if (sleep_on(w, v, deadline) == IPX_ETIMEDOUT) return IPX_ETIMEDOUT;
    }
  }
  return 0;
}

/* ---- modes ----------------------------------------------------------------- */

#ifdef IPX__TSAN
#define RD_FLAGS(trying) \
  (__tsan_mutex_read_lock | ((trying) ? IPX__TSAN_TRY : 0))
#else
#define RD_FLAGS(trying) 0
#endif


/* The caller holds the owner word and `settled` is settle()'s verdict:
 * announce exclusive, drain readers.  On failure the owner word is
 * released and the lock left as it was. */
static int become_exclusive(ipx__rw_t *rw, ipx__robust_self_t *s,
                            int settled, int trying, uint64_t deadline,
                            uint32_t extra) {
  uint32_t st = ld(&rw->state);
  st_store(rw, st | ST_XWANT | extra);
  int r = drain(rw, s, trying, deadline);
  if (r != 0) {
    st_store(rw, st);
    owner_release(rw, s); /* wakes the readers our XWANT held back */
    return r;
  }
  st_store(rw, st | ST_XWANT | ST_XHELD | extra);
  return settled;
}

static int wr_lock(ipx__rw_t *rw, ipx__robust_self_t *s, int trying,
                   uint64_t deadline) {
  IPX__TSAN_PRE_LOCK(rw, trying ? IPX__TSAN_TRY : 0);
  int died = 0;
  int r = owner_acquire(rw, s, trying, deadline, &died);
  if (r == 0) {
    r = settle(rw, s, died);
    if (r != IPX_ENOTRECOVERABLE)
      r = become_exclusive(rw, s, r, trying, deadline, 0);
  }
  if (r == 0 || r == IPX_EOWNERDEAD)
    IPX__TSAN_POST_LOCK(rw, trying ? IPX__TSAN_TRY : 0, 0);
  else
    IPX__TSAN_POST_LOCK(rw, IPX__TSAN_TRY_FAILED, 0);
  return r;
}

static int wr_unlock(ipx__rw_t *rw, ipx__robust_self_t *s, int as_reader) {
  uint32_t st = ld(&rw->state);
  if (!mine(&rw->owner, s, ld(&rw->owner)) || !(st & ST_XHELD))
    return IPX_ENOTOWNER;
  IPX__TSAN_PRE_UNLOCK(rw, as_reader ? RD_FLAGS(0) : 0);
  st_store(rw, (st & ST_INCONSISTENT) ? ST_NOTREC : 0);
  owner_release(rw, s);
  IPX__TSAN_POST_UNLOCK(rw, as_reader ? RD_FLAGS(0) : 0);
  return 0;
}

/* A reader found a writer's claim whose owner word is dead.  Take the word
 * over: if the dead writer had written (or held upgradable rights), the
 * caller becomes the exclusive holder and gets IPX_EOWNERDEAD; otherwise
 * the claim is cleared and the caller retries (returns 0). */
static int reader_recover(ipx__rw_t *rw, ipx__robust_self_t *s, int trying,
                          uint64_t deadline) {
  int died = 0;
  int r = owner_acquire(rw, s, 1, 0, &died);
  if (r == IPX_EBUSY) return 0; /* someone else took it: re-examine */
  if (r != 0) return r;
  r = settle(rw, s, died);
  if (r == IPX_ENOTRECOVERABLE) return r;
  if (r == 0) {
    owner_release(rw, s);
    return 0;
  }
  return become_exclusive(rw, s, r, trying, deadline, ST_VIA_SHARED);
}

static int rd_lock(ipx__rw_t *rw, ipx__robust_self_t *s, int trying,
                   uint64_t deadline) {
  IPX__TSAN_PRE_LOCK(rw, RD_FLAGS(trying));
  int spins = SPIN, between = SPIN, r;
  uint32_t seen_st = 0, seen_o = 0;
  for (;;) {
    uint32_t st = ld(&rw->state);
    if (st & ST_NOTREC) {
      r = IPX_ENOTRECOVERABLE;
      break;
    }
    if (!(st & ST_XWANT)) {
      uint32_t j;
      r = claim_slot(rw, s, &j);
      if (r != 0) break;
      st = ld(&rw->state);
      if (!(st & (ST_XWANT | ST_NOTREC))) break; /* r == 0: held */
      slot_release(rw, s, j); /* a writer came first: withdraw */
      continue;
    }
    uint32_t o = ld(&rw->owner);
    if ((o & W_TID) == 0) {
      if (o & W_DIED) {
        r = reader_recover(rw, s, trying, deadline);
        if (r != 0) break;
      } else if (st != seen_st || o != seen_o || between-- > 0) {
        /* Read between a releasing writer's two stores (it clears the
         * state first, then the owner word): the next read settles it. */
        if (st != seen_st || o != seen_o) between = SPIN;
        seen_st = st;
        seen_o = o;
        ipx__cpu_relax();
      } else {
        /* The same "exclusive wanted, no owner, dead or alive" read over
         * and over: no writer leaves that, the bytes are damaged, and
         * waiting would never end. */
        r = IPX_ECORRUPT;
        break;
      }
      continue;
    }
    if (mine(&rw->owner, s, o)) {
      r = IPX_EDEADLK;
      break;
    }
    if (trying) {
      r = IPX_EBUSY;
      break;
    }
    if (spins > 0) {
      spins--;
      ipx__cpu_relax();
      continue;
    }
    if (!(o & W_WAITERS)) {
      uint32_t e = o;
      if (!cas(&rw->owner, &e, o | W_WAITERS)) continue;
      o |= W_WAITERS;
    }
    /* WAITERS is visible: a writer clearing XWANT from now on wakes us. */
    if (!(ld(&rw->state) & ST_XWANT)) continue;
    if (ipx__futex_wait(&rw->owner, o, deadline) == -ETIMEDOUT) {
      leave_owner_wait(rw);
      r = IPX_ETIMEDOUT;
      break;
    }
  }
  if (r == 0 || r == IPX_EOWNERDEAD)
    IPX__TSAN_POST_LOCK(rw, RD_FLAGS(trying), 0);
  else
    IPX__TSAN_POST_LOCK(rw, RD_FLAGS(trying) | IPX__TSAN_TRY_FAILED, 0);
  return r;
}

static int rd_unlock(ipx__rw_t *rw, ipx__robust_self_t *s) {
  int j = find_own_slot(rw, s);
  if (j < 0) {
    /* A sharable call that recovered a dead writer's lock holds it
     * exclusively and releases it here. */
    if (ld(&rw->state) & ST_VIA_SHARED) return wr_unlock(rw, s, 1);
    return IPX_ENOTOWNER;
  }
  IPX__TSAN_PRE_UNLOCK(rw, RD_FLAGS(0));
  slot_release(rw, s, (uint32_t)j);
  IPX__TSAN_POST_UNLOCK(rw, RD_FLAGS(0));
  return 0;
}

static int up_lock(ipx__rw_t *rw, ipx__robust_self_t *s, int trying,
                   uint64_t deadline) {
  IPX__TSAN_PRE_LOCK(rw, RD_FLAGS(trying));
  int died = 0;
  int r = owner_acquire(rw, s, trying, deadline, &died);
  if (r == 0) {
    r = settle(rw, s, died);
    if (r != IPX_ENOTRECOVERABLE) st_store(rw, ld(&rw->state) | ST_UPG);
  }
  if (r == 0 || r == IPX_EOWNERDEAD)
    IPX__TSAN_POST_LOCK(rw, RD_FLAGS(trying), 0);
  else
    IPX__TSAN_POST_LOCK(rw, RD_FLAGS(trying) | IPX__TSAN_TRY_FAILED, 0);
  return r;
}

static int holds_upgradable(ipx__rw_t *rw, ipx__robust_self_t *s,
                            uint32_t *st) {
  *st = ld(&rw->state);
  return mine(&rw->owner, s, ld(&rw->owner)) &&
         (*st & (ST_UPG | ST_XWANT)) == ST_UPG;
}

static int up_unlock(ipx__rw_t *rw, ipx__robust_self_t *s) {
  uint32_t st;
  if (!holds_upgradable(rw, s, &st)) return IPX_ENOTOWNER;
  IPX__TSAN_PRE_UNLOCK(rw, RD_FLAGS(0));
  st_store(rw, (st & ST_INCONSISTENT) ? ST_NOTREC : 0);
  owner_release(rw, s);
  IPX__TSAN_POST_UNLOCK(rw, RD_FLAGS(0));
  return 0;
}

static int promote(ipx__rw_t *rw, ipx__robust_self_t *s, int trying,
                   uint64_t deadline) {
  uint32_t st;
  if (!holds_upgradable(rw, s, &st)) return IPX_ENOTOWNER;
  /* UPG stays set while draining: if we die here, the next locker learns
   * that an upgradable holder died. */
  st_store(rw, st | ST_XWANT);
  int r = drain(rw, s, trying, deadline);
  if (r != 0) {
    st_store(rw, st);
    wake_owner_waiters(rw); /* readers our XWANT held back */
    return r;
  }
  IPX__TSAN_PRE_UNLOCK(rw, RD_FLAGS(0));
  IPX__TSAN_POST_UNLOCK(rw, RD_FLAGS(0));
  IPX__TSAN_PRE_LOCK(rw, 0);
  st_store(rw, (st & ~ST_UPG) | ST_XWANT | ST_XHELD);
  IPX__TSAN_POST_LOCK(rw, 0, 0);
  return 0;
}

static int demote_to_upgradable(ipx__rw_t *rw, ipx__robust_self_t *s) {
  uint32_t st = ld(&rw->state);
  if (!mine(&rw->owner, s, ld(&rw->owner)) || !(st & ST_XHELD))
    return IPX_ENOTOWNER;
  IPX__TSAN_PRE_UNLOCK(rw, 0);
  IPX__TSAN_POST_UNLOCK(rw, 0);
  IPX__TSAN_PRE_LOCK(rw, RD_FLAGS(0));
  st_store(rw, (st & ST_INCONSISTENT) | ST_UPG);
  wake_owner_waiters(rw);
  IPX__TSAN_POST_LOCK(rw, RD_FLAGS(0), 0);
  return 0;
}

static int demote_to_sharable(ipx__rw_t *rw, ipx__robust_self_t *s) {
  uint32_t st = ld(&rw->state);
  if (!mine(&rw->owner, s, ld(&rw->owner))) return IPX_ENOTOWNER;
  int excl = (st & ST_XHELD) != 0;
  if (!excl && (st & (ST_UPG | ST_XWANT)) != ST_UPG) return IPX_ENOTOWNER;
  uint32_t j;
  int r = claim_slot(rw, s, &j);
  if (r != 0) return r;
  unsigned was = excl && !(st & ST_VIA_SHARED) ? 0 : RD_FLAGS(0);
  IPX__TSAN_PRE_UNLOCK(rw, was);
  IPX__TSAN_POST_UNLOCK(rw, was);
  IPX__TSAN_PRE_LOCK(rw, RD_FLAGS(0));
  st_store(rw, (st & ST_INCONSISTENT) ? ST_NOTREC : 0);
  owner_release(rw, s);
  IPX__TSAN_POST_LOCK(rw, RD_FLAGS(0), 0);
  (void)was;
  return 0;
}

static int consistent(ipx__rw_t *rw, ipx__robust_self_t *s) {
  uint32_t st = ld(&rw->state);
  if (!mine(&rw->owner, s, ld(&rw->owner)) || !(st & (ST_XHELD | ST_UPG)))
    return IPX_ENOTOWNER;
  if (!(st & ST_INCONSISTENT)) return IPX_EINVAL;
  st_store(rw, st & ~ST_INCONSISTENT);
  return 0;
}

static int rw_init(void *m, uint32_t magic) {
  if (!m) return IPX_EINVAL;
  ipx__rw_t *rw = m;
  memset(rw, 0, sizeof *rw);
  IPX__TSAN_CREATE(rw, 0);
  __atomic_store_n(&rw->magic, magic, __ATOMIC_RELEASE);
  return 0;
}

static int rw_destroy(void *m, uint32_t magic) {
  ipx__rw_t *rw;
  ipx__robust_self_t *s;
  int r = get(m, magic, &rw, &s);
  if (r != 0) return r;
  /* Dead holders' words have no TID bits left: they do not count. */
  if (ld(&rw->owner) & W_TID) return IPX_EBUSY;
  for (uint32_t j = 0; j < SLOTS; j++)
    if (ld(&rw->slot[j].word) & W_TID) return IPX_EBUSY;
  __atomic_store_n(&rw->magic, RW_DESTROYED, __ATOMIC_RELEASE);
  IPX__TSAN_DESTROY(rw);
  return 0;
}

/* ---- public entry points ---------------------------------------------------- */

#define ENTER(m, magic)                 \
  ipx__rw_t *rw;                        \
  ipx__robust_self_t *s;                \
  int enter_r_ = get((m), (magic), &rw, &s); \
  if (enter_r_ != 0) return enter_r_

#define S_MAGIC RW_MAGIC_SHARABLE
#define U_MAGIC RW_MAGIC_UPGRADABLE

int ipx_sharable_mutex_init(ipx_sharable_mutex_t *m) {
  return rw_init(m, S_MAGIC);
}
int ipx_sharable_mutex_destroy(ipx_sharable_mutex_t *m) {
  return rw_destroy(m, S_MAGIC);
}
int ipx_sharable_mutex_lock(ipx_sharable_mutex_t *m) {
  ENTER(m, S_MAGIC);
  return wr_lock(rw, s, 0, IPX_FOREVER);
}
int ipx_sharable_mutex_try_lock(ipx_sharable_mutex_t *m) {
  ENTER(m, S_MAGIC);
  return wr_lock(rw, s, 1, 0);
}
int ipx_sharable_mutex_lock_until(ipx_sharable_mutex_t *m, uint64_t deadline) {
  ENTER(m, S_MAGIC);
  return wr_lock(rw, s, 0, deadline);
}
int ipx_sharable_mutex_lock_for(ipx_sharable_mutex_t *m, uint64_t timeout) {
  ENTER(m, S_MAGIC);
  return wr_lock(rw, s, 0, ipx_deadline_after(timeout));
}
int ipx_sharable_mutex_unlock(ipx_sharable_mutex_t *m) {
  ENTER(m, S_MAGIC);
  return wr_unlock(rw, s, (ld(&rw->state) & ST_VIA_SHARED) != 0);
}
int ipx_sharable_mutex_lock_sharable(ipx_sharable_mutex_t *m) {
  ENTER(m, S_MAGIC);
  return rd_lock(rw, s, 0, IPX_FOREVER);
}
int ipx_sharable_mutex_try_lock_sharable(ipx_sharable_mutex_t *m) {
  ENTER(m, S_MAGIC);
  return rd_lock(rw, s, 1, 0);
}
int ipx_sharable_mutex_lock_sharable_until(ipx_sharable_mutex_t *m,
                                           uint64_t deadline) {
  ENTER(m, S_MAGIC);
  return rd_lock(rw, s, 0, deadline);
}
int ipx_sharable_mutex_lock_sharable_for(ipx_sharable_mutex_t *m,
                                         uint64_t timeout) {
  ENTER(m, S_MAGIC);
  return rd_lock(rw, s, 0, ipx_deadline_after(timeout));
}
int ipx_sharable_mutex_unlock_sharable(ipx_sharable_mutex_t *m) {
  ENTER(m, S_MAGIC);
  return rd_unlock(rw, s);
}
int ipx_sharable_mutex_demote(ipx_sharable_mutex_t *m) {
  ENTER(m, S_MAGIC);
  if (!(ld(&rw->state) & ST_XHELD)) return IPX_ENOTOWNER;
  return demote_to_sharable(rw, s);
}
int ipx_sharable_mutex_consistent(ipx_sharable_mutex_t *m) {
  ENTER(m, S_MAGIC);
  return consistent(rw, s);
}

int ipx_upgradable_mutex_init(ipx_upgradable_mutex_t *m) {
  return rw_init(m, U_MAGIC);
}
int ipx_upgradable_mutex_destroy(ipx_upgradable_mutex_t *m) {
  return rw_destroy(m, U_MAGIC);
}
int ipx_upgradable_mutex_lock(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return wr_lock(rw, s, 0, IPX_FOREVER);
}
int ipx_upgradable_mutex_try_lock(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return wr_lock(rw, s, 1, 0);
}
int ipx_upgradable_mutex_lock_until(ipx_upgradable_mutex_t *m,
                                    uint64_t deadline) {
  ENTER(m, U_MAGIC);
  return wr_lock(rw, s, 0, deadline);
}
int ipx_upgradable_mutex_lock_for(ipx_upgradable_mutex_t *m, uint64_t timeout) {
  ENTER(m, U_MAGIC);
  return wr_lock(rw, s, 0, ipx_deadline_after(timeout));
}
int ipx_upgradable_mutex_unlock(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return wr_unlock(rw, s, (ld(&rw->state) & ST_VIA_SHARED) != 0);
}
int ipx_upgradable_mutex_lock_sharable(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return rd_lock(rw, s, 0, IPX_FOREVER);
}
int ipx_upgradable_mutex_try_lock_sharable(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return rd_lock(rw, s, 1, 0);
}
int ipx_upgradable_mutex_lock_sharable_until(ipx_upgradable_mutex_t *m,
                                             uint64_t deadline) {
  ENTER(m, U_MAGIC);
  return rd_lock(rw, s, 0, deadline);
}
int ipx_upgradable_mutex_lock_sharable_for(ipx_upgradable_mutex_t *m,
                                           uint64_t timeout) {
  ENTER(m, U_MAGIC);
  return rd_lock(rw, s, 0, ipx_deadline_after(timeout));
}
int ipx_upgradable_mutex_unlock_sharable(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return rd_unlock(rw, s);
}
int ipx_upgradable_mutex_lock_upgradable(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return up_lock(rw, s, 0, IPX_FOREVER);
}
int ipx_upgradable_mutex_try_lock_upgradable(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return up_lock(rw, s, 1, 0);
}
int ipx_upgradable_mutex_lock_upgradable_until(ipx_upgradable_mutex_t *m,
                                               uint64_t deadline) {
  ENTER(m, U_MAGIC);
  return up_lock(rw, s, 0, deadline);
}
int ipx_upgradable_mutex_lock_upgradable_for(ipx_upgradable_mutex_t *m,
                                             uint64_t timeout) {
  ENTER(m, U_MAGIC);
  return up_lock(rw, s, 0, ipx_deadline_after(timeout));
}
int ipx_upgradable_mutex_unlock_upgradable(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return up_unlock(rw, s);
}
int ipx_upgradable_mutex_promote(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return promote(rw, s, 0, IPX_FOREVER);
}
int ipx_upgradable_mutex_try_promote(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return promote(rw, s, 1, 0);
}
int ipx_upgradable_mutex_promote_until(ipx_upgradable_mutex_t *m,
                                       uint64_t deadline) {
  ENTER(m, U_MAGIC);
  return promote(rw, s, 0, deadline);
}
int ipx_upgradable_mutex_promote_for(ipx_upgradable_mutex_t *m,
                                     uint64_t timeout) {
  ENTER(m, U_MAGIC);
  return promote(rw, s, 0, ipx_deadline_after(timeout));
}
int ipx_upgradable_mutex_demote_to_upgradable(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return demote_to_upgradable(rw, s);
}
int ipx_upgradable_mutex_demote_to_sharable(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return demote_to_sharable(rw, s);
}
int ipx_upgradable_mutex_consistent(ipx_upgradable_mutex_t *m) {
  ENTER(m, U_MAGIC);
  return consistent(rw, s);
}
