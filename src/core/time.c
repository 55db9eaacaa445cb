/* The monotonic clock every ipx wait is measured against. */
#include <time.h>

#include "ipx/time.h"

uint64_t ipx_now(void) {
  struct timespec ts;
  /* CLOCK_MONOTONIC cannot fail with a valid clock id and pointer. */
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * IPX_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t ipx_deadline_after(uint64_t ns) {
  uint64_t now = ipx_now();
  return ns >= IPX_FOREVER - now ? IPX_FOREVER : now + ns;
}
