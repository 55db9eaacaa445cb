/* Managed segments: format, creation, opening, validation, the segment
 * lock, queries, check and handles.  Resizing is in segment_resize.c.
 *
 * Creation protocol (shm and file): the segment is built in a file with no
 * name (O_TMPFILE), complete with its header, lock and layers, and only then
 * linked to its name; linkat() fails if the name exists, so exactly one of
 * several racing creators publishes and the others open what it published.
 * A creator killed at any point leaves either nothing or a finished
 * segment.  Hence a name holding anything else (empty, zeros, half a
 * header) was not made by ipx and is reported IPX_ECORRUPT, never
 * overwritten: it may be someone's data.
 *
 * Open-file-description locks on the object (independent of its size):
 *   byte 0  OPEN   every handle holds it shared for its lifetime; grow and
 *                  shrink take it exclusively (IPX_EBUSY while anyone has
 *                  the segment open);
 *   byte 1  SETUP  serialises the rare fix-ups at open: resetting the lock
 *                  of a segment from an earlier boot, finishing an
 *                  interrupted resize.
 * The kernel drops both the moment their holder dies. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipx/shm.h"
#include "ipx/time.h"
#include "os/ofd.h"
#include "os/segment_os.h"
#include "segment/segment_internal.h"
#include "segment/segment_priv.h"
#include "sync/robust.h"

/* ---- format --------------------------------------------------------- */

/* Word at a time (a byte-wise FNV-1a over the 120 identity bytes cost
 * ~120 ns of every open): each step is a bijection of the state, so a
 * change in any one word always changes the result; the shift carries high
 * bits down so that changes in several words' high bits do not cancel. */
uint64_t ipx__seg_hash(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
    h ^= h >> 32;
  }
  return h;
}

static void layout_fill(struct ipx__seg_header *h) {
  h->version = IPX_SEGMENT_FORMAT_VERSION;
  h->header_size = IPX_SEGMENT_HEADER_SIZE;
  h->endian = IPX__SEG_ENDIAN;
  h->ptr_size = (uint8_t)sizeof(void *);
  h->max_align = (uint8_t)_Alignof(max_align_t);
  h->cache_line = IPX_CACHE_LINE;
  h->mutex_size = (uint16_t)sizeof(ipx_mutex_t);
  h->mutex_align = (uint16_t)_Alignof(ipx_mutex_t);
  h->rmutex_size = (uint16_t)sizeof(ipx_recursive_mutex_t);
  h->rmutex_align = (uint16_t)_Alignof(ipx_recursive_mutex_t);
  h->fingerprint = ipx__seg_hash((const char *)h + 8, 24);
}

uint64_t ipx__seg_geo_check(const struct ipx__seg_geo *g, uint32_t slot) {
  uint64_t w[4] = {g->total_size, g->heap_size, g->resize_to, slot};
  return ipx__seg_hash(w, sizeof w);
}

void ipx__seg_seal(struct ipx__seg_header *h) {
  h->checksum = ipx__seg_hash(h, offsetof(struct ipx__seg_header, checksum));
  uint32_t s = h->geo_slot;
  if (s < 2) h->geo[s].check = ipx__seg_geo_check(&h->geo[s], s);
}

/* Every open checks half a KiB of reserved bytes: OR whole words. */
static int all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    acc |= w;
  }
  for (; i < n; i++) acc |= b[i];
  return acc == 0;
}

/* One rule of the header: when r is NULL the first broken rule ends the
 * validation with its code; with a report every broken rule is reported. */
#define RULE(cond, code, ...)                  \
  do {                                         \
    if (!(cond)) {                             \
      if (!r) return (code);                   \
      ipx__seg_problem(r, __VA_ARGS__);        \
      if (!err) err = (code);                  \
    }                                          \
  } while (0)

