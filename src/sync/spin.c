/* The per-thread spin decision (spin.h). */
#include "sync/spin.h"

#include <sched.h>

__thread unsigned ipx__spin_tls __attribute__((tls_model("initial-exec")));

unsigned ipx__spin_init(void) {
  cpu_set_t set;
  unsigned spin = IPX__SPIN_DEFAULT;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) <= 1)
    spin = 0;
  ipx__spin_tls = spin + 1;
  return spin + 1;
}
