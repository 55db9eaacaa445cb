#include "ipx/version.h"

const char *ipx_version(void) { return IPX_VERSION_STRING; }

unsigned ipx_version_number(void) { return IPX_VERSION_NUMBER; }