int ipx__seg_validate_ex(const struct ipx__seg_header *h, uint64_t actual,
                         int *pending, struct ipx__seg_report *r) {
  int err = 0;
  *pending = 0;
  if (memcmp(h->magic, IPX__SEG_MAGIC, 8) != 0) {
    if (r) ipx__seg_problem(r, "header: bad magic (not an ipx segment)");
    return IPX_ECORRUPT; /* nothing else means anything */
  }
  if (h->version != IPX_SEGMENT_FORMAT_VERSION) {
    if (r)
      ipx__seg_problem(r, "header: format version %u, this build reads %u",
                       h->version, IPX_SEGMENT_FORMAT_VERSION);
    return IPX_EVERSION;
  }
  uint64_t sum = ipx__seg_hash(h, offsetof(struct ipx__seg_header, checksum));
  if (sum != h->checksum) {
    if (r) ipx__seg_problem(r, "header: identity checksum mismatch");
    return IPX_ECORRUPT;
  }
  struct ipx__seg_header ref;
  memset(&ref, 0, 64);
  layout_fill(&ref);
  RULE(h->header_size == IPX_SEGMENT_HEADER_SIZE, IPX_ECORRUPT,
       "header: header size %u, expected %u", h->header_size,
       IPX_SEGMENT_HEADER_SIZE);
  RULE(h->endian == IPX__SEG_ENDIAN, IPX_EVERSION,
       "header: written with another byte order");
  RULE(memcmp((const char *)h + 20, (const char *)&ref + 20, 20) == 0,
       IPX_EVERSION,
       "header: layout fingerprint differs (pointer %u/%u, max align %u/%u, "
       "cache line %u/%u, mutex %u:%u/%u:%u, recursive mutex %u:%u/%u:%u; "
       "segment's/this build's)",
       h->ptr_size, ref.ptr_size, h->max_align, ref.max_align, h->cache_line,
       ref.cache_line, h->mutex_size, h->mutex_align, ref.mutex_size,
       ref.mutex_align, h->rmutex_size, h->rmutex_align, ref.rmutex_size,
       ref.rmutex_align);
  RULE(h->heap_off == IPX_SEGMENT_HEADER_SIZE, IPX_ECORRUPT,
       "header: heap offset %llu, expected %u",
       (unsigned long long)h->heap_off, IPX_SEGMENT_HEADER_SIZE);
  RULE(h->backing >= IPX__SEG_SHM && h->backing <= IPX__SEG_HEAP,
       IPX_ECORRUPT, "header: unknown backing %u", h->backing);
  RULE(all_zero(h->reserved0, sizeof h->reserved0), IPX_ECORRUPT,
       "header: reserved identity bytes are not zero");
  RULE(h->geo_slot < 2, IPX_ECORRUPT, "header: geometry slot %u is not 0 or 1",
       h->geo_slot);
  if (h->geo_slot < 2) {
    const struct ipx__seg_geo *g = &h->geo[h->geo_slot];
    uint64_t t = g->total_size, rt = g->resize_to;
    int geo_ok = g->check == ipx__seg_geo_check(g, h->geo_slot);
    RULE(geo_ok, IPX_ECORRUPT, "header: geometry checksum mismatch");
    if (geo_ok) {
      RULE(t >= IPX_SEGMENT_MIN_SIZE && t <= IPX_SEGMENT_MAX_SIZE,
           IPX_ECORRUPT, "header: total size %llu out of range",
           (unsigned long long)t);
      RULE(g->heap_size == t - IPX_SEGMENT_HEADER_SIZE, IPX_ECORRUPT,
           "header: heap size %llu does not match total size %llu",
           (unsigned long long)g->heap_size, (unsigned long long)t);
      if (rt) {
        RULE(rt >= IPX_SEGMENT_MIN_SIZE && rt <= IPX_SEGMENT_MAX_SIZE,
             IPX_ECORRUPT, "header: resize target %llu out of range",
             (unsigned long long)rt);
        RULE(actual == t || actual == rt, IPX_ECORRUPT,
             "header: object is %llu bytes, segment %llu resizing to %llu",
             (unsigned long long)actual, (unsigned long long)t,
             (unsigned long long)rt);
        if (!err) *pending = 1;
      } else {
        RULE(actual == t, IPX_ECORRUPT,
             "header: segment of %llu bytes in an object of %llu bytes",
             (unsigned long long)t, (unsigned long long)actual);
      }
    }
  }
  RULE(all_zero(h->reserved1, sizeof h->reserved1) &&
           all_zero(h->reserved2, sizeof h->reserved2) &&
           h->reserved3 == 0 &&
           all_zero(h->reserved4, sizeof h->reserved4) &&
           all_zero(h->reserved5, sizeof h->reserved5),
       IPX_ECORRUPT, "header: reserved bytes are not zero");
  RULE((h->flags & ~(IPX__SEG_F_CORRUPT | IPX__SEG_F_REPAIR)) == 0,
       IPX_ECORRUPT, "header: unknown flags 0x%x", h->flags);
  RULE((h->flags & IPX__SEG_F_CORRUPT)
           ? memchr(h->corrupt_reason, 0, sizeof h->corrupt_reason) != NULL
           : all_zero(h->corrupt_reason, sizeof h->corrupt_reason),
       IPX_ECORRUPT, "header: corruption note is damaged");
  return err;
}
#undef RULE

int ipx__seg_validate(const struct ipx__seg_header *h, uint64_t actual,
                      int *resize_pending) {
  return ipx__seg_validate_ex(h, actual, resize_pending, NULL);
}

uint64_t ipx__seg_heap_size(const ipx_segment_t *seg) {
  const struct ipx__seg_header *h = ipx__seg_hdr(seg);
  return h->geo[__atomic_load_n(&h->geo_slot, __ATOMIC_ACQUIRE) & 1].heap_size;
}

/* Lay a fresh header over s->base (s->size bytes) and run the layers'
 * init.  Nobody else can see the memory yet. */
