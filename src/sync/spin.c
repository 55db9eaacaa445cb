/* The per-thread spin decision (spin.h). */
#include "sync/spin.h"

#include <pthread.h>
#include <sched.h>

__thread unsigned ipx__spin_tls __attribute__((tls_model("initial-exec")));

/* A fork child is often pinned differently from its parent: decide again. */
static void spin_atfork_child(void) { ipx__spin_tls = 0; }
static pthread_once_t spin_once = PTHREAD_ONCE_INIT;
static void spin_register_atfork(void) {
  (void)pthread_atfork(NULL, NULL, spin_atfork_child);
}

unsigned ipx__spin_init(void) {
  cpu_set_t set;
  unsigned may_spin = 1;
  (void)pthread_once(&spin_once, spin_register_atfork);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) <= 1)
    may_spin = 0;
  ipx__spin_tls = 1 + may_spin;
  return ipx__spin_tls;
}
