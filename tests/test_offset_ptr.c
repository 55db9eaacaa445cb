/* offset_ptr: offset pointers, in the checked (debug) mode, so every walk
 * below also proves that legitimate relocation passes the check. */
#define IPX_OFFSET_PTR_DEBUG 1

#include <errno.h>
#include <signal.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

typedef IPX_OFFSET_PTR(struct node) node_ptr;
struct node {
  node_ptr next;
  int64_t value;
};

IPX_STATIC_ASSERT(sizeof(IPX_OFFSET_PTR(struct node)) == 8, "typed is 8 bytes");
IPX_STATIC_ASSERT(alignof(ipx_offset_ptr_t) == 8, "aligned to 8");

IPX_TEST(set_get_null_and_arithmetic) {
  struct {
    int64_t before[4];
    ipx_offset_ptr_t p, q;
    int64_t after[4];
  } m;
  memset(&m, 0, sizeof m);
  ipx_offset_ptr_set(&m.p, &m.after[2]);
  IPX_ASSERT_PTR_EQ(ipx_offset_ptr_get(&m.p), &m.after[2]);
  IPX_ASSERT(!ipx_offset_ptr_is_null(&m.p));
  ipx_offset_ptr_set(&m.p, &m.before[0]); /* negative distance */
  IPX_ASSERT_PTR_EQ(ipx_offset_ptr_get(&m.p), &m.before[0]);
  ipx_offset_ptr_add(&m.p, 3 * (ptrdiff_t)sizeof(int64_t));
  IPX_ASSERT_PTR_EQ(ipx_offset_ptr_get(&m.p), &m.before[3]);
  ipx_offset_ptr_set(&m.p, &m.p); /* itself: distance 0, not null */
  IPX_ASSERT_PTR_EQ(ipx_offset_ptr_get(&m.p), &m.p);
  IPX_ASSERT(!ipx_offset_ptr_is_null(&m.p));

  ipx_offset_ptr_set(&m.p, NULL);
  IPX_ASSERT(ipx_offset_ptr_is_null(&m.p));
  IPX_ASSERT(ipx_offset_ptr_get(&m.p) == NULL);
  IPX_ASSERT_EQ(m.p.raw & 0xffffffffffff, 1); /* documented null: distance 1 */
  ipx_offset_ptr_add(&m.p, 64); /* null stays null */
  IPX_ASSERT(ipx_offset_ptr_is_null(&m.p));
  ipx_offset_ptr_set(&m.q, &m.after[0]);
  ipx_offset_ptr_set_null(&m.q);
  IPX_ASSERT(ipx_offset_ptr_eq(&m.p, &m.q));
  ipx_offset_ptr_set(&m.q, &m.after[1]);
  IPX_ASSERT(!ipx_offset_ptr_eq(&m.p, &m.q));
  ipx_offset_ptr_copy(&m.p, &m.q);
  IPX_ASSERT(ipx_offset_ptr_eq(&m.p, &m.q));
  IPX_ASSERT_PTR_EQ(ipx_offset_ptr_get(&m.p), &m.after[1]);
  /* The stored distance really is relative to each pointer. */
  IPX_ASSERT_NE(m.p.raw & 0xffffffffffff, m.q.raw & 0xffffffffffff);

  static ipx_offset_ptr_t s = IPX_OFFSET_PTR_NULL_INIT;
  IPX_ASSERT(ipx_offset_ptr_is_null(&s));
  IPX_ASSERT_OK(ipx_offset_ptr_check(&s));
}