static int format(struct ipx_segment *s) {
  struct ipx__seg_header *h = ipx__seg_hdr(s);
  if (!s->zeroed) memset(h, 0, sizeof *h);
  memcpy(h->magic, IPX__SEG_MAGIC, 8);
  layout_fill(h);
  h->heap_off = IPX_SEGMENT_HEADER_SIZE;
  h->creator_pid = (int32_t)ipx__sos_pid();
  h->backing = s->backing;
  h->geo_slot = 0;
  h->geo[0].total_size = s->size;
  h->geo[0].heap_size = s->size - IPX_SEGMENT_HEADER_SIZE;
  ipx__seg_seal(h);
  int r = ipx__sos_boot_id(h->boot_id);
  if (r) return r;
  r = ipx_recursive_mutex_init(&h->lock);
  if (r) return r;
  int any = 0;
  for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l; l++)
    if ((*l)->init) any = 1;
  if (!any) return 0;
  r = ipx__seg_lock(s);
  if (r) return r;
  for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l && !r; l++)
    if ((*l)->init) r = (*l)->init(s);
  int u = ipx__seg_unlock(s);
  return r ? r : u;
}

/* ---- the segment lock ------------------------------------------------ */

static int run_repairs(ipx_segment_t *seg) {
  for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l; l++) {
    if (!(*l)->repair) continue;
    int r = (*l)->repair(seg);
    if (r) {
      char why[64];
      snprintf(why, sizeof why, "%s: repair after a dead lock holder failed",
               (*l)->name);
      ipx__seg_mark_corrupt(seg, why);
      return r;
    }
  }
  return 0;
}

/* The calling thread's id, as the robust mutexes cache it (a gettid()
 * system call per lock and unlock would double the cost of an allocation).
 * 0 if the thread cannot use robust locks at all. */
static inline uint32_t self_tid(void) {
  ipx__robust_self_t *me;
  return ipx__robust_self(&me) == 0 ? me->tid : 0;
}

/* The rare end of a lock: a dead holder, a pending repair, a corrupt
 * segment.  Out of line so that the common path needs no stack frame. */
__attribute__((noinline, cold)) int ipx__seg_lock_tail(ipx_segment_t *seg,
                                                       int dead) {
  struct ipx__seg_header *h = ipx__seg_hdr(seg);
  if (dead || (h->flags & IPX__SEG_F_REPAIR)) {
    if ((h->flags & IPX__SEG_F_CORRUPT) == 0) run_repairs(seg);
    h->flags &= ~IPX__SEG_F_REPAIR;
    if (dead) ipx_recursive_mutex_consistent(&h->lock);
  }
  if (h->flags & IPX__SEG_F_CORRUPT) {
    ipx__seg_unlock(seg);
    return IPX_ECORRUPT;
  }
  return 0;
}

int ipx__seg_lock_slow(ipx_segment_t *seg) {
  if (seg->access == IPX_READ_ONLY) return IPX_EREADONLY;
  struct ipx__seg_header *h = ipx__seg_hdr(seg);
  int r = ipx_recursive_mutex_lock(&h->lock);
  int dead = r == IPX_EOWNERDEAD;
  if (__builtin_expect(r != 0, 0) && !dead) return r;
  /* The owner field, not the depth, tells the outermost lock apart: a dead
   * holder's or a damaged count must not leak into ours.  The lock
   * succeeded, so the thread's id is cached. */
  uint32_t me = ipx__robust_tls.tid;
  if (dead || h->lock_owner != me) {
    h->lock_owner = me;
    h->lock_depth = 1;
    ipx__seg_gen_enter(h);
  } else {
    h->lock_depth++;
  }
  if (__builtin_expect(
          dead || (h->flags & (IPX__SEG_F_REPAIR | IPX__SEG_F_CORRUPT)), 0))
    return ipx__seg_lock_tail(seg, dead);
  return 0;
}

int ipx__seg_unlock_slow(ipx_segment_t *seg) {
  if (seg->access == IPX_READ_ONLY) return IPX_EREADONLY;
  struct ipx__seg_header *h = ipx__seg_hdr(seg);
  uint32_t me = self_tid();
  if (me == 0 || h->lock_owner != me || h->lock_depth == 0)
    return IPX_ENOTOWNER;
  if (--h->lock_depth == 0) {
    h->lock_owner = 0;
    ipx__seg_gen_leave(h);
  }
  return ipx_recursive_mutex_unlock(&h->lock);
}

void ipx__seg_mark_corrupt(ipx_segment_t *seg, const char *why) {
  struct ipx__seg_header *h = ipx__seg_hdr(seg);
  /* Flag first: an opener validating meanwhile must never see a note
   * without its flag.  The note's last byte stays 0 throughout. */
  __atomic_or_fetch(&h->flags, IPX__SEG_F_CORRUPT, __ATOMIC_RELEASE);
  memset(h->corrupt_reason, 0, sizeof h->corrupt_reason);
  if (why)
    memcpy(h->corrupt_reason, why,
           strnlen(why, sizeof h->corrupt_reason - 1));
}

