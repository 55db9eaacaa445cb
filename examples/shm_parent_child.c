/* Walkthrough 2: the parent creates a 1000-byte object full of 1s and runs
 * a child (this program again, started with --child) that opens it
 * read-only, maps it and checks every byte.  The exit status is the
 * child's verdict.
 *   shm_parent_child [name]                                              */
#include <ipx/ipx.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 1000

static int fail(const char *who, const char *what, int err) {
  fprintf(stderr, "%s: %s: %s (%s)\n", who, what, ipx_strerror(err),
          ipx_err_name(err));
  return 1;
}

static int child(const char *name) {
  ipx_shm_t *shm;
  ipx_region_t *reg;
  int r;
  if ((r = ipx_shm_open(&shm, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0)))
    return fail("child", "open", r);
  r = ipx_region_map_shm(&reg, shm, IPX_READ_ONLY, NULL);
  ipx_shm_close(shm);
  if (r) return fail("child", "map", r);
  const unsigned char *mem = ipx_region_address(reg);
  size_t bad = 0;
  for (size_t i = 0; i < ipx_region_size(reg); i++) bad += mem[i] != 1;
  printf("child %d: opened \"%s\" read-only, %llu bytes, %zu wrong\n",
         (int)getpid(), name, (unsigned long long)ipx_region_size(reg), bad);
  int ok = bad == 0 && ipx_region_size(reg) == SIZE;
  ipx_region_unmap(reg);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
  const char *name = argc > 1 ? argv[1] : "shm_parent_child";
  ipx_shm_t *shm;
  ipx_region_t *reg;
  int r;

  if ((r = ipx_shm_open(&shm, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0)))
    return fail("parent", "create", r);
  if ((r = ipx_shm_resize(shm, SIZE, IPX_SHM_RESERVE)) ||
      (r = ipx_region_map_shm(&reg, shm, IPX_READ_WRITE, NULL))) {
    ipx_shm_close(shm);
    ipx_shm_remove(name);
    return fail("parent", "resize/map", r);
  }
  ipx_shm_close(shm);
  memset(ipx_region_address(reg), 1, SIZE);
  ipx_region_unmap(reg);
  printf("parent: created \"%s\", %d bytes, all set to 1\n", name, SIZE);

  fflush(stdout);
  /* This very program, found through /proc (argv[0] need not be a path). */
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    ipx_shm_remove(name);
    perror("readlink /proc/self/exe");
    return 1;
  }
  self[n] = 0;
  pid_t pid = fork();
  if (pid == 0) {
    execl(self, argv[0], "--child", name, (char *)NULL);
    perror("exec");
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) status = -1;
  ipx_shm_remove(name);
  int ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  printf("parent: child %s; removed \"%s\"\n",
         ok ? "found every byte right" : "FAILED", name);
  return ok ? 0 : 1;
}
