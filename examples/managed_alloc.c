/* Walkthrough 5: allocation in a managed segment, shared by handle.  The
 * parent creates a managed shared memory segment, allocates 1024 bytes in
 * it, writes a string there and runs a child (this program again, started
 * with --child NAME HANDLE) that opens the segment, turns the handle back
 * into an address in its own mapping, prints the string and deallocates the
 * block.  The parent then checks that the segment's free memory is back
 * exactly where it was before the allocation.
 *   managed_alloc [name]                                                 */
#include <ipx/ipx.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEG_SIZE (1024 * 1024)

static int fail(const char *who, const char *what, int err) {
  fprintf(stderr, "%s: %s: %s (%s)\n", who, what, ipx_strerror(err),
          ipx_err_name(err));
  return 1;
}

static int child(const char *name, const char *handle_text) {
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_OPEN_ONLY;
  ipx_segment_t *seg;
  int r = ipx_segment_open_shm(&seg, name, &o);
  if (r) return fail("child", "open", r);
  char *end;
  uint64_t handle = strtoull(handle_text, &end, 10);
  void *p = NULL;
  if (*end != 0) r = IPX_EINVAL;
  if (!r) r = ipx_segment_address_from_handle(seg, handle, &p);
  size_t n = 0;
  /* The handle must name a live block: a typo on the command line is
   * refused here rather than read. */
  if (!r) r = ipx_segment_usable_size(seg, p, &n);
  if (r) {
    ipx_segment_close(seg);
    return fail("child", "handle", r);
  }
  printf("child %d: handle %" PRIu64 " is %p here (a %zu-byte block): \"%s\"\n",
         (int)getpid(), handle, p, n, (const char *)p);
  r = ipx_segment_deallocate(seg, p);
  if (r) {
    ipx_segment_close(seg);
    return fail("child", "deallocate", r);
  }
  printf("child %d: deallocated the block\n", (int)getpid());
  ipx_segment_close(seg);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 3 && strcmp(argv[1], "--child") == 0)
    return child(argv[2], argv[3]);
  const char *name = argc > 1 ? argv[1] : "managed_alloc";
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_CREATE_ONLY;
  o.size = SEG_SIZE;
  ipx_segment_t *seg;
  int r = ipx_segment_open_shm(&seg, name, &o);
  if (r) return fail("parent", "create", r);

  uint64_t free_before = 0, free_after = 0, handle = 0;
  void *p = NULL;
  if ((r = ipx_segment_free_memory(seg, &free_before)) ||
      (r = ipx_segment_allocate(seg, 1024, &p)) ||
      (r = ipx_segment_handle_from_address(seg, p, &handle))) {
    ipx_segment_close(seg);
    ipx_segment_remove_shm(name);
    return fail("parent", "allocate", r);
  }
  snprintf(p, 1024, "Hello from process %d, through a managed segment!",
           (int)getpid());
  printf("parent: created segment \"%s\" (%d bytes), %" PRIu64
         " bytes free\n", name, SEG_SIZE, free_before);
  printf("parent: allocated 1024 bytes at %p, handle %" PRIu64 ", wrote \"%s\"\n",
         p, handle, (const char *)p);

  fflush(stdout);
  /* This very program, found through /proc (argv[0] need not be a path). */
  char self[4096], handle_text[32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    perror("readlink /proc/self/exe");
    ipx_segment_close(seg);
    ipx_segment_remove_shm(name);
    return 1;
  }
  self[n] = 0;
  snprintf(handle_text, sizeof handle_text, "%" PRIu64, handle);
  pid_t pid = fork();
  if (pid == 0) {
    execl(self, argv[0], "--child", name, handle_text, (char *)NULL);
    perror("exec");
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) status = -1;
  int ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;

  r = ipx_segment_free_memory(seg, &free_after);
  int all = 0;
  if (!r) r = ipx_segment_all_memory_deallocated(seg, &all);
  if (!r) r = ipx_segment_check(seg, NULL, NULL);
  ipx_segment_close(seg);
  ipx_segment_remove_shm(name);
  if (r) return fail("parent", "after the child", r);
  printf("parent: child %s; %" PRIu64 " bytes free (%s before), "
         "all memory deallocated: %s; removed \"%s\"\n",
         ok ? "done" : "FAILED", free_after,
         free_after == free_before ? "exactly as" : "NOT as",
         all ? "yes" : "no", name);
  return ok && free_after == free_before && all ? 0 : 1;
}