int ipx__seg_read_begin(const ipx_segment_t *seg, uint64_t *gen,
                        uint64_t deadline_ns) {
  const struct ipx__seg_header *h = ipx__seg_hdr(seg);
  for (unsigned spins = 0;; spins++) {
    uint64_t g = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
    if (!(g & 1)) {
      *gen = g;
      return 0;
    }
    if (ipx_now() >= deadline_ns) return IPX_EBUSY;
    if (spins > 100) {
      struct timespec ts = {0, 50000};
      nanosleep(&ts, NULL);
    }
  }
}

int ipx__seg_read_retry(const ipx_segment_t *seg, uint64_t gen) {
  const struct ipx__seg_header *h = ipx__seg_hdr(seg);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  return __atomic_load_n(&h->generation, __ATOMIC_RELAXED) != gen;
}

/* ---- reports --------------------------------------------------------- */

void ipx__seg_problem(struct ipx__seg_report *r, const char *fmt, ...) {
  char msg[IPX__SEG_MSG_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->count++;
  if (!r->buffered) {
    if (r->fn) r->fn(r->ctx, msg);
  } else if (r->nmsgs < IPX__SEG_MSG_MAX) {
    memcpy(r->msgs[r->nmsgs++], msg, sizeof msg);
  }
}

/* ---- opening --------------------------------------------------------- */

void ipx_segment_options_init(ipx_segment_options_t *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->mode = IPX_OPEN_OR_CREATE;
  o->access = IPX_READ_WRITE;
  o->perm = 0;
  o->size = 64 * 1024;
  o->address = NULL;
  o->flags = 0;
}

static int check_opts(const ipx_segment_options_t *o) {
  if (!o) return IPX_EINVAL;
  if (o->mode != IPX_CREATE_ONLY && o->mode != IPX_OPEN_ONLY &&
      o->mode != IPX_OPEN_OR_CREATE)
    return IPX_EINVAL;
  if (o->access != IPX_READ_ONLY && o->access != IPX_READ_WRITE &&
      o->access != IPX_COPY_ON_WRITE)
    return IPX_EINVAL;
  if (o->flags & ~IPX_SEGMENT_RESERVE) return IPX_EINVAL;
  if (o->perm & ~07777u) return IPX_EINVAL;
  if (o->mode != IPX_OPEN_ONLY) {
    if (o->access != IPX_READ_WRITE) return IPX_EINVAL;
    if (o->size < IPX_SEGMENT_MIN_SIZE) return IPX_EINVAL;
    if (o->size > IPX_SEGMENT_MAX_SIZE || o->size > SIZE_MAX / 2)
      return IPX_ETOOBIG;
  }
  if (o->address && ((uintptr_t)o->address % 4096) != 0) return IPX_EINVAL;
  return 0;
}

static enum ipx__sos_prot prot_of(ipx_access_t a) {
  return a == IPX_READ_ONLY ? IPX__SOS_RO
         : a == IPX_COPY_ON_WRITE ? IPX__SOS_COW
                                  : IPX__SOS_RW;
}

/* A writer opening a segment whose lock state belongs to an earlier boot:
 * the lock words may say "held" by a thread that no longer exists, and no
 * one would ever notice its death.  Reset them (once: under SETUP, with the
 * boot id written last). */
static int boot_fixup(struct ipx_segment *s) {
  struct ipx__seg_header *h = ipx__seg_hdr(s);
  uint8_t now[16];
  int r = ipx__sos_boot_id(now);
  if (r) return r;
  if (memcmp(h->boot_id, now, 16) == 0) return 0;
  if (s->fd >= 0 && s->access == IPX_READ_WRITE) {
    r = ipx__ofd_lock(s->fd, IPX__OFD_WRITE, IPX__SEG_LOCK_SETUP, 1, 1);
    if (r) return r;
  }
  if (memcmp(h->boot_id, now, 16) != 0) {
    r = ipx_recursive_mutex_init(&h->lock);
    if (!r) {
      h->lock_depth = 0;
      h->lock_owner = 0;
      if (__atomic_load_n(&h->generation, __ATOMIC_RELAXED) & 1)
        h->flags |= IPX__SEG_F_REPAIR;
      __atomic_thread_fence(__ATOMIC_RELEASE);
      memcpy(h->boot_id, now, 16);
    }
  }
  if (s->fd >= 0 && s->access == IPX_READ_WRITE)
    ipx__ofd_lock(s->fd, IPX__OFD_UNLOCK, IPX__SEG_LOCK_SETUP, 1, 0);
  return r;
}

/* A copy-on-write opener's lock is its own: make the header page private
 * now and start with the lock free. */
static int cow_fixup(struct ipx_segment *s) {
  struct ipx__seg_header *h = ipx__seg_hdr(s);
  int r = ipx_recursive_mutex_init(&h->lock);
  if (r) return r;
  h->lock_depth = 0;
  h->lock_owner = 0;
  if (h->generation & 1) h->flags |= IPX__SEG_F_REPAIR;
  return ipx__sos_boot_id(h->boot_id);
}

/* Finish an interrupted resize of the object open as s->fd: needs a
 * read-write handle that is alone.  OPEN is held shared on entry and on
 * successful return. */
static int settle_resize(struct ipx_segment *s) {
  if (s->access != IPX_READ_WRITE) return IPX_EBUSY;
  int fd = s->fd;
  int r = ipx__ofd_lock(fd, IPX__OFD_UNLOCK, IPX__SEG_LOCK_OPEN, 1, 0);
  if (r) return r;
  r = ipx__ofd_lock(fd, IPX__OFD_WRITE, IPX__SEG_LOCK_SETUP, 1, 1);
  if (r) return r;
  /* Others that saw the same unfinished resize released OPEN before
   * queueing on SETUP; an opener holding OPEN shared is only passing
   * through.  Give them a moment. */
  uint64_t deadline = ipx_deadline_after(500 * IPX_MSEC);
  while ((r = ipx__ofd_lock(fd, IPX__OFD_WRITE, IPX__SEG_LOCK_OPEN, 1, 0)) ==
             IPX_EBUSY &&
         ipx_now() < deadline) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (r == 0) {
    r = ipx__seg_resize_settle(fd, s->backing);
    int d = ipx__ofd_lock(fd, IPX__OFD_READ, IPX__SEG_LOCK_OPEN, 1, 0);
    if (!r) r = d;
  }
  ipx__ofd_lock(fd, IPX__OFD_UNLOCK, IPX__SEG_LOCK_SETUP, 1, 0);
  return r;
}

/* Every layer's open check, unless the segment is known corrupt already
 * (then its lock refuses everyone and check says why). */
static int layers_open(struct ipx_segment *s) {
  if (__atomic_load_n(&ipx__seg_hdr(s)->flags, __ATOMIC_ACQUIRE) &
      IPX__SEG_F_CORRUPT)
    return 0;
  for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l; l++)
    if ((*l)->open) {
      int r = (*l)->open(s);
      if (r) return r;
    }
  return 0;
}

