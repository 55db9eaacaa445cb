/* Open + check of a caller buffer holding arbitrary bytes, then every layer's
 * calls over whatever the bytes say (find, walk, count, and for a writer
 * allocate, resize, construct, destroy, reserve, zero), then check again: each
 * may find damage and must report it, never crash.  The first input byte
 * chooses the mode: bit 0 reseals the header (recomputes the identity
 * and geometry checksums) so the fuzzer gets past them and reaches the
 * rules behind; bit 1 opens read-only.
 *
 * The lock words belong to the mutex implementation, which has its own
 * tests; to keep every run finite the boot id is cleared, so a read-write
 * open resets the lock as for a segment from an earlier boot, and a
 * read-only open sees an even generation (no writer inside) instead of
 * waiting a second for one to leave. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipx/ipx.h"
#include "segment/segment_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore(void *ctx, const char *problem) {
  (void)ctx;
  (void)problem;
}

/* What a walk reports must lie in the mapping: read its first and last
 * byte (ASan stops the run otherwise) and query it back. */
static int visit(void *ctx, const ipx_object_info_t *info) {
  ipx_segment_t *s = ctx;
  const volatile unsigned char *a = info->address;
  if (info->count && info->elem_size &&
      info->elem_size <= SIZE_MAX / info->count) {
    (void)a[0];
    (void)a[info->elem_size * info->count - 1];
  }
  ipx_object_info_t q;
  ipx_object_query(s, info->address, &q);
  return 0;
}

/* The allocator's own paths on a fresh block of whatever heap the bytes
 * describe. */
static void resize_paths(ipx_segment_t *s) {
  void *p, *q;
  size_t n;
  if (ipx_segment_allocate(s, 100, &p) != 0) return;
  ipx_segment_usable_size(s, p, &n);
  ipx_segment_expand(s, p, 200, 4000, &n);
  ipx_segment_shrink(s, p, 40, &n);
  if (ipx_segment_reallocate(s, p, 3000, &q) == 0) p = q;
  ipx_segment_deallocate(s, p);
  if (ipx_segment_allocate_aligned(s, 64, 256, &p) == 0)
    ipx_segment_deallocate(s, p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned mode = data[0];
  data++;
  size--;
  /* Inputs shorter than a segment are padded with zeros up to it, so short
   * inputs still exercise the header rules. */
  size_t n = size < IPX_SEGMENT_MIN_SIZE ? IPX_SEGMENT_MIN_SIZE : size;
  if (n > (1u << 20)) return 0;
  unsigned char *buf = aligned_alloc(IPX_SEGMENT_BUFFER_ALIGN,
                                     (n + 63) & ~(size_t)63);
  if (!buf) return 0;
  memset(buf, 0, n);
  memcpy(buf, data, size);
  struct ipx__seg_header *h = (struct ipx__seg_header *)(void *)buf;
  memset(h->boot_id, 0, sizeof h->boot_id);
  if (mode & 2) h->generation &= ~UINT64_C(1);
  if (mode & 1) ipx__seg_seal(h);
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_OPEN_ONLY;
  o.access = (mode & 2) ? IPX_READ_ONLY : IPX_READ_WRITE;
  ipx_segment_t *s;
  if (ipx_segment_open_buffer(&s, buf, n, &o) == 0) {
    uint64_t v;
    ipx_segment_check(s, ignore, NULL);
    ipx_segment_free_memory(s, &v);
    ipx_segment_named_count(s, &v);
    /* The layers' own paths over whatever the bytes say: a lookup, and for
     * a writer an allocation and a construction (each may find damage and
     * must report it, not crash). */
    void *p;
    size_t count;
    int found = ipx_object_find(s, IPX_OBJECT_NAMED, "seed-a", sizeof(int),
                                &p, &count) == 0;
    int all;
    size_t largest;
    ipx_object_foreach(s, IPX_OBJECT_NAMED_BIT | IPX_OBJECT_UNIQUE_BIT,
                       visit, s);
    ipx_object_count(s, IPX_OBJECT_UNIQUE, &v);
    ipx_segment_all_memory_deallocated(s, &all);
    if (!(mode & 2)) {
      if (ipx_segment_allocate(s, 48, &p) == 0) ipx_segment_deallocate(s, p);
      if (ipx_object_construct(s, IPX_OBJECT_NAMED, "fuzz", 8, 0, 2, NULL,
                               NULL, &p) == 0)
        ipx_object_destroy(s, IPX_OBJECT_NAMED, "fuzz", 8);
      int made;
      if (ipx_object_find_or_construct(s, IPX_OBJECT_UNIQUE, "fuzz-u", 16, 0,
                                       1, NULL, NULL, &p, &count, &made) == 0)
        ipx_object_destroy_ptr(s, p);
      /* Growing the index rewrites every entry of the table. */
      ipx_object_reserve(s, 64);
      if (found && ipx_object_find(s, IPX_OBJECT_NAMED, "seed-a", sizeof(int),
                                   &p, &count) == 0)
        ipx_object_destroy_ptr(s, p);
      resize_paths(s);
      ipx_segment_largest_free_block(s, &largest);
      ipx_segment_zero_free_memory(s);
      /* Whatever the calls above did, the segment is still one that check
       * can walk. */
      ipx_segment_check(s, ignore, NULL);
    }
    ipx_segment_close(s);
  }
  free(buf);
  return 0;
}
