/* Validation of user-visible object names. */
#include <string.h>

#include "ipx/common.h"
#include "ipx/error.h"

int ipx_name_check(const char *name) {
  if (!name) return IPX_EINVAL;
  size_t n = strnlen(name, IPX_NAME_MAX + 1);
  if (n == 0 || n > IPX_NAME_MAX) return IPX_EBADNAME;
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return IPX_EBADNAME;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return IPX_EBADNAME;
  }
  return 0;
}