/* Open the segment in the object s->fd (OPEN already held shared, so no
 * ipx resize can change the size under us). */
static int open_fd(struct ipx_segment *s, const ipx_segment_options_t *o) {
  struct ipx__seg_header copy;
  uint64_t size = 0;
  void *base = NULL;
  int r, pending = 0;
  for (int attempt = 0;; attempt++) {
    r = ipx__sos_size(s->fd, &size);
    if (r) return r;
    /* Never touch a page the object does not have: a short object is
     * reported, not a SIGBUS. */
    if (size < sizeof copy) return IPX_ECORRUPT;
    if (size > SIZE_MAX) return IPX_ETOOBIG;
    r = ipx__sos_map(s->fd, (size_t)size, prot_of(s->access), o->address,
                     &base);
    if (r) return r;
    /* Validate a copy: what is checked is what is used. */
    ipx__seg_copy_header(&copy, base);
    r = ipx__seg_validate(&copy, size, &pending);
    if (!r && !pending) break;
    ipx__sos_unmap(base, (size_t)size);
    if (r) return r;
    if (attempt == 2) return IPX_EBUSY;
    r = settle_resize(s);
    if (r) return r;
  }
  s->base = base;
  s->size = size;
  r = layers_open(s);
  if (r) return r;
  if (s->access == IPX_READ_WRITE)
    r = boot_fixup(s);
  else if (s->access == IPX_COPY_ON_WRITE)
    r = cow_fixup(s);
  return r;
}

static void seg_free(struct ipx_segment *s) {
  if (!s) return;
  if (s->base && (s->backing == IPX__SEG_SHM || s->backing == IPX__SEG_FILE))
    ipx__sos_unmap(s->base, (size_t)s->size);
  if (s->base && s->backing == IPX__SEG_HEAP) free(s->base);
  ipx__sos_close(s->fd);
  free(s->heap_local);
  free(s);
}

static struct ipx_segment *seg_new(enum ipx__seg_backing b, ipx_access_t a) {
  struct ipx_segment *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->fd = -1;
  s->backing = b;
  s->access = a;
  return s;
}

/* Build a complete segment under no name and publish it as `path`.
 * IPX_EEXIST if the name was taken first. */
