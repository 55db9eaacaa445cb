/* Seed corpus for fuzz_segment: real segment headers, each prefixed with
 * the harness's mode byte.  Usage: gen_corpus_segment DIR */
#include <stdio.h>
#include <string.h>

#include "ipx/ipx.h"
#include "segment/segment_internal.h"

static int write_seed(const char *dir, const char *name, unsigned mode,
                      const void *img, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) return 1;
  unsigned char m = (unsigned char)mode;
  int bad = fwrite(&m, 1, 1, f) != 1 || fwrite(img, 1, len, f) != len;
  return fclose(f) != 0 || bad;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  ipx_segment_t *s;
  if (ipx_segment_create_heap(&s, IPX_SEGMENT_MIN_SIZE) != 0) return 1;
  struct ipx__seg_header *h = ipx_segment_base(s);
  /* The heap part is zeros: the harness pads short inputs with zeros. */
  int bad = 0;
  bad |= write_seed(argv[1], "min-rw", 0, h, sizeof *h);
  bad |= write_seed(argv[1], "min-ro", 2, h, sizeof *h);
  bad |= write_seed(argv[1], "min-reseal", 1, h, sizeof *h);
  h->flags |= IPX__SEG_F_CORRUPT;
  strcpy(h->corrupt_reason, "seed: marked corrupt");
  bad |= write_seed(argv[1], "marked-corrupt", 0, h, sizeof *h);
  h->flags = IPX__SEG_F_REPAIR;
  memset(h->corrupt_reason, 0, sizeof h->corrupt_reason);
  h->generation = 7;
  bad |= write_seed(argv[1], "writer-inside", 0, h, sizeof *h);
  h->flags = 0;
  h->generation = 0;
  h->geo[1] = h->geo[0];
  h->geo[1].resize_to = 2 * IPX_SEGMENT_MIN_SIZE;
  h->geo_slot = 1;
  ipx__seg_seal(h);
  bad |= write_seed(argv[1], "resize-pending", 0, h, sizeof *h);
  ipx_segment_close(s);
  if (ipx_segment_create_heap(&s, 3 * IPX_SEGMENT_MIN_SIZE) != 0) return 1;
  bad |= write_seed(argv[1], "24k-rw", 0, ipx_segment_base(s),
                    3 * IPX_SEGMENT_MIN_SIZE);
  ipx_segment_close(s);
  /* A segment in use: blocks, named, unique and anonymous objects. */
  if (ipx_segment_create_heap(&s, 2 * IPX_SEGMENT_MIN_SIZE) != 0) return 1;
  void *p;
  int r = ipx_segment_allocate(s, 100, &p);
  if (r == 0) r = ipx_object_construct(s, IPX_OBJECT_NAMED, "seed-a",
                                       sizeof(int), 0, 4, NULL, NULL, &p);
  if (r == 0) r = ipx_object_construct(s, IPX_OBJECT_NAMED, "seed-b", 24, 64,
                                       1, NULL, NULL, &p);
  if (r == 0) r = ipx_object_construct(s, IPX_OBJECT_UNIQUE, "seed_type", 8,
                                       0, 2, NULL, NULL, &p);
  if (r == 0) r = ipx_object_construct(s, IPX_OBJECT_ANONYMOUS, NULL, 16, 0,
                                       3, NULL, NULL, &p);
  if (r != 0) return 1;
  bad |= write_seed(argv[1], "objects-rw", 0, ipx_segment_base(s),
                    2 * IPX_SEGMENT_MIN_SIZE);
  bad |= write_seed(argv[1], "objects-ro", 2, ipx_segment_base(s),
                    2 * IPX_SEGMENT_MIN_SIZE);
  ipx_segment_close(s);
  return bad;
}
