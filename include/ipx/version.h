/* ipx/version.h - library version. */
#ifndef IPX_VERSION_H
#define IPX_VERSION_H

#include "common.h"

#define IPX_VERSION_MAJOR 0
#define IPX_VERSION_MINOR 1
#define IPX_VERSION_PATCH 0
#define IPX_VERSION_STRING "0.1.0"
/* MAJOR*10000 + MINOR*100 + PATCH, comparable with IPX_VERSION_NUMBER. */
#define IPX_VERSION_NUMBER \
  (IPX_VERSION_MAJOR * 10000 + IPX_VERSION_MINOR * 100 + IPX_VERSION_PATCH)

IPX_EXTERN_C_BEGIN

/* Version of the library actually loaded, "MAJOR.MINOR.PATCH". Thread-safe. */
IPX_API const char *ipx_version(void);
/* The same as a number (see IPX_VERSION_NUMBER). Thread-safe. */
IPX_API unsigned ipx_version_number(void);

IPX_EXTERN_C_END

#endif /* IPX_VERSION_H */