static int create_new(struct ipx_segment *s, const char *path,
                      const ipx_segment_options_t *o) {
  char tmp[PATH_MAX + 64];
  int fd = ipx__sos_create_unnamed(path, o->perm ? o->perm : IPX_DEFAULT_PERM,
                                   tmp, sizeof tmp);
  if (fd < 0) return fd;
  int r = ipx__ofd_lock(fd, IPX__OFD_READ, IPX__SEG_LOCK_OPEN, 1, 0);
  if (!r) r = ipx__sos_resize(fd, o->size, (o->flags & IPX_SEGMENT_RESERVE) != 0);
  void *base = NULL;
  if (!r) r = ipx__sos_map(fd, (size_t)o->size, IPX__SOS_RW, o->address, &base);
  if (!r) {
    s->base = base;
    s->size = o->size;
    s->fd = fd;
    s->zeroed = 1; /* a new file extended by ftruncate reads as zeros */
    r = format(s);
    s->zeroed = 0;
  }
  if (!r) r = ipx__sos_publish(fd, tmp, path);
  if (r) {
    if (base) ipx__sos_unmap(base, (size_t)o->size);
    s->base = NULL;
    s->fd = -1;
    ipx__sos_discard(fd, tmp);
    return r == -EEXIST ? IPX_EEXIST : r;
  }
  s->created = 1;
  return 0;
}

static int open_path(ipx_segment_t **out, const char *path, int nofollow,
                     enum ipx__seg_backing backing,
                     const ipx_segment_options_t *o) {
  struct ipx_segment *s = seg_new(backing, o->access);
  if (!s) return -ENOMEM;
  int r = IPX_EBUSY;
  /* Bounded: each round either opens, creates, or lost a race against a
   * creator or a remover that made progress. */
  for (int round = 0; round < 64; round++) {
    if (o->mode != IPX_CREATE_ONLY) {
      int fd = ipx__sos_open(path, o->access == IPX_READ_WRITE, nofollow);
      if (fd >= 0) {
        s->fd = fd;
        r = ipx__ofd_lock(fd, IPX__OFD_READ, IPX__SEG_LOCK_OPEN, 1, 1);
        if (!r) r = open_fd(s, o);
        goto out;
      }
      if (fd == -ELOOP && nofollow) fd = IPX_ECORRUPT;
      if (fd != -ENOENT) {
        r = fd;
        goto out;
      }
      if (o->mode == IPX_OPEN_ONLY) {
        r = IPX_ENOTFOUND;
        goto out;
      }
    }
    r = create_new(s, path, o);
    if (r != IPX_EEXIST || o->mode == IPX_CREATE_ONLY) goto out;
  }
out:
  if (r) {
    seg_free(s);
    return r;
  }
  *out = s;
  return 0;
}

/* buf: room for the prefix and IPX_NAME_MAX + 1 bytes (callers' arrays).
 * Built by hand: snprintf cost ~60 ns of every open. */
static int shm_path(char *buf, size_t len, const char *name) {
  static const char pre[] = IPX__SHM_DIR "/" IPX__SHM_PREFIX;
  int r = ipx_name_check(name);
  if (r) return r;
  size_t n = strlen(name);
  if (sizeof pre + n > len) return IPX_EBADNAME;
  memcpy(buf, pre, sizeof pre - 1);
  memcpy(buf + sizeof pre - 1, name, n + 1);
  return 0;
}

static int file_path_check(const char *path) {
  if (!path || !path[0]) return IPX_EINVAL;
  if (strnlen(path, PATH_MAX) >= PATH_MAX) return IPX_EINVAL;
  return 0;
}

int ipx_segment_open_shm(ipx_segment_t **out, const char *name,
                         const ipx_segment_options_t *opts) {
  if (!out) return IPX_EINVAL;
  int r = check_opts(opts);
  if (r) return r;
  char path[sizeof IPX__SHM_DIR + sizeof IPX__SHM_PREFIX + IPX_NAME_MAX + 2];
  r = shm_path(path, sizeof path, name);
  if (r) return r;
  return open_path(out, path, 1, IPX__SEG_SHM, opts);
}

int ipx_segment_open_file(ipx_segment_t **out, const char *path,
                          const ipx_segment_options_t *opts) {
  if (!out) return IPX_EINVAL;
  int r = check_opts(opts);
  if (!r) r = file_path_check(path);
  if (r) return r;
  return open_path(out, path, 0, IPX__SEG_FILE, opts);
}

