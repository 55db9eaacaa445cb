/* Mapped regions of shared memory objects, files and anonymous memory. */
#include "ipx/region.h"

#include <errno.h>
#include <stdlib.h>

#include "ipx/error.h"
#include "os/map.h"
#include "os/shm.h"
#include "region/internal.h"

struct ipx_region {
  void *base;       /* page-aligned start of the mapping */
  size_t map_len;   /* length given to mmap */
  char *addr;       /* the byte asked for */
  uint64_t size;    /* usable bytes from addr */
  ipx_access_t access;
};

void ipx_region_opts_init(ipx_region_opts_t *opts) {
  if (!opts) return;
  opts->offset = 0;
  opts->size = 0;
  opts->hint = NULL;
  opts->flags = 0;
}

size_t ipx_page_size(void) { return ipx__page_size(); }

static enum ipx__map_kind kind_of(ipx_access_t access) {
  return access == IPX_READ_ONLY    ? IPX__MAP_READ
         : access == IPX_READ_WRITE ? IPX__MAP_WRITE
                                    : IPX__MAP_COPY;
}

int ipx__region_map_fd(ipx_region_t **out, int fd, ipx_access_t fd_access,
                       ipx_access_t access, const ipx_region_opts_t *opts) {
  ipx_region_opts_t dflt;
  if (!opts) {
    ipx_region_opts_init(&dflt);
    opts = &dflt;
  }
  if (access != IPX_READ_ONLY && access != IPX_READ_WRITE &&
      access != IPX_COPY_ON_WRITE)
    return IPX_EINVAL;
  if ((opts->flags & ~IPX_REGION_HINT_STRICT) != 0) return IPX_EINVAL;
  if (access == IPX_READ_WRITE && fd_access != IPX_READ_WRITE)
    return IPX_EREADONLY;
  if (opts->size > IPX_REGION_SIZE_MAX) return IPX_ETOOBIG;

  uint64_t obj_size;
  int r = ipx__fd_size(fd, &obj_size);
  if (r != 0) return r;
  if (obj_size == 0) return IPX_EEMPTY;
  if (opts->offset >= obj_size) return IPX_ERANGE;
  uint64_t size = opts->size ? opts->size : obj_size - opts->offset;
  if (size > obj_size - opts->offset) return IPX_ERANGE;
  if (size > IPX_REGION_SIZE_MAX) return IPX_ETOOBIG;

  size_t page = ipx__page_size();
  size_t delta = (size_t)(opts->offset % page);
  char *hint = NULL;
  if (opts->hint) {
    if ((uintptr_t)opts->hint % page != delta) return IPX_EINVAL;
    hint = (char *)opts->hint - delta;
  }

  ipx_region_t *reg = malloc(sizeof *reg);
  if (!reg) return -ENOMEM;
  reg->map_len = (size_t)size + delta;
  r = ipx__map(&reg->base, fd, opts->offset - delta, reg->map_len,
               kind_of(access), hint,
               (opts->flags & IPX_REGION_HINT_STRICT) != 0);
  if (r != 0) {
    free(reg);
    return r;
  }
  reg->addr = (char *)reg->base + delta;
  reg->size = size;
  reg->access = access;
  *out = reg;
  return 0;
}

int ipx_region_map_shm(ipx_region_t **out, const ipx_shm_t *shm,
                       ipx_access_t access, const ipx_region_opts_t *opts) {
  if (!out) return IPX_EINVAL;
  *out = NULL;
  if (!shm) return IPX_EINVAL;
  return ipx__region_map_fd(out, ipx_shm_fd(shm), ipx_shm_access(shm), access,
                            opts);
}

int ipx_region_map_file(ipx_region_t **out, const ipx_file_mapping_t *fm,
                        ipx_access_t access, const ipx_region_opts_t *opts) {
  if (!out) return IPX_EINVAL;
  *out = NULL;
  if (!fm) return IPX_EINVAL;
  return ipx__region_map_fd(out, ipx_file_mapping_fd(fm),
                            ipx_file_mapping_access(fm), access, opts);
}

int ipx_region_anonymous(ipx_region_t **out, uint64_t size) {
  if (!out) return IPX_EINVAL;
  *out = NULL;
  if (size == 0) return IPX_EINVAL;
  if (size > IPX_REGION_SIZE_MAX) return IPX_ETOOBIG;
  ipx_region_t *reg = malloc(sizeof *reg);
  if (!reg) return -ENOMEM;
  reg->map_len = (size_t)size;
  int r = ipx__map(&reg->base, -1, 0, reg->map_len, IPX__MAP_WRITE, NULL, 0);
  if (r != 0) {
    free(reg);
    return r;
  }
  reg->addr = reg->base;
  reg->size = size;
  reg->access = IPX_READ_WRITE;
  *out = reg;
  return 0;
}

int ipx_region_unmap(ipx_region_t *region) {
  if (!region) return 0;
  int r = ipx__unmap(region->base, region->map_len);
  free(region);
  return r;
}

void *ipx_region_address(const ipx_region_t *region) {
  return region ? region->addr : NULL;
}

uint64_t ipx_region_size(const ipx_region_t *region) {
  return region ? region->size : 0;
}

ipx_access_t ipx_region_access(const ipx_region_t *region) {
  return region ? region->access : (ipx_access_t)0;
}

/* The whole pages covering [offset, offset+size) of the region (size 0 =
 * to the end); 0 with *len 0 when the range is empty. */
static int page_range(const ipx_region_t *region, uint64_t offset,
                      uint64_t size, void **start, size_t *len) {
  if (offset > region->size) return IPX_ERANGE;
  if (size == 0) size = region->size - offset;
  if (size > region->size - offset) return IPX_ERANGE;
  size_t page = ipx__page_size();
  uintptr_t from = (uintptr_t)region->addr + (uintptr_t)offset;
  uintptr_t aligned = from - from % page;
  *start = (void *)aligned;
  *len = size ? (size_t)(from - aligned + size) : 0;
  return 0;
}

int ipx_region_flush(ipx_region_t *region, uint64_t offset, uint64_t size,
                     unsigned flags) {
  if (!region || (flags & ~IPX_FLUSH_ASYNC) != 0) return IPX_EINVAL;
  void *start;
  size_t len;
  int r = page_range(region, offset, size, &start, &len);
  if (r != 0 || len == 0) return r;
  return ipx__map_sync(start, len, (flags & IPX_FLUSH_ASYNC) != 0);
}

int ipx_region_advise(ipx_region_t *region, uint64_t offset, uint64_t size,
                      ipx_advice_t advice) {
  if (!region) return IPX_EINVAL;
  if (advice != IPX_ADVICE_NORMAL && advice != IPX_ADVICE_SEQUENTIAL &&
      advice != IPX_ADVICE_RANDOM && advice != IPX_ADVICE_WILLNEED &&
      advice != IPX_ADVICE_DONTNEED)
    return IPX_EINVAL;
  void *start;
  size_t len;
  int r = page_range(region, offset, size, &start, &len);
  if (r != 0 || len == 0) return r;
  return ipx__map_advise(start, len, (int)advice);
}
