#include "os/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipx/common.h"
#include "ipx/error.h"

void ipx__shm_path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s%s", IPX__SHM_DIR, IPX__SHM_PREFIX, name);
}

void ipx__fd_close(int fd) {
  if (fd >= 0) close(fd);
}

static int check_regular(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  return S_ISREG(st.st_mode) ? 0 : IPX_EWRONGKIND;
}

/* Open an existing object.  O_NOFOLLOW: a symlink planted in /dev/shm must
 * not redirect ipx to some other file. */
static int open_existing(const char *path, int writable, int *fd) {
  int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW |
              O_NONBLOCK;
  int f;
  do f = open(path, flags);
  while (f < 0 && errno == EINTR);
  if (f < 0) {
    if (errno == ENOENT) return IPX_ENOTFOUND;
    if (errno == ELOOP || errno == EISDIR || errno == ENXIO)
      return IPX_EWRONGKIND;
    return -errno;
  }
  int r = check_regular(f);
  if (r != 0) {
    close(f);
    return r;
  }
  *fd = f;
  return 0;
}

/* The fallback of step 1 (see shm.h): a uniquely named file. */
static int create_named_tmp(char *tmp, size_t len, unsigned perm) {
  for (int attempt = 0; attempt < 100; attempt++) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(tmp, len, "%s/.ipx-tmp.%d.%lx%x", IPX__SHM_DIR, (int)getpid(),
             (unsigned long)ts.tv_nsec, (unsigned)attempt);
    int f = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                 perm & 0600);
    if (f >= 0) return f;
    if (errno != EEXIST && errno != EINTR) return -errno;
  }
  return -EEXIST;
}

/* Give the O_TMPFILE fd a name.  linkat(fd, "", AT_EMPTY_PATH) is the
 * direct way, but kernels before 6.10 allow it only with
 * CAP_DAC_READ_SEARCH; going through /proc/self/fd works everywhere /proc
 * is mounted and costs a few microseconds more, so the direct way is
 * remembered once it has been refused.  Returns 0 or -1 with errno set. */
static int publish_tmpfile(int fd, const char *path) {
  static atomic_int empty_path_refused;
  if (!atomic_load_explicit(&empty_path_refused, memory_order_relaxed)) {
    if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT && errno != EPERM && errno != EINVAL) return -1;
    atomic_store_explicit(&empty_path_refused, 1, memory_order_relaxed);
  }
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  return linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

/* Create an unnamed (or temporarily named) file with exactly `perm`, then
 * publish it as `path`.  Returns 0 with *fd set, IPX_EEXIST if the name
 * exists, or -errno. */
static int create_and_publish(const char *path, int writable, unsigned perm,
                              int *fd) {
  char tmp[64] = "";
  int f = open(IPX__SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, perm & 0600);
  int anonymous = f >= 0;
  if (!anonymous) {
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
      return -errno;
    f = create_named_tmp(tmp, sizeof tmp, perm);
    if (f < 0) return f;
  }
  int r = 0;
  if (fchmod(f, perm) != 0) {
    r = -errno;
    goto fail;
  }
  if (anonymous) {
    if (publish_tmpfile(f, path) != 0) {
      r = errno == EEXIST ? IPX_EEXIST : -errno;
      goto fail;
    }
  } else {
    int lr = link(tmp, path);
    int le = errno;
    unlink(tmp);
    if (lr != 0) {
      r = le == EEXIST ? IPX_EEXIST : -le;
      goto fail;
    }
  }
  if (!writable) {
    /* A read-only handle holds a read-only descriptor, so that even the raw
     * fd cannot write.  Reopening through /proc reaches this very file
     * even if the name was removed or replaced meanwhile. */
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", f);
    int ro = open(self, O_RDONLY | O_CLOEXEC);
    if (ro >= 0) {
      close(f);
      f = ro;
    }
  }
  *fd = f;
  return 0;
fail:
  close(f);
  return r;
}

int ipx__shm_open(const char *name, int mode, int writable, unsigned perm,
                  int *fd, int *created) {
  char path[sizeof IPX__SHM_DIR + sizeof IPX__SHM_PREFIX + IPX_NAME_MAX + 2];
  ipx__shm_path(path, sizeof path, name);
  /* Bounded only in theory: each round needs another process to remove the
   * object between our failed create and our failed open. */
  for (int round = 0; round < 1000; round++) {
    if (mode != IPX_CREATE_ONLY) {
      int r = open_existing(path, writable, fd);
      if (r != IPX_ENOTFOUND || mode == IPX_OPEN_ONLY) {
        *created = 0;
        return r;
      }
    }
    int r = create_and_publish(path, writable, perm, fd);
    if (r == 0) {
      *created = 1;
      return 0;
    }
    if (r != IPX_EEXIST || mode == IPX_CREATE_ONLY) return r;
  }
  return -EAGAIN;
}

int ipx__shm_unlink(const char *name) {
  char path[sizeof IPX__SHM_DIR + sizeof IPX__SHM_PREFIX + IPX_NAME_MAX + 2];
  ipx__shm_path(path, sizeof path, name);
  if (unlink(path) == 0) return 0;
  if (errno == ENOENT) return IPX_ENOTFOUND;
  if (errno == EISDIR) return IPX_EWRONGKIND;
  return -errno;
}

int ipx__fd_size(int fd, uint64_t *size) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  *size = (uint64_t)st.st_size;
  return 0;
}

int ipx__fd_resize(int fd, uint64_t size, int reserve) {
  if (size > (uint64_t)INT64_MAX) return IPX_ETOOBIG;
  uint64_t cur = 0;
  if (reserve) {
    int r = ipx__fd_size(fd, &cur);
    if (r != 0) return r;
  }
  if (!reserve || size < cur) {
    while (ftruncate(fd, (off_t)size) != 0)
      if (errno != EINTR) return errno == EFBIG ? IPX_ETOOBIG : -errno;
  }
  if (reserve && size > 0) {
    /* Mode 0 allocates and extends the size in one step; on tmpfs a failure
     * releases what this call allocated and leaves the size unchanged. */
    while (fallocate(fd, 0, 0, (off_t)size) != 0)
      if (errno != EINTR) return errno == EFBIG ? IPX_ETOOBIG : -errno;
  }
  return 0;
}

int ipx__file_open(const char *path, int writable, int *fd) {
  int f;
  do f = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
  while (f < 0 && errno == EINTR);
  if (f < 0) {
    if (errno == ENOENT) return IPX_ENOTFOUND;
    if (errno == EISDIR || errno == ENXIO) return IPX_EWRONGKIND;
    return -errno;
  }
  int r = check_regular(f);
  if (r != 0) {
    close(f);
    return r;
  }
  *fd = f;
  return 0;
}

int ipx__file_unlink(const char *path) {
  if (unlink(path) == 0) return 0;
  if (errno == ENOENT) return IPX_ENOTFOUND;
  if (errno == EISDIR || errno == EPERM) {
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) return IPX_EWRONGKIND;
  }
  return -errno;
}