int ipx_segment_open_buffer(ipx_segment_t **out, void *buf, size_t size,
                            const ipx_segment_options_t *opts) {
  if (!out || !buf || !opts) return IPX_EINVAL;
  if ((uintptr_t)buf % IPX_SEGMENT_BUFFER_ALIGN) return IPX_EINVAL;
  if (size < IPX_SEGMENT_MIN_SIZE) return IPX_EINVAL;
  if ((uint64_t)size > IPX_SEGMENT_MAX_SIZE) return IPX_ETOOBIG;
  if (opts->mode != IPX_CREATE_ONLY && opts->mode != IPX_OPEN_ONLY)
    return IPX_EINVAL;
  if (opts->access != IPX_READ_ONLY && opts->access != IPX_READ_WRITE)
    return IPX_EINVAL;
  if (opts->mode == IPX_CREATE_ONLY && opts->access != IPX_READ_WRITE)
    return IPX_EINVAL;
  struct ipx_segment *s = seg_new(IPX__SEG_BUFFER, opts->access);
  if (!s) return -ENOMEM;
  s->base = buf;
  s->size = size;
  int r;
  if (opts->mode == IPX_CREATE_ONLY) {
    r = format(s);
    s->created = 1;
  } else {
    int pending;
    r = ipx__seg_validate(ipx__seg_hdr(s), size, &pending);
    /* A buffer cannot be resized: a recorded resize is damage. */
    if (!r && pending) r = IPX_ECORRUPT;
    if (!r) r = layers_open(s);
    if (!r && s->access == IPX_READ_WRITE) r = boot_fixup(s);
  }
  if (r) {
    s->base = NULL;
    seg_free(s);
    return r;
  }
  *out = s;
  return 0;
}

int ipx_segment_create_heap(ipx_segment_t **out, uint64_t size) {
  if (!out || size < IPX_SEGMENT_MIN_SIZE) return IPX_EINVAL;
  if (size > IPX_SEGMENT_HEAP_MAX_SIZE) return IPX_ETOOBIG;
  struct ipx_segment *s = seg_new(IPX__SEG_HEAP, IPX_READ_WRITE);
  if (!s) return -ENOMEM;
  size_t alloc = ((size_t)size + 4095) & ~(size_t)4095;
  s->base = aligned_alloc(4096, alloc);
  if (!s->base) {
    free(s);
    return -ENOMEM;
  }
  memset(s->base, 0, (size_t)size);
  s->size = size;
  s->zeroed = 1;
  int r = format(s);
  s->zeroed = 0;
  if (r) {
    seg_free(s);
    return r;
  }
  s->created = 1;
  *out = s;
  return 0;
}

int ipx_segment_close(ipx_segment_t *seg) {
  seg_free(seg);
  return 0;
}

static int remove_path(const char *path) {
  int r = ipx__sos_unlink(path);
  return r == -ENOENT ? IPX_ENOTFOUND : r;
}

int ipx_segment_remove_shm(const char *name) { return ipx_shm_remove(name); }

int ipx_segment_remove_file(const char *path) {
  int r = file_path_check(path);
  return r ? r : remove_path(path);
}

int ipx_segment_grow_shm(const char *name, uint64_t extra) {
  char path[sizeof IPX__SHM_DIR + sizeof IPX__SHM_PREFIX + IPX_NAME_MAX + 2];
  int r = shm_path(path, sizeof path, name);
  if (r) return r;
  if (extra == 0) return IPX_EINVAL;
  return ipx__seg_resize_path(path, 1, IPX__SEG_SHM, extra, NULL);
}

int ipx_segment_grow_file(const char *path, uint64_t extra) {
  int r = file_path_check(path);
  if (r) return r;
  if (extra == 0) return IPX_EINVAL;
  return ipx__seg_resize_path(path, 0, IPX__SEG_FILE, extra, NULL);
}

int ipx_segment_shrink_to_fit_shm(const char *name, uint64_t *new_size) {
  char path[sizeof IPX__SHM_DIR + sizeof IPX__SHM_PREFIX + IPX_NAME_MAX + 2];
  int r = shm_path(path, sizeof path, name);
  return r ? r : ipx__seg_resize_path(path, 1, IPX__SEG_SHM, 0, new_size);
}

int ipx_segment_shrink_to_fit_file(const char *path, uint64_t *new_size) {
  int r = file_path_check(path);
  return r ? r : ipx__seg_resize_path(path, 0, IPX__SEG_FILE, 0, new_size);
}

/* ---- queries --------------------------------------------------------- */

void *ipx_segment_base(const ipx_segment_t *seg) {
  return seg ? seg->base : NULL;
}
uint64_t ipx_segment_size(const ipx_segment_t *seg) {
  return seg ? seg->size : 0;
}
ipx_access_t ipx_segment_access(const ipx_segment_t *seg) {
  return seg ? seg->access : (ipx_access_t)0;
}
int ipx_segment_created(const ipx_segment_t *seg) {
  return seg ? seg->created : 0;
}

typedef int (*layer_query_fn)(ipx_segment_t *, uint64_t *);

static int layer_query(ipx_segment_t *seg, size_t hook_off, uint64_t dflt,
                       uint64_t *out) {
  if (!seg || !out) return IPX_EINVAL;
  for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l; l++) {
    layer_query_fn fn;
    memcpy(&fn, (const char *)*l + hook_off, sizeof fn);
    if (fn) return fn(seg, out);
  }
  *out = dflt;
  return 0;
}

