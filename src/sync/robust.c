/* Per-thread set-up of the robust list shared with glibc (see robust.h). */
#include "sync/robust.h"

#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipx/error.h"

__thread ipx__robust_self_t ipx__robust_tls
    __attribute__((tls_model("initial-exec")));

/* The only thread of a fork child has a new TID, and glibc has given it a
 * fresh, empty list (at the same head address). */
static void robust_atfork_child(void) { ipx__robust_tls.tid = 0; }

static pthread_once_t robust_once = PTHREAD_ONCE_INIT;
static int robust_once_err;
static void robust_register_atfork(void) {
  robust_once_err = -pthread_atfork(NULL, NULL, robust_atfork_child);
}

int ipx__robust_init_thread(void) {
  struct robust_list_head *head = NULL;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, 0, &head, &len) != 0)
    return errno == ENOSYS ? IPX_ENOTSUP : -errno;
  /* No list (a thread not started by glibc) or another layout: joining it
   * would corrupt glibc's bookkeeping or the kernel's view of it. */
  if (head == NULL || len != sizeof *head ||
      head->futex_offset != IPX__ROBUST_FUTEX_OFFSET)
    return IPX_ENOTSUP;
  int r = pthread_once(&robust_once, robust_register_atfork);
  if (r != 0) return -r;
  if (robust_once_err != 0) return robust_once_err;
  ipx__robust_tls.head = head;
  ipx__robust_tls.tid = (uint32_t)syscall(SYS_gettid);
  return 0;
}
