/* Grow and shrink-to-fit (Boost: managed_shared_memory::grow and
 * shrink_to_fit, static functions working by name).
 *
 * Only with no handle open anywhere: the caller takes the OPEN
 * open-file-description lock exclusively, without waiting (IPX_EBUSY).
 *
 * Crash safety: the geometry is double-buffered (segment_internal.h).  A
 * resize first records its target (resize_to), then changes the object's
 * size and lets the layers adapt, then commits the new geometry, each step
 * one atomic switch of the geometry slot.  Whoever next opens the segment
 * read-write (or resizes it) and finds a recorded target finishes the job
 * with the same steps, which are all idempotent.
 *
 * Everything goes through one shared mapping of the object: the header is
 * read (and validated from a copy) and the geometry committed in it, so a
 * grow costs open, lock, fstat, mmap, ftruncate, munmap and close.  A grow
 * maps the grown size up front; pages past the object's end are touched
 * only once ftruncate has made them part of it. */
#include <errno.h>
#include <string.h>

#include "os/ofd.h"
#include "os/segment_os.h"
#include "segment/segment_priv.h"

/* One resize at work: the object, a shared mapping of it, and a validated
 * copy of its header whose geometry the commits keep current. */
struct rs {
  int fd;
  enum ipx__seg_backing backing;
  uint64_t size; /* the object's size */
  unsigned char *base;
  size_t len; /* bytes mapped at base (may extend past the object's end) */
  struct ipx__seg_header h;
};

/* Make the mapping cover at least len bytes.  The old mapping stays until
 * the new one exists, so a failure leaves the header reachable. */
static int rs_map(struct rs *x, uint64_t len) {
  if (x->base && x->len >= len) return 0;
  if (len > SIZE_MAX / 2) return IPX_ETOOBIG;
  void *b;
  int r = ipx__sos_map(x->fd, (size_t)len, IPX__SOS_RW, NULL, &b);
  if (r) return r;
  if (x->base) ipx__sos_unmap(x->base, x->len);
  x->base = b;
  x->len = (size_t)len;
  return 0;
}

static void rs_unmap(struct rs *x) {
  if (x->base) ipx__sos_unmap(x->base, x->len);
  x->base = NULL;
}

/* Size the object, map it (and `extra` bytes more when that is a size a
 * segment may have: the grow to come then needs no second mapping), and
 * validate a copy of its header. */
static int rs_load(struct rs *x, uint64_t extra, int *pending) {
  int r = ipx__sos_size(x->fd, &x->size);
  if (r) return r;
  /* Never touch a page the object does not have; and a size no segment
   * can have is not mapped at all. */
  if (x->size < sizeof x->h || x->size > IPX_SEGMENT_MAX_SIZE)
    return IPX_ECORRUPT;
  uint64_t len = x->size;
  if (extra <= IPX_SEGMENT_MAX_SIZE - x->size) len += extra;
  r = rs_map(x, len);
  if (r && len > x->size) r = rs_map(x, x->size);
  if (r) return r;
  ipx__seg_copy_header(&x->h, x->base);
  return ipx__seg_validate(&x->h, x->size, pending);
}

/* Write geometry {total, heap, resize_to} into the inactive slot of the
 * header, then switch to it.  A process killed between the two leaves the
 * active slot as it was (the inactive one is never read). */
static void geo_commit(struct rs *x, uint64_t total, uint64_t heap,
                       uint64_t resize_to) {
  struct ipx__seg_header *m = (struct ipx__seg_header *)(void *)x->base;
  uint32_t n = (x->h.geo_slot & 1) ^ 1;
  struct ipx__seg_geo g = {total, heap, resize_to, 0};
  g.check = ipx__seg_geo_check(&g, n);
  memcpy(&m->geo[n], &g, sizeof g);
  __atomic_store_n(&m->geo_slot, n, __ATOMIC_RELEASE);
  x->h.geo[n] = g;
  x->h.geo_slot = n;
}

static int any_hook(size_t off) {
  for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l; l++) {
    void (*fn)(void);
    memcpy(&fn, (const char *)*l + off, sizeof fn);
    if (fn) return 1;
  }
  return 0;
}