int ipx_segment_free_memory(ipx_segment_t *seg, uint64_t *out) {
  return layer_query(seg, offsetof(struct ipx__seg_layer, free_memory),
                     seg ? ipx__seg_heap_size(seg) : 0, out);
}

int ipx_segment_named_count(ipx_segment_t *seg, uint64_t *out) {
  return layer_query(seg, offsetof(struct ipx__seg_layer, named_count), 0, out);
}

/* ---- check ----------------------------------------------------------- */

/* The header's part of the walk.  `locked`: the caller holds the lock. */
static void check_header(ipx_segment_t *seg, struct ipx__seg_report *r,
                         int locked) {
  struct ipx__seg_header copy;
  memcpy(&copy, ipx__seg_hdr(seg), sizeof copy);
  int pending;
  ipx__seg_validate_ex(&copy, seg->size, &pending, r);
  if (pending)
    ipx__seg_problem(r, "header: a resize to %llu bytes is unfinished",
                     (unsigned long long)copy.geo[copy.geo_slot & 1].resize_to);
  if (copy.flags & IPX__SEG_F_CORRUPT)
    ipx__seg_problem(r, "segment marked corrupt: %.63s", copy.corrupt_reason);
  if (locked) {
    if (!(copy.generation & 1))
      ipx__seg_problem(r, "header: generation %llu is even under the lock",
                       (unsigned long long)copy.generation);
    if (copy.lock_depth == 0)
      ipx__seg_problem(r, "header: lock depth 0 under the lock");
  } else if (copy.lock_depth != 0 || copy.lock_owner != 0) {
    ipx__seg_problem(r, "header: lock depth %u, owner %u with no holder inside",
                     copy.lock_depth, copy.lock_owner);
  }
  uint8_t now[16];
  if (seg->access != IPX_READ_ONLY && ipx__sos_boot_id(now) == 0 &&
      memcmp(copy.boot_id, now, 16) != 0)
    ipx__seg_problem(r, "header: lock state belongs to another boot");
}

static int walk(ipx_segment_t *seg, struct ipx__seg_report *r, int locked) {
  check_header(seg, r, locked);
  if (r->count) return IPX_ECORRUPT; /* layers would read garbage */
  for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l; l++)
    if ((*l)->check) (*l)->check(seg, r);
  return r->count ? IPX_ECORRUPT : 0;
}

int ipx_segment_check(ipx_segment_t *seg, ipx_segment_report_fn report,
                      void *ctx) {
  if (!seg) return IPX_EINVAL;
  struct ipx__seg_report *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->fn = report;
  r->ctx = ctx;
  int res;
  if (seg->access == IPX_READ_ONLY) {
    uint64_t deadline = ipx_deadline_after(IPX_SEC);
    r->buffered = 1;
    for (;;) {
      uint64_t gen;
      res = ipx__seg_read_begin(seg, &gen, deadline);
      if (res) break;
      r->count = r->nmsgs = 0;
      res = walk(seg, r, 0);
      if (!ipx__seg_read_retry(seg, gen)) {
        for (unsigned i = 0; i < r->nmsgs; i++)
          if (report) report(ctx, r->msgs[i]);
        if (r->count > r->nmsgs && report) {
          char more[64];
          snprintf(more, sizeof more, "(%u more problems not shown)",
                   r->count - r->nmsgs);
          report(ctx, more);
        }
        break;
      }
      if (ipx_now() >= deadline) {
        res = IPX_EBUSY;
        break;
      }
    }
  } else {
    int lr = ipx__seg_lock(seg);
    if (lr == 0) {
      res = walk(seg, r, 1);
      ipx__seg_unlock(seg);
    } else if (lr == IPX_ECORRUPT) {
      walk(seg, r, 0);
      res = IPX_ECORRUPT;
    } else {
      res = lr;
    }
  }
  free(r);
  return res;
}

int ipx_segment_flush(ipx_segment_t *seg) {
  if (!seg) return IPX_EINVAL;
  if (seg->backing != IPX__SEG_FILE || seg->access != IPX_READ_WRITE) return 0;
  return ipx__sos_sync(seg->base, (size_t)seg->size);
}

/* ---- handles --------------------------------------------------------- */

int ipx_segment_handle_from_address(const ipx_segment_t *seg, const void *addr,
                                    uint64_t *handle) {
  if (!seg || !handle) return IPX_EINVAL;
  uintptr_t a = (uintptr_t)addr, b = (uintptr_t)seg->base;
  if (a < b || a - b >= seg->size) return IPX_ERANGE;
  *handle = (uint64_t)(a - b);
  return 0;
}

int ipx_segment_address_from_handle(const ipx_segment_t *seg, uint64_t handle,
                                    void **addr) {
  if (!seg || !addr) return IPX_EINVAL;
  if (handle >= seg->size) return IPX_ERANGE;
  *addr = seg->base + handle;
  return 0;
}
