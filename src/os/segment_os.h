/* The system calls of managed segments: files built unnamed and published
 * atomically, sizes, mappings that never replace another mapping, and the
 * boot id. */
#ifndef IPX_OS_SEGMENT_OS_H
#define IPX_OS_SEGMENT_OS_H

#include <stddef.h>
#include <stdint.h>

#include "os/shm.h" /* IPX__SHM_DIR, IPX__SHM_PREFIX */

/* Open an existing file (O_CLOEXEC, O_NOFOLLOW if nofollow).  Returns the
 * descriptor or -errno. */
int ipx__sos_open(const char *path, int writable, int nofollow);

/* A new, empty, unnamed file in the directory of `path` with exactly the
 * permissions `perm` (whatever the umask).  When the file system has no
 * O_TMPFILE, a file under a fresh temporary name is made instead and that
 * name is stored in tmpname (tmpname[0] is 0 otherwise).  Returns the
 * descriptor or -errno. */
int ipx__sos_create_unnamed(const char *path, unsigned perm, char *tmpname,
                            size_t tmplen);

/* Give the file of fd the name `path`, failing with -EEXIST if the name
 * exists; atomically.  tmpname: as returned by ipx__sos_create_unnamed (the
 * temporary name is removed whatever happens). */
int ipx__sos_publish(int fd, const char *tmpname, const char *path);

/* Drop a file made by ipx__sos_create_unnamed that was not published. */
void ipx__sos_discard(int fd, const char *tmpname);

int ipx__sos_unlink(const char *path);
void ipx__sos_close(int fd);

/* Size of the object (its end); IPX_ECORRUPT for a pipe or a directory.
 * Moves the file offset (ipx uses none). */
int ipx__sos_size(int fd, uint64_t *size);

/* Set the size (reserve: allocate the blocks too, -ENOSPC when full). */
int ipx__sos_resize(int fd, uint64_t size, int reserve);

enum ipx__sos_prot { IPX__SOS_RO, IPX__SOS_RW, IPX__SOS_COW };

/* Map len bytes of fd from offset 0 (shared, or private for COW).  With a
 * non-NULL hint the mapping lands exactly there or the call fails with
 * -EEXIST; it never replaces an existing mapping. */
int ipx__sos_map(int fd, size_t len, enum ipx__sos_prot prot, void *hint,
                 void **out);
int ipx__sos_unmap(void *addr, size_t len);
int ipx__sos_sync(void *addr, size_t len);

/* The calling process's id without a system call: cached, and forgotten in
 * the child of every fork() (a pthread_atfork handler).  A child made
 * without fork()'s handlers (a raw clone, _Fork) would see its parent's id
 * until it calls fork() itself: used only where the id is information. */
int ipx__sos_pid(void);

/* The 16 bytes of /proc/sys/kernel/random/boot_id (read once, cached).
 * -errno if it cannot be read, IPX_ECORRUPT if it is not a UUID. */
int ipx__sos_boot_id(uint8_t out[16]);

#endif
