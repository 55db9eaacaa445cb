/* objects_internal.h - the name index's layout (docs/FORMAT.md, section
 * "objects") and its segment layer.
 *
 * Every object is one heap block: a 64-byte header, the name and its NUL,
 * padding, an 8-byte back link (the block's offset) and then the elements.
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
#define IPX__OBJ_VERSION 1u
#define IPX__OBJ_HDR_MAGIC UINT64_C(0x314a424f58504921) /* "!IPXOBJ1" */

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

/* At the start of every object's heap block. */
struct ipx__obj_hdr {
  uint64_t magic;      /* 0  ipx__obj_magic(block offset); 0 once dead */
  uint32_t state;      /* 8  IPX__OBJ_CONSTRUCTING / IPX__OBJ_READY */
  uint8_t kind;        /* 12 ipx_object_kind_t or IPX__OBJ_TABLE */
  uint8_t align_log2;  /* 13 log2 of the elements' alignment */
  uint16_t name_len;   /* 14 bytes of name, 0..IPX_OBJECT_NAME_MAX */
  uint64_t hash;       /* 16 ipx__obj_hash(kind, name) */
  uint64_t elem_size;  /* 24 */
  uint64_t count;      /* 32 elements (TABLE: slots) */
  uint64_t data_off;   /* 40 first element, from the block's start */
  uint64_t block_size; /* 48 bytes asked of the allocator */
  uint64_t check;      /* 56 FNV-1a 64 of bytes 12..55 and the offset */
  /* 64: name, NUL; ...; data_off - 8: back link; data_off: elements */
};
IPX_STATIC_ASSERT(sizeof(struct ipx__obj_hdr) == 64, "object header size");

/* A slot: 0 empty, else (hash >> 42) << 42 | block offset >> 4. */
#define IPX__OBJ_SLOT_OFF_BITS 42
#define IPX__OBJ_MIN_SLOTS 32u

extern const struct ipx__seg_layer ipx__objects_layer;

#endif
