#include "os/ofd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "ipx/error.h"

static void fill(struct flock *fl, enum ipx__ofd_type type, uint64_t start,
                 uint64_t len) {
  memset(fl, 0, sizeof *fl);
  fl->l_type = type == IPX__OFD_READ    ? F_RDLCK
               : type == IPX__OFD_WRITE ? F_WRLCK
                                        : F_UNLCK;
  fl->l_whence = SEEK_SET;
  fl->l_start = (off_t)start;
  fl->l_len = (off_t)len;
  fl->l_pid = 0; /* required by F_OFD_* */
}

int ipx__ofd_lock(int fd, enum ipx__ofd_type type, uint64_t start,
                  uint64_t len, int wait) {
  if (fd < 0 || start > INT64_MAX || len > INT64_MAX) return IPX_EINVAL;
  struct flock fl;
  fill(&fl, type, start, len);
  for (;;) {
    if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0) return 0;
    if (errno == EINTR) continue;
    if (!wait && (errno == EAGAIN || errno == EACCES)) return IPX_EBUSY;
    return -errno;
  }
}

int ipx__ofd_probe(int fd, enum ipx__ofd_type type, uint64_t start,
                   uint64_t len) {
  if (fd < 0 || type == IPX__OFD_UNLOCK || start > INT64_MAX || len > INT64_MAX)
    return IPX_EINVAL;
  struct flock fl;
  fill(&fl, type, start, len);
  if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return -errno;
  return fl.l_type == F_UNLCK ? 0 : IPX_EBUSY;
}
