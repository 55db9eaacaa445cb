#include "os/segment_os.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipx/error.h"

int ipx__sos_open(const char *path, int writable, int nofollow) {
  /* O_NONBLOCK: opening a FIFO that sits where a segment should be must
   * not wait for a writer (it then fails the size check).  Regular files
   * ignore the flag. */
  int fl = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK |
           (nofollow ? O_NOFOLLOW : 0);
  int fd;
  do fd = open(path, fl);
  while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

/* The directory part of path ("." when there is none). */
static int dir_of(const char *path, char *dir, size_t len) {
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 1;
  if (slash == path) n = 1; /* "/name" */
  if (n + 1 > len) return -ENAMETOOLONG;
  if (slash)
    memcpy(dir, path, n);
  else
    dir[0] = '.';
  dir[n] = 0;
  return 0;
}

int ipx__sos_create_unnamed(const char *path, unsigned perm, char *tmpname,
                            size_t tmplen) {
  char dir[4096];
  int r = dir_of(path, dir, sizeof dir);
  if (r) return r;
  tmpname[0] = 0;
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, perm & 07777);
  if (fd < 0) {
    int e = errno;
    /* No O_TMPFILE in this kernel (EISDIR) or file system (EOPNOTSUPP). */
    if (e != EOPNOTSUPP && e != EISDIR && e != EINVAL) return -e;
    static atomic_uint counter;
    for (int tries = 0; tries < 100; tries++) {
      int n = snprintf(tmpname, tmplen, "%s.ipx-tmp-%d-%u", path, ipx__sos_pid(),
                       atomic_fetch_add(&counter, 1));
      if (n < 0 || (size_t)n >= tmplen) return -ENAMETOOLONG;
      fd = open(tmpname, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW,
                perm & 07777);
      if (fd >= 0 || errno != EEXIST) break;
    }
    if (fd < 0) {
      e = errno;
      tmpname[0] = 0;
      return -e;
    }
  }
  /* The umask applied at creation; the object gets exactly perm.  Usually
   * the umask took nothing from perm: looking (fstat) costs half of
   * changing (fchmod), and nobody else can change the unpublished file in
   * between. */
  struct stat st;
  if (fstat(fd, &st) != 0 || (st.st_mode & 07777) != (perm & 07777)) {
    if (fchmod(fd, perm & 07777) != 0) {
      int e = errno;
      ipx__sos_discard(fd, tmpname);
      return -e;
    }
  }
  return fd;
}

/* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; once it was refused,
 * go straight to the /proc/self/fd route, which needs /proc. */
static atomic_int empty_path_refused;

int ipx__sos_publish(int fd, const char *tmpname, const char *path) {
  int r = 0;
  if (tmpname[0]) {
    if (link(tmpname, path) != 0) r = -errno;
    unlink(tmpname);
    return r;
  }
  if (!atomic_load_explicit(&empty_path_refused, memory_order_relaxed)) {
    if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT && errno != EPERM && errno != EINVAL) return -errno;
    atomic_store_explicit(&empty_path_refused, 1, memory_order_relaxed);
  }
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0) return 0;
  return -errno;
}

void ipx__sos_discard(int fd, const char *tmpname) {
  if (tmpname && tmpname[0]) unlink(tmpname);
  if (fd >= 0) close(fd);
}

int ipx__sos_unlink(const char *path) { return unlink(path) == 0 ? 0 : -errno; }

void ipx__sos_close(int fd) {
  if (fd >= 0) close(fd);
}

/* lseek rather than fstat: a quarter of the cost (about 150 against 400 ns
 * here), on the path of every open.  The file type needs no separate look:
 * a pipe (ESPIPE) or a directory (EINVAL) fails right here, and anything
 * else that is not a regular file (devices, which only root can place)
 * either refuses mmap or fails the header's validation like any other
 * foreign bytes. */
int ipx__sos_size(int fd, uint64_t *size) {
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < 0) return errno == ESPIPE || errno == EINVAL ? IPX_ECORRUPT : -errno;
  *size = (uint64_t)end;
  return 0;
}

int ipx__sos_resize(int fd, uint64_t size, int reserve) {
  if (size > INT64_MAX) return IPX_ETOOBIG;
  int r;
  do r = ftruncate(fd, (off_t)size);
  while (r != 0 && errno == EINTR);
  if (r != 0) return errno == EFBIG ? IPX_ETOOBIG : -errno;
  if (reserve && size > 0) {
    do r = fallocate(fd, 0, 0, (off_t)size);
    while (r != 0 && errno == EINTR);
    if (r != 0 && errno != EOPNOTSUPP) return -errno;
  }
  return 0;
}

int ipx__sos_map(int fd, size_t len, enum ipx__sos_prot prot, void *hint,
                 void **out) {
  int p = prot == IPX__SOS_RO ? PROT_READ : PROT_READ | PROT_WRITE;
  int fl = prot == IPX__SOS_COW ? MAP_PRIVATE : MAP_SHARED;
  if (hint) fl |= MAP_FIXED_NOREPLACE;
  void *a = mmap(hint, len, p, fl, fd, 0);
  if (a == MAP_FAILED) return -errno;
  if (hint && a != hint) { /* a kernel older than 4.17 took it as a hint */
    munmap(a, len);
    return -EEXIST;
  }
  *out = a;
  return 0;
}

int ipx__sos_unmap(void *addr, size_t len) {
  return munmap(addr, len) == 0 ? 0 : -errno;
}

int ipx__sos_sync(void *addr, size_t len) {
  return msync(addr, len, MS_SYNC) == 0 ? 0 : -errno;
}

static int pid_cache; /* 0 until known, and in a fork child */
static int pid_cacheable;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void) { __atomic_store_n(&pid_cache, 0, __ATOMIC_RELAXED); }

static void pid_register(void) {
  /* Without the handler a child would inherit a stale id: then do not
   * cache at all. */
  pid_cacheable = pthread_atfork(NULL, NULL, pid_forget) == 0;
}

int ipx__sos_pid(void) {
  int p = __atomic_load_n(&pid_cache, __ATOMIC_RELAXED);
  if (__builtin_expect(p != 0, 1)) return p;
  pthread_once(&pid_once, pid_register);
  p = (int)getpid();
  if (pid_cacheable) __atomic_store_n(&pid_cache, p, __ATOMIC_RELAXED);
  return p;
}

static uint8_t boot_id[16];
static int boot_err;
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void read_boot_id(void) {
  char txt[64];
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    boot_err = -errno;
    return;
  }
  ssize_t n;
  do n = read(fd, txt, sizeof txt - 1);
  while (n < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  if (n < 0) {
    boot_err = -e;
    return;
  }
  txt[n] = 0;
  int k = 0;
  for (ssize_t i = 0; i < n && k < 32; i++) {
    if (txt[i] == '-') continue;
    int v = hexval(txt[i]);
    if (v < 0) break;
    if (k % 2 == 0)
      boot_id[k / 2] = (uint8_t)(v << 4);
    else
      boot_id[k / 2] |= (uint8_t)v;
    k++;
  }
  if (k != 32) boot_err = IPX_ECORRUPT;
}

int ipx__sos_boot_id(uint8_t out[16]) {
  pthread_once(&boot_once, read_boot_id);
  if (boot_err) return boot_err;
  memcpy(out, boot_id, 16);
  return 0;
}
