/* Named synchronization objects on ipx shared memory (ipx/named.h,
 * docs/named.md; header bytes in docs/FORMAT.md). */
#include "ipx/named.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipx/condition.h"
#include "ipx/error.h"
#include "ipx/mutex.h"
#include "ipx/region.h"
#include "ipx/semaphore.h"
#include "ipx/shm.h"
#include "os/ofd.h"

#define NAMED_MAGIC 0x444d4e49u /* "INMD" */
#define NAMED_VERSION 1u
#define NAMED_READY 0x59444552u /* "REDY" */
#define NAMED_HEADER 64u

typedef struct named_header {
  uint32_t magic;
  uint16_t version;
  uint16_t kind;
  uint32_t object_size;
  uint32_t ready; /* NAMED_READY once the object is initialised */
  uint32_t reserved[12];
} named_header_t;
_Static_assert(sizeof(named_header_t) == NAMED_HEADER, "named header size");

struct ipx_named {
  ipx_shm_t *shm;
  ipx_region_t *region;
  ipx_named_kind_t kind;
  int created;
  void *object;
};

static uint32_t object_size(ipx_named_kind_t kind) {
  switch (kind) {
    case IPX_NAMED_MUTEX: return sizeof(ipx_mutex_t);
    case IPX_NAMED_RECURSIVE_MUTEX: return sizeof(ipx_recursive_mutex_t);
    case IPX_NAMED_CONDITION: return sizeof(ipx_condition_t);
    case IPX_NAMED_SEMAPHORE: return sizeof(ipx_semaphore_t);
    case IPX_NAMED_SHARABLE_MUTEX: return sizeof(ipx_sharable_mutex_t);
    case IPX_NAMED_UPGRADABLE_MUTEX: return sizeof(ipx_upgradable_mutex_t);
  }
  return 0;
}

static int init_object(ipx_named_kind_t kind, void *obj, unsigned initial) {
  switch (kind) {
    case IPX_NAMED_MUTEX: return ipx_mutex_init(obj);
    case IPX_NAMED_RECURSIVE_MUTEX: return ipx_recursive_mutex_init(obj);
    case IPX_NAMED_CONDITION: return ipx_condition_init(obj);
    case IPX_NAMED_SEMAPHORE: return ipx_semaphore_init(obj, initial);
    case IPX_NAMED_SHARABLE_MUTEX: return ipx_sharable_mutex_init(obj);
    case IPX_NAMED_UPGRADABLE_MUTEX: return ipx_upgradable_mutex_init(obj);
  }
  return IPX_EINVAL;
}

/* With the creation lock held: adopt a ready object or build one.  The
 * handle's region is set on success. */
static int settle_object(ipx_named_t *n, ipx_open_mode_t mode,
                         unsigned initial) {
  uint64_t need = NAMED_HEADER + object_size(n->kind), size = 0;
  int r = ipx_shm_size(n->shm, &size);
  if (r != 0) return r;
  if (size >= NAMED_HEADER) {
    ipx_region_opts_t o;
    ipx_region_opts_init(&o);
    o.size = size < need ? size : need;
    r = ipx_region_map_shm(&n->region, n->shm, IPX_READ_WRITE, &o);
    if (r != 0) return r;
    named_header_t *h = ipx_region_address(n->region);
    uint32_t ready = __atomic_load_n(&h->ready, __ATOMIC_ACQUIRE);
    if (h->magic == NAMED_MAGIC && ready == NAMED_READY) {
      if (h->version != NAMED_VERSION) return IPX_EVERSION;
      if (h->kind != n->kind) return IPX_EWRONGKIND;
      if (h->object_size != object_size(n->kind) || size < need)
        return IPX_ECORRUPT;
      /* Create-only fails on an object that existed before the call; but
       * when this call published the name itself, a racing open-or-create
       * may have taken the creation lock first and built the object in
       * the instant between: it is still the object this call created. */
      if (mode == IPX_CREATE_ONLY && !ipx_shm_created(n->shm))
        return IPX_EEXIST;
      n->object = (char *)h + NAMED_HEADER;
      return 0;
    }
    /* Not ready: a creator died before finishing, unless the bytes are
     * not a named object's at all. */
    if (h->magic != NAMED_MAGIC && (h->magic | h->version | h->kind |
                                    h->object_size | h->ready) != 0)
      return IPX_EWRONGKIND;
    ipx_region_unmap(n->region);
    n->region = NULL;
  }
  if (mode == IPX_OPEN_ONLY) return IPX_ENOTFOUND;
  if (size != need && (r = ipx_shm_resize(n->shm, need, IPX_SHM_RESERVE)) != 0)
    return r;
  ipx_region_opts_t o;
  ipx_region_opts_init(&o);
  o.size = need;
  if ((r = ipx_region_map_shm(&n->region, n->shm, IPX_READ_WRITE, &o)) != 0)
    return r;
  named_header_t *h = ipx_region_address(n->region);
  h->ready = 0;
  h->magic = NAMED_MAGIC;
  h->version = NAMED_VERSION;
  h->kind = (uint16_t)n->kind;
  h->object_size = object_size(n->kind);
  n->object = (char *)h + NAMED_HEADER;
  if ((r = init_object(n->kind, n->object, initial)) != 0) return r;
  __atomic_store_n(&h->ready, NAMED_READY, __ATOMIC_RELEASE);
  n->created = 1;
  return 0;
}

