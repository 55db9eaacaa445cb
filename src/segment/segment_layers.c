/* The layers that live inside a segment, in dependency order (a layer's
 * hooks may use the layers listed before it): the allocator, then the name
 * index that keeps its objects in the allocator's blocks. */
#include "segment/segment_internal.h"

/* src/heap/alloc.c */
extern const struct ipx__seg_layer ipx__heap_layer;
/* src/objects/objects.c */
extern const struct ipx__seg_layer ipx__objects_layer;

const struct ipx__seg_layer *const ipx__seg_layers[] = {
    &ipx__heap_layer,
    &ipx__objects_layer,
    NULL /* end */
};
