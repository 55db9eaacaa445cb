/* The layers that live inside a segment, in dependency order (a layer's
 * hooks may use the layers listed before it).  The allocator and the name
 * index add themselves here. */
#include "segment/segment_internal.h"

extern const struct ipx__seg_layer ipx__scaffold_heap_layer;
extern const struct ipx__seg_layer ipx__objects_layer;

const struct ipx__seg_layer *const ipx__seg_layers[] = {
    &ipx__scaffold_heap_layer, &ipx__objects_layer, NULL /* end */
};