static int named_open(ipx_named_t **out, ipx_named_kind_t kind,
                      const char *name, ipx_open_mode_t mode, unsigned perm,
                      unsigned initial) {
  if (!out) return IPX_EINVAL;
  *out = NULL;
  int r = ipx_name_check(name);
  if (r != 0) return r;
  if ((mode != IPX_CREATE_ONLY && mode != IPX_OPEN_ONLY &&
       mode != IPX_OPEN_OR_CREATE) ||
      (perm & ~0777u) || initial > IPX_SEMAPHORE_VALUE_MAX)
    return IPX_EINVAL;
  ipx_named_t *n = calloc(1, sizeof *n);
  if (!n) return -ENOMEM;
  n->kind = kind;
  r = ipx_shm_open(&n->shm, name, mode, IPX_READ_WRITE, perm);
  /* A name left by a creator that died is not "existing" for create-only:
   * it is examined under the lock below. */
  if (r == IPX_EEXIST)
    r = ipx_shm_open(&n->shm, name, IPX_OPEN_ONLY, IPX_READ_WRITE, perm);
  if (r == 0) {
    int fd = ipx_shm_fd(n->shm);
    r = ipx__ofd_lock(fd, IPX__OFD_WRITE, 0, 0, 1);
    if (r == 0) {
      r = settle_object(n, mode, initial);
      (void)ipx__ofd_lock(fd, IPX__OFD_UNLOCK, 0, 0, 0);
    }
  }
  if (r != 0) {
    ipx_named_close(n);
    return r;
  }
  *out = n;
  return 0;
}

int ipx_named_mutex_open(ipx_named_t **out, const char *name,
                         ipx_open_mode_t mode, unsigned perm) {
  return named_open(out, IPX_NAMED_MUTEX, name, mode, perm, 0);
}
int ipx_named_recursive_mutex_open(ipx_named_t **out, const char *name,
                                   ipx_open_mode_t mode, unsigned perm) {
  return named_open(out, IPX_NAMED_RECURSIVE_MUTEX, name, mode, perm, 0);
}
int ipx_named_condition_open(ipx_named_t **out, const char *name,
                             ipx_open_mode_t mode, unsigned perm) {
  return named_open(out, IPX_NAMED_CONDITION, name, mode, perm, 0);
}
int ipx_named_semaphore_open(ipx_named_t **out, const char *name,
                             ipx_open_mode_t mode, unsigned perm,
                             unsigned initial) {
  return named_open(out, IPX_NAMED_SEMAPHORE, name, mode, perm, initial);
}
int ipx_named_sharable_mutex_open(ipx_named_t **out, const char *name,
                                  ipx_open_mode_t mode, unsigned perm) {
  return named_open(out, IPX_NAMED_SHARABLE_MUTEX, name, mode, perm, 0);
}
int ipx_named_upgradable_mutex_open(ipx_named_t **out, const char *name,
                                    ipx_open_mode_t mode, unsigned perm) {
  return named_open(out, IPX_NAMED_UPGRADABLE_MUTEX, name, mode, perm, 0);
}

static void *object_of(const ipx_named_t *n, ipx_named_kind_t kind) {
  return n && n->kind == kind ? n->object : NULL;
}
ipx_mutex_t *ipx_named_mutex(const ipx_named_t *n) {
  return object_of(n, IPX_NAMED_MUTEX);
}
ipx_recursive_mutex_t *ipx_named_recursive_mutex(const ipx_named_t *n) {
  return object_of(n, IPX_NAMED_RECURSIVE_MUTEX);
}
ipx_condition_t *ipx_named_condition(const ipx_named_t *n) {
  return object_of(n, IPX_NAMED_CONDITION);
}
ipx_semaphore_t *ipx_named_semaphore(const ipx_named_t *n) {
  return object_of(n, IPX_NAMED_SEMAPHORE);
}
ipx_sharable_mutex_t *ipx_named_sharable_mutex(const ipx_named_t *n) {
  return object_of(n, IPX_NAMED_SHARABLE_MUTEX);
}
ipx_upgradable_mutex_t *ipx_named_upgradable_mutex(const ipx_named_t *n) {
  return object_of(n, IPX_NAMED_UPGRADABLE_MUTEX);
}
ipx_named_kind_t ipx_named_kind(const ipx_named_t *n) {
  return n ? n->kind : (ipx_named_kind_t)0;
}
int ipx_named_created(const ipx_named_t *n) { return n ? n->created : 0; }

int ipx_named_close(ipx_named_t *n) {
  if (!n) return 0;
  int r = 0;
  if (n->region) r = ipx_region_unmap(n->region);
  if (n->shm) {
    int r2 = ipx_shm_close(n->shm);
    if (r == 0) r = r2;
  }
  free(n);
  return r;
}

int ipx_named_remove(const char *name) { return ipx_shm_remove(name); }