IPX_TEST(typed_macros) {
  struct node n[5];
  node_ptr head;
  IPX_OPTR_SET_NULL(&head);
  IPX_ASSERT(IPX_OPTR_IS_NULL(&head));
  IPX_ASSERT(IPX_OPTR_GET(&head) == NULL);
  IPX_OPTR_SET(&head, &n[1]);
  struct node *got = IPX_OPTR_GET(&head); /* typed: no cast needed */
  IPX_ASSERT_PTR_EQ(got, &n[1]);
  IPX_OPTR_ADD(&head, 3);
  IPX_ASSERT_PTR_EQ(IPX_OPTR_GET(&head), &n[4]);
  IPX_OPTR_ADD(&head, -4);
  IPX_ASSERT_PTR_EQ(IPX_OPTR_GET(&head), &n[0]);
  IPX_OPTR_COPY(&n[2].next, &head);
  IPX_ASSERT_PTR_EQ(IPX_OPTR_GET(&n[2].next), &n[0]);
  /* Each argument evaluated once. */
  int calls = 0;
  node_ptr *arr[1] = {&head};
  IPX_OPTR_SET(arr[calls++], &n[3]);
  IPX_ASSERT_EQ(calls, 1);
  IPX_ASSERT_PTR_EQ(IPX_OPTR_GET(arr[calls-- - 1]), &n[3]);
  IPX_ASSERT_EQ(calls, 0);
  IPX_OPTR_SET(&head, NULL);
  IPX_ASSERT(IPX_OPTR_IS_NULL(&head));
}

IPX_TEST(copying_moves_the_target_and_check_catches_it) {
  struct node a[4];
  memset(a, 0, sizeof a);
  IPX_OPTR_SET(&a[0].next, &a[1]);
  IPX_ASSERT_OK(ipx_offset_ptr_check(&a[0].next.raw));
  /* A plain struct copy keeps the distance, so the copy points one node
   * further: the documented pitfall. */
  a[2] = a[0];
  IPX_ASSERT_PTR_EQ(ipx_offset_ptr_get_unchecked(&a[2].next.raw), &a[3]);
  IPX_ASSERT_ERR(ipx_offset_ptr_check(&a[2].next.raw), IPX_ECORRUPT);
  /* The right way. */
  IPX_OPTR_COPY(&a[2].next, &a[0].next);
  IPX_ASSERT_PTR_EQ(IPX_OPTR_GET(&a[2].next), &a[1]);
  IPX_ASSERT_OK(ipx_offset_ptr_check(&a[2].next.raw));
  /* Zeroed memory was never set. */
  IPX_ASSERT_ERR(ipx_offset_ptr_check(&a[3].next.raw), IPX_ECORRUPT);
  /* A copied null is still a null and passes. */
  IPX_OPTR_SET_NULL(&a[0].next);
  a[1] = a[0];
  IPX_ASSERT_OK(ipx_offset_ptr_check(&a[1].next.raw));
  IPX_ASSERT(IPX_OPTR_IS_NULL(&a[1].next));
}

static void get_copied(void *arg) {
  (void)arg;
  struct node a[3];
  memset(a, 0, sizeof a);
  IPX_OPTR_SET(&a[0].next, &a[1]);
  memcpy(&a[2], &a[0], sizeof a[0]);
  ipx_test_expect_crash();
  volatile struct node *p = IPX_OPTR_GET(&a[2].next); /* traps */
  (void)p;
  _exit(0);
}

static void get_zeroed(void *arg) {
  (void)arg;
  struct node z;
  memset(&z, 0, sizeof z);
  ipx_test_expect_crash();
  volatile struct node *p = IPX_OPTR_GET(&z.next); /* traps */
  (void)p;
  _exit(0);
}

IPX_TEST(debug_mode_traps_on_copied_or_unset_pointers) {
  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(get_copied, NULL), SIGILL);
  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(get_zeroed, NULL), SIGILL);
}

#define NODES 10

struct list {
  uint64_t magic;
  IPX_OFFSET_PTR(struct node) head;
  struct node nodes[NODES];
};

