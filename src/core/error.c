/* Error codes: names and messages for ipx's own codes and for -errno. */
#include <string.h>

#include "ipx/error.h"

const char *ipx_strerror(int err) {
  if (err == 0) return "success";
  switch (err) {
#define IPX__ERRNO_MSG(name, value, msg) \
  case (value):                          \
    return msg;
    IPX_ERRNO_MAP(IPX__ERRNO_MSG)
#undef IPX__ERRNO_MSG
    default:
      break;
  }
  if (err < 0 && err > IPX_ERRNO_BASE) {
    /* strerrordesc_np, unlike strerror, returns a static string and is
     * therefore thread-safe. */
    const char *s = strerrordesc_np(-err);
    if (s) return s;
  }
  return "unknown error";
}

const char *ipx_err_name(int err) {
  if (err == 0) return "0";
  switch (err) {
#define IPX__ERRNO_NAME(name, value, msg) \
  case (value):                           \
    return "IPX_" #name;
    IPX_ERRNO_MAP(IPX__ERRNO_NAME)
#undef IPX__ERRNO_NAME
    default:
      break;
  }
  if (err < 0 && err > IPX_ERRNO_BASE) {
    const char *s = strerrorname_np(-err);
    if (s) return s;
  }
  return "unknown";
}
