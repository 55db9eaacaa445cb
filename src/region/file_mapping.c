/* File mappings: a file opened for mapping (Boost: file_mapping). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ipx/error.h"
#include "ipx/region.h"
#include "os/shm.h"

struct ipx_file_mapping {
  int fd;
  ipx_access_t access;
  char path[];
};

static int check_path(const char *path) {
  if (!path) return IPX_EINVAL;
  size_t n = strnlen(path, PATH_MAX);
  if (n == 0 || n >= PATH_MAX) return IPX_EBADNAME;
  return 0;
}

int ipx_file_mapping_open(ipx_file_mapping_t **out, const char *path,
                          ipx_access_t access) {
  if (!out) return IPX_EINVAL;
  *out = NULL;
  int r = check_path(path);
  if (r != 0) return r;
  if (access != IPX_READ_ONLY && access != IPX_READ_WRITE) return IPX_EINVAL;
  size_t len = strlen(path);
  ipx_file_mapping_t *fm = malloc(sizeof *fm + len + 1);
  if (!fm) return -ENOMEM;
  memcpy(fm->path, path, len + 1);
  fm->access = access;
  r = ipx__file_open(path, access == IPX_READ_WRITE, &fm->fd);
  if (r != 0) {
    free(fm);
    return r;
  }
  *out = fm;
  return 0;
}

int ipx_file_mapping_close(ipx_file_mapping_t *fm) {
  if (!fm) return 0;
  ipx__fd_close(fm->fd);
  free(fm);
  return 0;
}

int ipx_file_mapping_remove(const char *path) {
  int r = check_path(path);
  if (r != 0) return r;
  return ipx__file_unlink(path);
}

const char *ipx_file_mapping_path(const ipx_file_mapping_t *fm) {
  return fm ? fm->path : NULL;
}

ipx_access_t ipx_file_mapping_access(const ipx_file_mapping_t *fm) {
  return fm ? fm->access : (ipx_access_t)0;
}

int ipx_file_mapping_fd(const ipx_file_mapping_t *fm) {
  return fm ? fm->fd : IPX_EINVAL;
}