static void build_list(struct list *l) {
  l->magic = 0x4c495354;
  IPX_OPTR_SET_NULL(&l->head);
  for (int i = NODES - 1; i >= 0; i--) {
    struct node *n = &l->nodes[(i * 3) % NODES];
    n->value = 1000 + i;
    IPX_OPTR_COPY(&n->next, &l->head);
    IPX_OPTR_SET(&l->head, n);
  }
}

static int walk_list(const struct list *l) {
  int i = 0;
  for (const struct node *n = IPX_OPTR_GET(&l->head); n;
       n = IPX_OPTR_GET(&n->next), i++) {
    if (i >= NODES || n->value != 1000 + i) return -1;
    if ((const char *)n < (const char *)l ||
        (const char *)n >= (const char *)(l + 1))
      return -1; /* pointed outside this mapping */
  }
  return i;
}

IPX_TEST_PEER(peer_walks_list) {
  /* argv: name, the creator's address of the list (hex) */
  (void)argc;
  void *theirs = (void *)(uintptr_t)strtoull(argv[2], NULL, 16);
  size_t page = ipx_page_size();
  size_t len = (sizeof(struct list) + page - 1) / page * page;
  /* A decoy over the creator's address (never replacing anything) makes
   * sure this process maps the object somewhere else. */
  void *decoy = mmap(theirs, len, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ipx_shm_t *s;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_shm_open(&s, argv[1], IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_ONLY, NULL));
  const struct list *l = ipx_region_address(r);
  IPX_ASSERT(l != theirs);
  IPX_ASSERT_EQ(l->magic, 0x4c495354);
  IPX_ASSERT_EQ(walk_list(l), NODES);
  ipx_region_unmap(r);
  ipx_shm_close(s);
  if (decoy != MAP_FAILED) munmap(decoy, len);
  return 0;
}

static void fork_walks_and_relinks(void *arg) {
  const char *name = arg;
  ipx_shm_t *s;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL));
  struct list *l = ipx_region_address(r);
  IPX_ASSERT_EQ(walk_list(l), NODES);
  /* Drop the first node: the parent must see a 9-node list. */
  struct node *first = IPX_OPTR_GET(&l->head);
  IPX_OPTR_COPY(&l->head, &first->next);
  ipx_region_unmap(r);
  ipx_shm_close(s);
}

IPX_TEST(child_maps_elsewhere_and_follows_offset_pointers) {
  char name[128], addr[32];
  ipx_test_name(name, sizeof name, "list");
  ipx_shm_t *s;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx_shm_resize(s, sizeof(struct list), IPX_SHM_RESERVE));
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL));
  struct list *l = ipx_region_address(r);
  build_list(l);
  IPX_ASSERT_EQ(walk_list(l), NODES);

  snprintf(addr, sizeof addr, "%lx", (unsigned long)(uintptr_t)l);
  IPX_ASSERT_CHILD_OK(ipx_test_spawn("peer_walks_list", name, addr, NULL));
  /* A forked child still has our mapping, so its own lands elsewhere. */
  IPX_ASSERT_CHILD_OK(ipx_test_fork(fork_walks_and_relinks, name));
  int i = 0;
  for (struct node *n = IPX_OPTR_GET(&l->head); n; n = IPX_OPTR_GET(&n->next))
    IPX_ASSERT_EQ(n->value, 1001 + i++);
  IPX_ASSERT_EQ(i, NODES - 1);

  /* A second mapping in this process reads the same list, at its address. */
  ipx_region_t *r2;
  IPX_ASSERT_OK(ipx_region_map_shm(&r2, s, IPX_READ_ONLY, NULL));
  const struct list *l2 = ipx_region_address(r2);
  IPX_ASSERT(l2 != l);
  const struct node *n2 = IPX_OPTR_GET(&l2->head);
  IPX_ASSERT((const char *)n2 > (const char *)l2 &&
             (const char *)n2 < (const char *)(l2 + 1));
  IPX_ASSERT_EQ(n2->value, 1001);
  ipx_region_unmap(r2);
  ipx_region_unmap(r);
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}
