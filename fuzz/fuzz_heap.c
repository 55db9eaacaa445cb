/* The allocator driven by the input: each byte picks an operation (allocate,
 * aligned allocate, free, reallocate, expand, shrink, a bad free, a flush of
 * the caches, zeroing) and the bytes after it its slot and size, on a small
 * heap-backed segment.  A shadow of every live block (address, size asked,
 * usable size, a fill byte) is checked after every operation (the block
 * just changed in full, the others' first and last bytes; everything every
 * 16 operations and at the end): blocks never overlap, stay inside the
 * heap, keep their alignment and contents, and have at least the usable
 * size asked for; at the end `check` passes, and freeing everything
 * gives back exactly the free memory the segment started with.  Any breach
 * aborts, which libFuzzer reports as a crash.  Coverage guidance finds the
 * size and order combinations a random property test would rarely reach
 * (splits that leave exactly a minimum block, growth into the wilderness,
 * aligned leads, cache flushes in the middle of a sequence). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipx/ipx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SLOTS 32
#define HEAP (256u << 10)

struct live {
  unsigned char *p;
  size_t n;  /* bytes asked for (and filled) */
  size_t us; /* usable size, as last read */
  unsigned char fill;
};

struct input {
  const uint8_t *d;
  size_t n, i;
};

static unsigned next(struct input *in) {
  return in->i < in->n ? in->d[in->i++] : 0;
}

/* Sizes cluster where the allocator's rules change: tiny, around the cache
 * limit (1024), around a page, and now and then large. */
static size_t pick_size(struct input *in) {
  unsigned a = next(in), b = next(in);
  switch (a >> 6) {
  case 0: return a & 63u;
  case 1: return 960u + ((a & 63u) << 1) + (b & 1u);
  case 2: return 4000u + (((a & 63u) << 8) | b) % 200u;
  default: return (((a & 63u) << 8) | b) * 4u;
  }
}

static void fill(struct live *l, unsigned char c) {
  l->fill = c;
  memset(l->p, c, l->n);
}

/* Slot t was just changed (or -1): its usable size is read again and its
 * bytes checked; every live block keeps its bounds, alignment and first
 * and last bytes (where a stray header would land), and t overlaps none.
 * With `full`, every block's every byte and usable size too. */
static void verify(ipx_segment_t *s, struct live *live, int t, int full) {
  unsigned char *base = ipx_segment_base(s);
  size_t total = (size_t)ipx_segment_size(s);
  for (int i = 0; i < SLOTS; i++) {
    struct live *a = &live[i];
    if (!a->p) continue;
    if (i == t || full) {
      if (ipx_segment_usable_size(s, a->p, &a->us) != 0 || a->us < a->n)
        abort();
      if (a->p < base || (size_t)(a->p - base) + a->us > total) abort();
      for (size_t k = 0; k < a->n; k++)
        if (a->p[k] != a->fill) abort();
    } else if (a->n && (a->p[0] != a->fill || a->p[a->n - 1] != a->fill)) {
      abort();
    }
  }
  for (int i = 0; i < SLOTS; i++) {
    const struct live *a = &live[i];
    if (!a->p || (!full && i != t)) continue;
    for (int j = 0; j < SLOTS; j++) {
      const struct live *b = &live[j];
      if (j == i || !b->p) continue;
      if (a->p < b->p + b->us && b->p < a->p + a->us) abort();
    }
  }
}

static void problem(void *ctx, const char *msg) {
  (void)ctx;
  (void)msg;
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ipx_segment_t *s;
  if (ipx_segment_create_heap(&s, HEAP) != 0) return 0;
  uint64_t free0, free1;
  if (ipx_segment_free_memory(s, &free0) != 0) abort();
  struct live live[SLOTS];
  memset(live, 0, sizeof live);
  struct input in = {data, size, 0};
  unsigned char c = 1;
  unsigned char *stale = NULL; /* the last block freed */
  unsigned ops = 0;
  while (in.i < in.n) {
    unsigned op = next(&in);
    int t = (int)(next(&in) % SLOTS);
    struct live *l = &live[t];
    void *p;
    size_t n, got;
    switch (op % 10) {
    case 0: /* allocate */
    case 1:
      if (l->p) break;
      n = pick_size(&in);
      if (ipx_segment_allocate(s, n, &p) == 0) {
        l->p = p;
        l->n = n;
        fill(l, c++);
      }
      break;
    case 2: { /* aligned allocate */
      if (l->p) break;
      size_t align = (size_t)1 << (next(&in) % 13u);
      n = pick_size(&in);
      if (ipx_segment_allocate_aligned(s, n, align, &p) == 0) {
        if ((uintptr_t)p % align) abort();
        l->p = p;
        l->n = n;
        fill(l, c++);
      }
      break;
    }
    case 3: /* free */
      if (!l->p) break;
      if (ipx_segment_deallocate(s, l->p) != 0) abort();
      stale = l->p;
      l->p = NULL;
      break;
    case 4: /* reallocate: the contents up to the smaller size survive */
      if (!l->p) break;
      n = pick_size(&in);
      if (ipx_segment_reallocate(s, l->p, n, &p) == 0) {
        size_t keep = n < l->n ? n : l->n;
        for (size_t k = 0; k < keep; k++)
          if (((unsigned char *)p)[k] != l->fill) abort();
        l->p = p;
        l->n = n;
        fill(l, c++);
      }
      break;
    case 5: /* expand in place */
      if (!l->p) break;
      n = pick_size(&in);
      if (ipx_segment_expand(s, l->p, n, n + pick_size(&in), &got) == 0) {
        if (got < n) abort();
        l->n = n > l->n ? n : l->n;
        fill(l, c++);
      }
      break;
    case 6: /* shrink in place */
      if (!l->p) break;
      n = pick_size(&in);
      if (n > l->n) break;
      if (ipx_segment_shrink(s, l->p, n, &got) != 0 || got < n) abort();
      l->n = n;
      break;
    case 7: { /* bad frees (interior, stale, anywhere): refused */
      unsigned k = next(&in);
      unsigned char *q;
      if (k % 3 == 0 && l->p)
        q = l->p + 16;
      else if (k % 3 == 1 && stale)
        q = stale;
      else
        q = (unsigned char *)ipx_segment_base(s) + HEAP / 2 + 16u * (k / 3);
      int ours = 0;
      for (int i = 0; i < SLOTS; i++) ours |= live[i].p == q;
      if (!ours && ipx_segment_deallocate(s, q) == 0) abort();
      break;
    }
    case 8: /* the caches given back to the lists */
      ipx_segment_largest_free_block(s, &got);
      break;
    default:
      if ((next(&in) & 7u) == 0) ipx_segment_zero_free_memory(s);
      break;
    }
    verify(s, live, t, (++ops & 15u) == 0);
  }
  verify(s, live, -1, 1);
  if (ipx_segment_check(s, problem, NULL) != 0) abort();
  for (int i = 0; i < SLOTS; i++)
    if (live[i].p && ipx_segment_deallocate(s, live[i].p) != 0) abort();
  int all;
  if (ipx_segment_all_memory_deallocated(s, &all) != 0 || !all) abort();
  if (ipx_segment_free_memory(s, &free1) != 0 || free1 != free0) abort();
  ipx_segment_close(s);
  return 0;
}
