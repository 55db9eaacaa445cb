/* Whole-file advisory locks on open file descriptions (see ipx/file_lock.h
 * and docs/file_lock.md). */
#include "ipx/file_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ipx/error.h"
#include "ipx/time.h"
#include "os/ofd.h"

enum held { HELD_NONE, HELD_SHARED, HELD_EXCL };

struct ipx_file_lock {
  int fd;
  int writable;
  enum held held;
  pid_t opener; /* close() unlocks only in this process (see header) */
};

/* Backoff of the timed forms: short first naps catch a quick release, the
 * cap bounds the extra latency after a release and the polling cost. */
#define POLL_FIRST_NS (50 * IPX_USEC)
#define POLL_CAP_NS (2 * IPX_MSEC)

int ipx_file_lock_open(ipx_file_lock_t **out, const char *path) {
  if (!out || !path || !*path) return IPX_EINVAL;
  *out = NULL;
  int writable = 1;
  int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 && (errno == EACCES || errno == EROFS || errno == ETXTBSY)) {
    writable = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  }
  if (fd < 0) return errno == ENOENT ? IPX_ENOTFOUND : -errno;
  ipx_file_lock_t *fl = malloc(sizeof *fl);
  if (!fl) {
    close(fd);
    return -ENOMEM;
  }
  fl->fd = fd;
  fl->writable = writable;
  fl->held = HELD_NONE;
  fl->opener = getpid();
  *out = fl;
  return 0;
}

int ipx_file_lock_close(ipx_file_lock_t *fl) {
  if (!fl) return 0;
  if (fl->held != HELD_NONE && fl->opener == getpid())
    (void)ipx__ofd_lock(fl->fd, IPX__OFD_UNLOCK, 0, 0, 0);
  int rc = close(fl->fd) == 0 || errno == EINTR ? 0 : -errno;
  free(fl);
  return rc;
}

static void nap(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / IPX_SEC), (long)(ns % IPX_SEC)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* mode: 0 try, 1 block, 2 until deadline. */
static int acquire(ipx_file_lock_t *fl, enum held want, int mode,
                   uint64_t deadline) {
  if (!fl) return IPX_EINVAL;
  if (fl->held != HELD_NONE) return IPX_EDEADLK;
  if (want == HELD_EXCL && !fl->writable) return IPX_EREADONLY;
  enum ipx__ofd_type t = want == HELD_EXCL ? IPX__OFD_WRITE : IPX__OFD_READ;
  int rc;
  if (mode != 2) {
    rc = ipx__ofd_lock(fl->fd, t, 0, 0, mode == 1);
  } else {
    uint64_t step = POLL_FIRST_NS;
    for (;;) {
      rc = ipx__ofd_lock(fl->fd, t, 0, 0, 0);
      if (rc != IPX_EBUSY) break;
      uint64_t now = ipx_now();
      if (now >= deadline) {
        rc = IPX_ETIMEDOUT;
        break;
      }
      nap(deadline - now < step ? deadline - now : step);
      if (step < POLL_CAP_NS) step = step * 2 > POLL_CAP_NS ? POLL_CAP_NS : step * 2;
    }
  }
  if (rc == -EBADF && want == HELD_EXCL) rc = IPX_EREADONLY;
  if (rc == 0) fl->held = want;
  return rc;
}

static int release(ipx_file_lock_t *fl, enum held have) {
  if (!fl) return IPX_EINVAL;
  if (fl->held != have) return IPX_ENOTOWNER;
  int rc = ipx__ofd_lock(fl->fd, IPX__OFD_UNLOCK, 0, 0, 0);
  if (rc == 0) fl->held = HELD_NONE;
  return rc;
}

int ipx_file_lock_lock(ipx_file_lock_t *fl) {
  return acquire(fl, HELD_EXCL, 1, 0);
}
int ipx_file_lock_try_lock(ipx_file_lock_t *fl) {
  return acquire(fl, HELD_EXCL, 0, 0);
}
int ipx_file_lock_lock_until(ipx_file_lock_t *fl, uint64_t deadline_ns) {
  return acquire(fl, HELD_EXCL, 2, deadline_ns);
}
int ipx_file_lock_lock_for(ipx_file_lock_t *fl, uint64_t timeout_ns) {
  return acquire(fl, HELD_EXCL, 2, ipx_deadline_after(timeout_ns));
}
int ipx_file_lock_unlock(ipx_file_lock_t *fl) { return release(fl, HELD_EXCL); }

int ipx_file_lock_lock_sharable(ipx_file_lock_t *fl) {
  return acquire(fl, HELD_SHARED, 1, 0);
}
int ipx_file_lock_try_lock_sharable(ipx_file_lock_t *fl) {
  return acquire(fl, HELD_SHARED, 0, 0);
}
int ipx_file_lock_lock_sharable_until(ipx_file_lock_t *fl,
                                      uint64_t deadline_ns) {
  return acquire(fl, HELD_SHARED, 2, deadline_ns);
}
int ipx_file_lock_lock_sharable_for(ipx_file_lock_t *fl, uint64_t timeout_ns) {
  return acquire(fl, HELD_SHARED, 2, ipx_deadline_after(timeout_ns));
}
int ipx_file_lock_unlock_sharable(ipx_file_lock_t *fl) {
  return release(fl, HELD_SHARED);
}
