/* Stand-in allocator layer: formats and repairs the heap inside a segment
 * until the allocator registers its own layer (branch heap).  Removed when
 * that lands. */
#include "heap/heap.h"
#include "objects/objects_internal.h"

static int sc_init(ipx_segment_t *seg) {
  return ipx__heap_init(seg->base, ipx__seg_heap_off(seg),
                        ipx__seg_heap_size(seg));
}

static int sc_repair(ipx_segment_t *seg) {
  int r = ipx__heap_recover(seg->base, ipx__seg_heap_off(seg));
  return r < 0 ? r : 0;
}

static void sc_report(void *ctx, const char *msg) {
  ipx__seg_problem(ctx, "heap: %s", msg);
}

static int sc_check(ipx_segment_t *seg, struct ipx__seg_report *r) {
  return ipx__heap_check(seg->base, ipx__seg_heap_off(seg), sc_report, r);
}

const struct ipx__seg_layer ipx__scaffold_heap_layer = {
    .name = "heap", .init = sc_init, .repair = sc_repair, .check = sc_check};
