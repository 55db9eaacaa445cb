/* Shared memory objects: validation and handles over src/os/shm. */
#include "ipx/shm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipx/error.h"
#include "os/shm.h"

struct ipx_shm {
  int fd;
  ipx_access_t access;
  int created;
  char name[]; /* the user name, NUL-terminated */
};

int ipx_shm_open(ipx_shm_t **out, const char *name, ipx_open_mode_t mode,
                 ipx_access_t access, unsigned perm) {
  if (!out) return IPX_EINVAL;
  *out = NULL;
  int r = ipx_name_check(name);
  if (r != 0) return r;
  if (mode != IPX_CREATE_ONLY && mode != IPX_OPEN_ONLY &&
      mode != IPX_OPEN_OR_CREATE)
    return IPX_EINVAL;
  if (access != IPX_READ_ONLY && access != IPX_READ_WRITE) return IPX_EINVAL;
  if (perm > 0777) return IPX_EINVAL;
  if (perm == 0) perm = IPX_DEFAULT_PERM;

  size_t len = strlen(name);
  ipx_shm_t *s = malloc(sizeof *s + len + 1);
  if (!s) return -ENOMEM;
  memcpy(s->name, name, len + 1);
  s->access = access;
  r = ipx__shm_open(name, (int)mode, access == IPX_READ_WRITE, perm, &s->fd,
                    &s->created);
  if (r != 0) {
    free(s);
    return r;
  }
  *out = s;
  return 0;
}

int ipx_shm_close(ipx_shm_t *shm) {
  if (!shm) return 0;
  ipx__fd_close(shm->fd);
  free(shm);
  return 0;
}

int ipx_shm_remove(const char *name) {
  int r = ipx_name_check(name);
  if (r != 0) return r;
  return ipx__shm_unlink(name);
}

int ipx_shm_resize(ipx_shm_t *shm, uint64_t size, unsigned flags) {
  if (!shm || (flags & ~IPX_SHM_RESERVE) != 0) return IPX_EINVAL;
  if (shm->access != IPX_READ_WRITE) return IPX_EREADONLY;
  return ipx__fd_resize(shm->fd, size, (flags & IPX_SHM_RESERVE) != 0);
}

int ipx_shm_size(const ipx_shm_t *shm, uint64_t *size) {
  if (!shm || !size) return IPX_EINVAL;
  return ipx__fd_size(shm->fd, size);
}

const char *ipx_shm_name(const ipx_shm_t *shm) {
  return shm ? shm->name : NULL;
}

ipx_access_t ipx_shm_access(const ipx_shm_t *shm) {
  return shm ? shm->access : (ipx_access_t)0;
}

int ipx_shm_created(const ipx_shm_t *shm) { return shm ? shm->created : 0; }

int ipx_shm_fd(const ipx_shm_t *shm) { return shm ? shm->fd : IPX_EINVAL; }
