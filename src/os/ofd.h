/* Open-file-description locks (F_OFD_*): owned by the open file, not the
 * process, so two descriptors in one process conflict like two processes
 * do, closing an unrelated descriptor of the file does not drop them, and
 * the kernel drops them the moment the last descriptor of their open file
 * is closed, which includes the death of the process. */
#ifndef IPX_OS_OFD_H
#define IPX_OS_OFD_H

#include <stdint.h>

enum ipx__ofd_type { IPX__OFD_READ, IPX__OFD_WRITE, IPX__OFD_UNLOCK };

/* Lock [start, start+len) of fd (len 0 = to the end of the file, forever).
 * wait=0: IPX_EBUSY if held elsewhere.  wait=1: block (restarting after
 * EINTR).  Other failures: -errno. */
int ipx__ofd_lock(int fd, enum ipx__ofd_type type, uint64_t start,
                  uint64_t len, int wait);

/* 0 if `type` could be taken on the range right now, IPX_EBUSY if another
 * open file holds a conflicting lock, -errno on failure.  Takes nothing. */
int ipx__ofd_probe(int fd, enum ipx__ofd_type type, uint64_t start,
                   uint64_t len);

#endif
