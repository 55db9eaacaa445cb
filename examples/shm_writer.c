/* Walkthrough 3, first half: leave a message in a shared memory object for
 * shm_reader (run afterwards) to print and remove.
 *   shm_writer [name]                                                    */
#include <ipx/ipx.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "shm_message";
  char msg[128];
  snprintf(msg, sizeof msg, "a message left in \"%s\" by the writer", name);

  ipx_shm_t *shm;
  ipx_region_t *reg;
  int r = ipx_shm_open(&shm, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0);
  if (r == 0) {
    r = ipx_shm_resize(shm, strlen(msg) + 1, IPX_SHM_RESERVE);
    if (r == 0) r = ipx_region_map_shm(&reg, shm, IPX_READ_WRITE, NULL);
    ipx_shm_close(shm);
    if (r != 0) ipx_shm_remove(name);
  }
  if (r != 0) {
    fprintf(stderr, "shm_writer: %s (%s)\n", ipx_strerror(r), ipx_err_name(r));
    return 1;
  }
  memcpy(ipx_region_address(reg), msg, strlen(msg) + 1);
  ipx_region_unmap(reg);
  printf("writer: left %zu bytes in \"%s\"; run shm_reader %s to read them\n",
         strlen(msg) + 1, name, name);
  return 0;
}
