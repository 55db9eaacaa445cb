/* A program built against an installed ipx, as a user would build it. */
#include <ipx/ipx.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  if (strcmp(ipx_version(), IPX_VERSION_STRING) != 0) {
    fprintf(stderr, "header %s, library %s\n", IPX_VERSION_STRING, ipx_version());
    return 1;
  }
  printf("ipx %s: %s\n", ipx_version(), ipx_strerror(IPX_ECORRUPT));
  return 0;
}
