/* Walkthrough 3, second half: print the message shm_writer left, then
 * remove the object.
 *   shm_reader [name]                                                    */
#include <ipx/ipx.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "shm_message";
  ipx_shm_t *shm;
  ipx_region_t *reg;
  int r = ipx_shm_open(&shm, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0);
  if (r == 0) {
    r = ipx_region_map_shm(&reg, shm, IPX_READ_ONLY, NULL);
    ipx_shm_close(shm);
  }
  if (r != 0) {
    fprintf(stderr, "shm_reader: \"%s\": %s (%s)\n", name, ipx_strerror(r),
            ipx_err_name(r));
    return 1;
  }
  const char *msg = ipx_region_address(reg);
  size_t len = strnlen(msg, ipx_region_size(reg));
  printf("reader: \"%.*s\"\n", (int)len, msg);
  ipx_region_unmap(reg);
  if ((r = ipx_shm_remove(name)) != 0) {
    fprintf(stderr, "shm_reader: remove: %s\n", ipx_strerror(r));
    return 1;
  }
  printf("reader: removed \"%s\"\n", name);
  return len < ipx_page_size() ? 0 : 1;
}
