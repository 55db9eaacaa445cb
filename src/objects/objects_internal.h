/* objects_internal.h - the name index's layout (docs/FORMAT.md, section
 * "objects") and its segment layer.
 *
 * Every object is one heap block: a 32-byte header, the name and its NUL,
 * padding, a 2-byte back link (the elements' distance from the block's
 * start / 16) and then the elements.
 * Everything a find reads (magic, kind, state, name length, element size
 * and count) and a short name share the header's 32 bytes plus the name:
 * with a 12-byte name and an int, 52 bytes in all.
 * The header's magic is derived from the block's own offset, so a header
 * copied elsewhere, or the stale bytes of a freed one, never look valid
 * (and every header is unmarked before its block is freed).
 *
 * The index is an open-addressing hash table (linear probing, load <= 1/2)
 * in a heap block of its own (kind TABLE), found through the root in the
 * segment header's index_root.  The table is a cache: the headers are the
 * truth, and the repair hook rebuilds the table from a heap walk whenever a
 * lock holder died inside an operation of the index (root.busy != 0). */
#ifndef IPX_OBJECTS_INTERNAL_H
#define IPX_OBJECTS_INTERNAL_H

#include <stdint.h>

#include "ipx/objects.h"
#include "segment/segment_internal.h"

#define IPX__OBJ_ROOT_MAGIC 0x4f585049u /* "IPXO" little-endian */
#define IPX__OBJ_VERSION 2u
#define IPX__OBJ_HDR_MAGIC UINT64_C(0x324a424f58504921) /* "!IPXOBJ2" */

/* Header kinds: the public ones and the index's own table. */
#define IPX__OBJ_TABLE 4u
/* Header states. */
#define IPX__OBJ_CONSTRUCTING 1u
#define IPX__OBJ_READY 2u

/* In the segment header's index_root (64 bytes). */
struct ipx__obj_root {
  uint32_t magic;    /* 0  IPX__OBJ_ROOT_MAGIC, or 0: no index yet */
  uint16_t version;  /* 4  IPX__OBJ_VERSION */
  uint16_t walking;  /* 6  foreach walks the lock holder is inside */
  uint32_t busy;     /* 8  index operations the lock holder is inside */
  uint32_t reserved; /* 12 zero */
  uint64_t table;    /* 16 offset of the TABLE block, 0 if none */
  uint64_t mask;     /* 24 slots - 1 */
  uint64_t used;     /* 32 occupied slots */
  uint64_t named;    /* 40 finished named objects */
  uint64_t unique;   /* 48 finished unique objects */
  uint64_t pending;  /* 56 block being allocated or freed, or 0 */
};
IPX_STATIC_ASSERT(sizeof(struct ipx__obj_root) == 64, "index root size");

/* At the start of every object's heap block.  The elements start at
 * data_off = align_up(off + 32 + name_len + 1 + 2, 1 << align_log2) - off
 * (off the block's offset: alignment in offset space, so the same in every
 * process), and end at data_off + elem_size * count within the block. */
struct ipx__obj_hdr {
  uint64_t magic;     /* 0  ipx__obj_magic(block offset); 0 once dead */
  uint8_t state;      /* 8  IPX__OBJ_CONSTRUCTING / IPX__OBJ_READY */
  uint8_t kind;       /* 9  ipx_object_kind_t or IPX__OBJ_TABLE */
  uint8_t align_log2; /* 10 log2 of the elements' alignment, 4..12 */
  uint8_t name_len;   /* 11 bytes of name, 0..IPX_OBJECT_NAME_MAX */
  uint32_t check;     /* 12 of bytes 9..11, elem_size, count and the offset */
  uint64_t elem_size; /* 16 */
  uint64_t count;     /* 24 elements (TABLE: slots) */
  /* 32: name, NUL; ...; data_off - 2: back link; data_off: elements */
};
/* The back link: data_off / 16 as a uint16_t right before the elements, so
 * an element address leads to its header (data_off <= 32 + 255 + 3 + 4095
 * rounded up to the alignment, so / 16 fits). */
#define IPX__OBJ_BACK_SIZE 2u
IPX_STATIC_ASSERT(sizeof(struct ipx__obj_hdr) == 32, "object header size");
IPX_STATIC_ASSERT(IPX_OBJECT_NAME_MAX <= 255, "name length fits a byte");

/* A slot: 0 empty, else (hash >> 42) << 42 | block offset >> 4. */
#define IPX__OBJ_SLOT_OFF_BITS 42
#define IPX__OBJ_MIN_SLOTS 32u

extern const struct ipx__seg_layer ipx__objects_layer;

#endif
