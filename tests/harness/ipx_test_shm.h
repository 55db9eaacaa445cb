/* ipx_test_shm.h - shared memory for test bookkeeping that a peer opens by
 * name (exec'd peers do not inherit ipx_test_shared_alloc's memory). */
#ifndef IPX_TEST_SHM_H
#define IPX_TEST_SHM_H

#include "ipx/region.h"
#include "ipx/shm.h"
#include "ipx_test.h"

/* Create (create != 0: `size` bytes, zero-filled) or open the object
 * `name` read-write and map it whole; fails the test on any error. */
static inline void *ipx_test_map_shm(const char *name, uint64_t size,
                                     int create, ipx_shm_t **s,
                                     ipx_region_t **r) {
  IPX_ASSERT_OK(ipx_shm_open(s, name, create ? IPX_CREATE_ONLY : IPX_OPEN_ONLY,
                             IPX_READ_WRITE, 0));
  if (create) IPX_ASSERT_OK(ipx_shm_resize(*s, size, IPX_SHM_RESERVE));
  IPX_ASSERT_OK(ipx_region_map_shm(r, *s, IPX_READ_WRITE, NULL));
  return ipx_region_address(*r);
}

#endif
