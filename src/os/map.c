#include "os/map.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipx/error.h"
#include "ipx/region.h"

size_t ipx__page_size(void) {
  static atomic_size_t cached;
  size_t p = atomic_load_explicit(&cached, memory_order_relaxed);
  if (p == 0) {
    long v = sysconf(_SC_PAGESIZE);
    p = v > 0 ? (size_t)v : 4096;
    atomic_store_explicit(&cached, p, memory_order_relaxed);
  }
  return p;
}

int ipx__map(void **out, int fd, uint64_t offset, size_t len,
             enum ipx__map_kind kind, void *hint, int strict) {
  int prot = kind == IPX__MAP_READ ? PROT_READ : PROT_READ | PROT_WRITE;
  int flags = kind == IPX__MAP_COPY ? MAP_PRIVATE : MAP_SHARED;
  if (fd < 0) flags |= MAP_ANONYMOUS;
  if (hint) {
    void *p = mmap(hint, len, prot, flags | MAP_FIXED_NOREPLACE, fd,
                   (off_t)offset);
    if (p == hint) {
      *out = p;
      return 0;
    }
    if (p != MAP_FAILED) {
      /* A kernel older than 4.17 ignores the flag and treats the address
       * as a mere hint: it placed the mapping elsewhere. */
      if (!strict) {
        *out = p;
        return 0;
      }
      munmap(p, len);
      return IPX_EBUSY;
    }
    if (errno != EEXIST && errno != EPERM && errno != ENOMEM)
      return -errno;
    if (strict) return IPX_EBUSY;
  }
  void *p = mmap(NULL, len, prot, flags, fd, (off_t)offset);
  if (p == MAP_FAILED) return -errno;
  *out = p;
  return 0;
}

int ipx__unmap(void *addr, size_t len) {
  return munmap(addr, len) == 0 ? 0 : -errno;
}

int ipx__map_sync(void *addr, size_t len, int async) {
  return msync(addr, len, async ? MS_ASYNC : MS_SYNC) == 0 ? 0 : -errno;
}

int ipx__map_advise(void *addr, size_t len, int advice) {
  int a;
  switch (advice) {
    case IPX_ADVICE_NORMAL: a = MADV_NORMAL; break;
    case IPX_ADVICE_SEQUENTIAL: a = MADV_SEQUENTIAL; break;
    case IPX_ADVICE_RANDOM: a = MADV_RANDOM; break;
    case IPX_ADVICE_WILLNEED: a = MADV_WILLNEED; break;
    case IPX_ADVICE_DONTNEED: a = MADV_DONTNEED; break;
    default: return IPX_EINVAL;
  }
  return madvise(addr, len, a) == 0 ? 0 : -errno;
}