/* Finish the resize the validated header records. */
static int settle(struct rs *x) {
  const struct ipx__seg_geo g = x->h.geo[x->h.geo_slot & 1];
  uint64_t target = g.resize_to;
  uint64_t new_heap = target - IPX_SEGMENT_HEADER_SIZE;
  int r = rs_map(x, target);
  if (!r && x->size < target) r = ipx__sos_resize(x->fd, target, 0);
  if (r) {
    /* Nothing changed yet: drop the intent rather than leave every later
     * opener failing the same way. */
    if (x->size < target) geo_commit(x, g.total_size, g.heap_size, 0);
    return r;
  }
  if (x->size < target) x->size = target;
  if (g.heap_size != new_heap &&
      any_hook(offsetof(struct ipx__seg_layer, resize))) {
    struct ipx_segment tmp = {x->base, x->size, x->fd, x->backing,
                              IPX_READ_WRITE, 0, 0, NULL};
    for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l && !r; l++)
      if ((*l)->resize) r = (*l)->resize(&tmp, g.heap_size, new_heap);
    if (r) return r;
  }
  if (x->size > target) {
    r = ipx__sos_resize(x->fd, target, 0);
    if (r) return r;
    x->size = target;
  }
  geo_commit(x, target, new_heap, 0);
  return 0;
}

int ipx__seg_resize_settle(int fd, enum ipx__seg_backing backing) {
  struct rs x = {.fd = fd, .backing = backing};
  int pending;
  int r = rs_load(&x, 0, &pending);
  if (!r && pending) r = settle(&x);
  rs_unmap(&x);
  return r;
}

/* The smallest segment size that keeps what the layers hold. */
static int fit_size(struct rs *x, uint64_t *out) {
  uint64_t min_heap = 0;
  struct ipx_segment tmp = {x->base, x->size, x->fd, x->backing,
                            IPX_READ_WRITE, 0, 0, NULL};
  for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l; l++)
    if ((*l)->min_heap) {
      int r = (*l)->min_heap(&tmp, &min_heap);
      if (r) return r;
      break;
    }
  uint64_t want = IPX_SEGMENT_HEADER_SIZE + min_heap;
  if (want < min_heap || want > IPX_SEGMENT_MAX_SIZE) return IPX_ECORRUPT;
  want = (want + 4095) & ~UINT64_C(4095);
  *out = want < IPX_SEGMENT_MIN_SIZE ? IPX_SEGMENT_MIN_SIZE : want;
  return 0;
}

/* grow (extra > 0) or shrink to fit (extra == 0) the segment at path. */
int ipx__seg_resize_path(const char *path, int nofollow,
                         enum ipx__seg_backing backing, uint64_t extra,
                         uint64_t *new_size) {
  int fd = ipx__sos_open(path, 1, nofollow);
  if (fd < 0) return fd == -ENOENT ? IPX_ENOTFOUND
                     : fd == -ELOOP && nofollow ? IPX_ECORRUPT
                                                : fd;
  struct rs x = {.fd = fd, .backing = backing};
  int pending = 0;
  int r = ipx__ofd_lock(fd, IPX__OFD_WRITE, IPX__SEG_LOCK_OPEN, 1, 0);
  if (!r) r = rs_load(&x, extra, &pending);
  if (!r && pending) r = settle(&x);
  uint64_t total = x.size, target = x.size;
  if (!r) {
    if (extra) {
      if (extra > IPX_SEGMENT_MAX_SIZE - total || total + extra > SIZE_MAX / 2)
        r = IPX_ETOOBIG;
      else
        target = total + extra;
    } else {
      r = fit_size(&x, &target);
      if (!r && target > total) target = total;
    }
  }
  if (!r && target != total) {
    r = rs_map(&x, target);
    if (!r) {
      geo_commit(&x, total, total - IPX_SEGMENT_HEADER_SIZE, target);
      r = settle(&x);
    }
  }
  rs_unmap(&x);
  ipx__sos_close(fd);
  if (!r && new_size) *new_size = target;
  return r;
}
