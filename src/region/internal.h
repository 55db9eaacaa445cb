/* Shared by the region module's files. */
#ifndef IPX_REGION_INTERNAL_H
#define IPX_REGION_INTERNAL_H

#include "ipx/region.h"

/* Map part of fd, opened with fd_access, as `access`; see
 * ipx_region_map_shm() for the checks and errors. */
int ipx__region_map_fd(ipx_region_t **out, int fd, ipx_access_t fd_access,
                       ipx_access_t access, const ipx_region_opts_t *opts);

#endif
