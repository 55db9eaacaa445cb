/* Walkthrough 1: create a shared memory object, size it, map it, write a
 * greeting, read it back, remove the object.
 *   shm_hello [name]                                                     */
#include <ipx/ipx.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what, int err) {
  fprintf(stderr, "shm_hello: %s: %s (%s)\n", what, ipx_strerror(err),
          ipx_err_name(err));
  return 1;
}

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "shm_hello";
  ipx_shm_t *shm;
  ipx_region_t *reg;
  int r;

  if ((r = ipx_shm_open(&shm, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0)))
    return fail("create", r);
  printf("created shared memory object \"%s\" (/dev/shm/ipx.%s)\n", name, name);
  if ((r = ipx_shm_resize(shm, 1024, IPX_SHM_SPARSE))) {
    ipx_shm_remove(name);
    return fail("resize", r);
  }
  printf("resized it to 1024 bytes\n");
  if ((r = ipx_region_map_shm(&reg, shm, IPX_READ_WRITE, NULL))) {
    ipx_shm_remove(name);
    return fail("map", r);
  }
  printf("mapped %llu bytes at %p\n", (unsigned long long)ipx_region_size(reg),
         ipx_region_address(reg));

  char *mem = ipx_region_address(reg);
  strcpy(mem, "Hello, ipx!");
  printf("wrote \"Hello, ipx!\"\n");
  printf("read back: %s\n", mem);
  int ok = strcmp(mem, "Hello, ipx!") == 0;

  ipx_region_unmap(reg);
  ipx_shm_close(shm);
  if ((r = ipx_shm_remove(name))) return fail("remove", r);
  printf("removed \"%s\"\n", name);
  return ok ? 0 : 1;
}
