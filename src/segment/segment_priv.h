/* Private to src/segment/: shared between segment.c and segment_resize.c. */
#ifndef IPX_SEGMENT_PRIV_H
#define IPX_SEGMENT_PRIV_H

#include <string.h>

#include "segment/segment_internal.h"

/* Open-file-description lock bytes (see segment.c). */
#define IPX__SEG_LOCK_OPEN 0
#define IPX__SEG_LOCK_SETUP 1

#define IPX__SEG_MSG_LEN 192
#define IPX__SEG_MSG_MAX 32

struct ipx__seg_report {
  ipx_segment_report_fn fn;
  void *ctx;
  unsigned count;
  /* Read-only walks keep their messages until the walk proved stable. */
  int buffered;
  unsigned nmsgs;
  char msgs[IPX__SEG_MSG_MAX][IPX__SEG_MSG_LEN];
};

/* Copy the header out of a mapping just made.  Its first access takes the
 * page fault; taken inside the string copy (rep movs) that fault costs
 * ~180 ns more than on a plain load (measured on x86-64 here), so a plain
 * load touches the page first. */
static inline void ipx__seg_copy_header(struct ipx__seg_header *dst,
                                        const void *base) {
  (void)*(const volatile uint64_t *)base;
  memcpy(dst, base, sizeof *dst);
}

uint64_t ipx__seg_geo_check(const struct ipx__seg_geo *g, uint32_t slot);
int ipx__seg_validate_ex(const struct ipx__seg_header *h, uint64_t actual,
                         int *pending, struct ipx__seg_report *r);

/* With OPEN held exclusively on fd: finish the resize its geometry records,
 * if any (segment_resize.c). */
int ipx__seg_resize_settle(int fd, enum ipx__seg_backing backing);

/* Grow by `extra` bytes, or shrink to fit when extra is 0, the segment at
 * path (segment_resize.c). */
int ipx__seg_resize_path(const char *path, int nofollow,
                         enum ipx__seg_backing backing, uint64_t extra,
                         uint64_t *new_size);

#endif
