/* Named POSIX shared memory objects and the descriptor calls on them.
 *
 * A user name `n` is the POSIX object "/ipx.n", which glibc and Linux keep
 * as the file /dev/shm/ipx.n on the tmpfs mounted there.  ipx works on that
 * file directly (as glibc's shm_open does) so that creation can be made
 * atomic with exact permissions:
 *
 *   1. open(O_TMPFILE) in /dev/shm: an unnamed file no one else can see;
 *   2. fchmod() it to exactly the permissions asked for (the umask only
 *      applies at creation, to a file nobody can open yet);
 *   3. publish it with linkat(fd, "", name, AT_EMPTY_PATH) (or, where the
 *      kernel refuses that without privilege, linkat("/proc/self/fd/N",
 *      name, AT_SYMLINK_FOLLOW)), which fails with EEXIST if the name
 *      exists: exactly one creator
 *      wins, and the name never refers to a file with provisional
 *      permissions, so an opener never sees a spurious EACCES.
 *
 * Where O_TMPFILE or /proc is unavailable, step 1 uses a uniquely named
 * file ("/dev/shm/.ipx-tmp.<pid>.<random>") that step 3 link()s and then
 * unlinks; a crash between the two leaves that dot-file behind, the only
 * cost of the fallback. */
#ifndef IPX_OS_SHM_H
#define IPX_OS_SHM_H

#include <stddef.h>
#include <stdint.h>

/* Directory and prefix of ipx's objects. */
#define IPX__SHM_DIR "/dev/shm"
#define IPX__SHM_PREFIX "ipx."

/* Write "/dev/shm/ipx.<name>" to buf.  The name must already be valid. */
void ipx__shm_path(char *buf, size_t len, const char *name);

/* Open or create (mode: an ipx_open_mode_t) the object `name`, read-write
 * or read-only; a created object gets exactly `perm`.  On success *fd is an
 * O_CLOEXEC descriptor of a regular file and *created says whether this
 * call created it.  Errors: IPX_EEXIST, IPX_ENOTFOUND, IPX_EWRONGKIND (the
 * name is not a regular file), -errno. */
int ipx__shm_open(const char *name, int mode, int writable, unsigned perm,
                  int *fd, int *created);

/* Remove the name.  IPX_ENOTFOUND if it does not exist, else -errno. */
int ipx__shm_unlink(const char *name);

/* Size of the file behind fd. */
int ipx__fd_size(int fd, uint64_t *size);

/* Set the size of fd's file; with reserve, also allocate every page of it
 * now (fallocate), so a full file system is -ENOSPC here and the size is
 * left as it was. */
int ipx__fd_resize(int fd, uint64_t size, int reserve);

/* Open an existing regular file for mapping.  Errors: IPX_ENOTFOUND,
 * IPX_EWRONGKIND (not a regular file), -errno. */
int ipx__file_open(const char *path, int writable, int *fd);

/* Remove a file.  IPX_ENOTFOUND if missing, IPX_EWRONGKIND for a
 * directory, else -errno. */
int ipx__file_unlink(const char *path);

/* close() that ignores EINTR (the descriptor is gone either way on Linux). */
void ipx__fd_close(int fd);

#endif
