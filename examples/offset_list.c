/* Walkthrough 4: a linked list of 10 nodes built with offset pointers in a
 * shared memory object; a child process maps the same object at another
 * address and walks it.
 *   offset_list [name]                                                   */
#include <ipx/ipx.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODES 10

struct node {
  IPX_OFFSET_PTR(struct node) next;
  int64_t value;
};

struct list {
  IPX_OFFSET_PTR(struct node) head;
  struct node nodes[NODES];
};

static int walk(const struct list *l, const char *who) {
  int n = 0, bad = 0;
  printf("%s: list at %p:", who, (const void *)l);
  for (struct node *p = IPX_OPTR_GET(&l->head); p; p = IPX_OPTR_GET(&p->next)) {
    printf(" %lld", (long long)p->value);
    bad += p->value != (int64_t)(n * n);
    if (++n > NODES) break;
  }
  printf("\n");
  return n == NODES && bad == 0 ? 0 : 1;
}

static int child(const char *name, const void *parent_addr) {
  ipx_shm_t *shm;
  ipx_region_t *reg;
  int r = ipx_shm_open(&shm, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0);
  if (r == 0) {
    r = ipx_region_map_shm(&reg, shm, IPX_READ_ONLY, NULL);
    ipx_shm_close(shm);
  }
  if (r != 0) {
    fprintf(stderr, "child: %s\n", ipx_strerror(r));
    return 1;
  }
  /* The parent's mapping is still here (inherited), so this new mapping of
   * the same object necessarily lies at another address. */
  const struct list *l = ipx_region_address(reg);
  printf("child: mapped the object at %p (parent's copy at %p)\n",
         (const void *)l, parent_addr);
  int rc = (const void *)l == parent_addr ? 1 : walk(l, "child");
  ipx_region_unmap(reg);
  return rc;
}

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "offset_list";
  ipx_shm_t *shm;
  ipx_region_t *reg;
  int r = ipx_shm_open(&shm, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0);
  if (r == 0) {
    r = ipx_shm_resize(shm, sizeof(struct list), IPX_SHM_RESERVE);
    if (r == 0) r = ipx_region_map_shm(&reg, shm, IPX_READ_WRITE, NULL);
    ipx_shm_close(shm);
    if (r != 0) ipx_shm_remove(name);
  }
  if (r != 0) {
    fprintf(stderr, "offset_list: %s\n", ipx_strerror(r));
    return 1;
  }
  struct list *l = ipx_region_address(reg);
  /* Built back to front, so the list runs 0, 1, 4, 9 ... 81. */
  IPX_OPTR_SET_NULL(&l->head);
  for (int i = NODES - 1; i >= 0; i--) {
    struct node *n = &l->nodes[(i * 7) % NODES]; /* scattered on purpose */
    n->value = (int64_t)i * i;
    IPX_OPTR_COPY(&n->next, &l->head);
    IPX_OPTR_SET(&l->head, n);
  }
  printf("parent: built a %d-node list in \"%s\"\n", NODES, name);
  int rc = walk(l, "parent");

  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int c = child(name, l);
    fflush(stdout);
    _exit(c);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) status = -1;
  int ok = rc == 0 && status != -1 && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
  printf("parent: the child %s the list\n", ok ? "walked" : "FAILED to walk");
  ipx_region_unmap(reg);
  ipx_shm_remove(name);
  return ok ? 0 : 1;
}
