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
 * with the same steps, which are all idempotent. */
#include <errno.h>
#include <string.h>

#include "os/ofd.h"
#include "os/segment_os.h"
#include "segment/segment_priv.h"

/* Write geometry {total, heap, resize_to} into the inactive slot of the
 * object's header, then switch to it. */
static int geo_commit(int fd, struct ipx__seg_header *h, uint64_t total,
                      uint64_t heap, uint64_t resize_to) {
  uint32_t n = (h->geo_slot & 1) ^ 1;
  struct ipx__seg_geo *g = &h->geo[n];
  g->total_size = total;
  g->heap_size = heap;
  g->resize_to = resize_to;
  g->check = ipx__seg_geo_check(g, n);
  int r = ipx__sos_pwrite(fd, g, sizeof *g,
                          offsetof(struct ipx__seg_header, geo) + n * sizeof *g);
  if (r) return r;
  h->geo_slot = n;
  return ipx__sos_pwrite(fd, &h->geo_slot, sizeof h->geo_slot,
                         offsetof(struct ipx__seg_header, geo_slot));
}

static int read_header(int fd, struct ipx__seg_header *h, uint64_t *size,
                       int *pending) {
  int r = ipx__sos_size(fd, size);
  if (r) return r;
  if (*size < sizeof *h) return IPX_ECORRUPT;
  r = ipx__sos_pread(fd, h, sizeof *h, 0);
  if (r) return r;
  return ipx__seg_validate(h, *size, pending);
}

static int any_hook(size_t off) {
  for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l; l++) {
    void (*fn)(void);
    memcpy(&fn, (const char *)*l + off, sizeof fn);
    if (fn) return 1;
  }
  return 0;
}

int ipx__seg_resize_settle(int fd, enum ipx__seg_backing backing) {
  struct ipx__seg_header h;
  uint64_t st;
  int pending;
  int r = read_header(fd, &h, &st, &pending);
  if (r || !pending) return r;
  const struct ipx__seg_geo g = h.geo[h.geo_slot];
  uint64_t target = g.resize_to;
  uint64_t new_heap = target - IPX_SEGMENT_HEADER_SIZE;
  if (st < target) {
    r = ipx__sos_resize(fd, target, 0);
    if (r) {
      /* Nothing changed yet: drop the intent rather than leave every later
       * opener failing the same way. */
      geo_commit(fd, &h, g.total_size, g.heap_size, 0);
      return r;
    }
    st = target;
  }
  if (g.heap_size != new_heap &&
      any_hook(offsetof(struct ipx__seg_layer, resize))) {
    void *base;
    r = ipx__sos_map(fd, (size_t)st, IPX__SOS_RW, NULL, &base);
    if (r) return r;
    struct ipx_segment tmp = {base, st, fd, backing, IPX_READ_WRITE, 0, 0};
    for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l && !r; l++)
      if ((*l)->resize) r = (*l)->resize(&tmp, g.heap_size, new_heap);
    ipx__sos_unmap(base, (size_t)st);
    if (r) return r;
  }
  if (st > target) {
    r = ipx__sos_resize(fd, target, 0);
    if (r) return r;
  }
  return geo_commit(fd, &h, target, new_heap, 0);
}

/* The smallest segment size that keeps what the layers hold. */
static int fit_size(int fd, enum ipx__seg_backing backing, uint64_t total,
                    uint64_t *out) {
  uint64_t min_heap = 0;
  if (any_hook(offsetof(struct ipx__seg_layer, min_heap))) {
    void *base;
    int r = ipx__sos_map(fd, (size_t)total, IPX__SOS_RW, NULL, &base);
    if (r) return r;
    struct ipx_segment tmp = {base, total, fd, backing, IPX_READ_WRITE, 0, 0};
    for (const struct ipx__seg_layer *const *l = ipx__seg_layers; *l; l++)
      if ((*l)->min_heap) {
        r = (*l)->min_heap(&tmp, &min_heap);
        break;
      }
    ipx__sos_unmap(base, (size_t)total);
    if (r) return r;
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
  int r = ipx__ofd_lock(fd, IPX__OFD_WRITE, IPX__SEG_LOCK_OPEN, 1, 0);
  if (!r) r = ipx__seg_resize_settle(fd, backing);
  struct ipx__seg_header h;
  uint64_t st = 0;
  int pending = 0;
  if (!r) r = read_header(fd, &h, &st, &pending);
  if (!r && pending) r = IPX_ECORRUPT;
  uint64_t total = st, target = st;
  if (!r) {
    if (extra) {
      if (extra > IPX_SEGMENT_MAX_SIZE - total || total + extra > SIZE_MAX / 2)
        r = IPX_ETOOBIG;
      else
        target = total + extra;
    } else {
      r = fit_size(fd, backing, total, &target);
      if (!r && target > total) target = total;
    }
  }
  if (!r && target != total) {
    r = geo_commit(fd, &h, total, total - IPX_SEGMENT_HEADER_SIZE, target);
    if (!r) r = ipx__seg_resize_settle(fd, backing);
  }
  ipx__sos_close(fd);
  if (!r && new_size) *new_size = target;
  return r;
}
