/* Memory mappings: mmap, munmap, msync, madvise and the page size.
 * Callers pass page-aligned offsets and lengths already checked for size. */
#ifndef IPX_OS_MAP_H
#define IPX_OS_MAP_H

#include <stddef.h>
#include <stdint.h>

enum ipx__map_kind {
  IPX__MAP_READ,   /* PROT_READ, MAP_SHARED */
  IPX__MAP_WRITE,  /* PROT_READ|PROT_WRITE, MAP_SHARED */
  IPX__MAP_COPY    /* PROT_READ|PROT_WRITE, MAP_PRIVATE */
};

/* The system page size (cached; thread-safe). */
size_t ipx__page_size(void);

/* Map len bytes of fd at offset (fd -1: anonymous shared memory).  With a
 * hint, MAP_FIXED_NOREPLACE is tried there first: an occupied range is
 * never replaced.  If the hint cannot be honoured, strict returns IPX_EBUSY
 * and otherwise the mapping goes wherever the kernel puts it. */
int ipx__map(void **out, int fd, uint64_t offset, size_t len,
             enum ipx__map_kind kind, void *hint, int strict);

int ipx__unmap(void *addr, size_t len);

/* msync of a page-aligned range, MS_SYNC or MS_ASYNC. */
int ipx__map_sync(void *addr, size_t len, int async);

/* madvise; advice is an ipx_advice_t. */
int ipx__map_advise(void *addr, size_t len, int advice);

#endif
