/* alloc: the allocator through the public API (ipx/alloc.h) in real
 * segments: every backing, several processes, children killed inside
 * allocate / free / reallocate on a shared memory segment, bad input, grow
 * and shrink-to-fit. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap.h"
#include "ipx/ipx.h"
#include "ipx_test.h"
#include "segment/segment_internal.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

static int open_shm(ipx_segment_t **s, const char *name, ipx_open_mode_t mode,
                    ipx_access_t access, uint64_t size) {
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = mode;
  o.access = access;
  o.size = size;
  return ipx_segment_open_shm(s, name, &o);
}

struct problems {
  int n;
  char first[256];
};
static void collect(void *ctx, const char *msg) {
  struct problems *p = ctx;
  if (p->n++ == 0) snprintf(p->first, sizeof p->first, "%s", msg);
}
static void assert_check(ipx_segment_t *s) {
  struct problems p = {0, ""};
  int r = ipx_segment_check(s, collect, &p);
  if (r != 0 || p.n != 0)
    IPX_FAIL("check: %s, %d problems, first: %s", ipx_err_name(r), p.n,
             p.first);
}
static uint64_t free_mem(ipx_segment_t *s) {
  uint64_t v = 0;
  IPX_ASSERT_OK(ipx_segment_free_memory(s, &v));
  return v;
}
static int all_freed(ipx_segment_t *s) {
  int v = -1;
  IPX_ASSERT_OK(ipx_segment_all_memory_deallocated(s, &v));
  return v;
}
static struct ipx__heap_stats heap_stats(ipx_segment_t *s) {
  struct ipx__heap_stats st;
  IPX_ASSERT_OK(ipx__heap_get_stats(ipx_segment_base(s),
                                    IPX_SEGMENT_HEADER_SIZE, &st));
  return st;
}

static void fill(unsigned char *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7u);
}
static int holds(const unsigned char *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed + i * 7u)) return 0;
  return 1;
}
static size_t rand_size(size_t max) {
  return ipx_test_rand() % 4 == 0 ? (size_t)(ipx_test_rand() % max)
                                  : (size_t)(ipx_test_rand() % 700);
}

/* ---- every backing -------------------------------------------------------- */

struct blk {
  unsigned char *p;
  size_t n;
  uint32_t seed;
};

/* Random allocate / aligned / reallocate / expand / shrink / free with
 * contents checked throughout; everything freed at the end must give back
 * exactly the free memory of the start. */
static void exercise(ipx_segment_t *s, long ops) {
  enum { N = 200 };
  struct blk b[N];
  memset(b, 0, sizeof b);
  uint64_t free0 = free_mem(s);
  IPX_ASSERT_EQ(all_freed(s), 1);
  uint32_t seed = 1;
  long fails = 0;
  for (long op = 0; op < ops; op++) {
    struct blk *x = &b[ipx_test_rand() % N];
    unsigned kind = (unsigned)(ipx_test_rand() % 10);
    if (!x->p) {
      size_t n = rand_size(64 * KiB);
      void *p;
      int r;
      if (kind < 3) {
        size_t align = (size_t)1 << (ipx_test_rand() % 13); /* 1..4096 */
        r = ipx_segment_allocate_aligned(s, n, align, &p);
        if (r == 0) IPX_ASSERT_EQ((uintptr_t)p % align, 0);
      } else {
        r = ipx_segment_allocate(s, n, &p);
      }
      if (r == IPX_ENOMEM) {
        fails++;
        continue;
      }
      IPX_ASSERT_OK(r);
      IPX_ASSERT_EQ((uintptr_t)p % 16, 0);
      size_t us;
      IPX_ASSERT_OK(ipx_segment_usable_size(s, p, &us));
      IPX_ASSERT_GE(us, n);
      *x = (struct blk){p, n, seed++};
      fill(x->p, x->n, x->seed);
      continue;
    }
    if (!holds(x->p, x->n, x->seed)) IPX_FAIL("block %p lost its contents", (void *)x->p);
    if (kind < 2) {
      size_t n = rand_size(64 * KiB);
      void *q;
      int r = ipx_segment_reallocate(s, x->p, n, &q);
      if (r == IPX_ENOMEM) continue;
      IPX_ASSERT_OK(r);
      size_t keep = n < x->n ? n : x->n;
      IPX_ASSERT(holds(q, keep, x->seed));
      x->p = q;
      x->n = n;
      fill(x->p, x->n, x->seed);
    } else if (kind == 2) {
      size_t got;
      int r = ipx_segment_expand(s, x->p, x->n + 100, x->n + 5000, &got);
      if (r == IPX_ENOMEM) continue;
      IPX_ASSERT_OK(r);
      IPX_ASSERT_GE(got, x->n + 100);
      IPX_ASSERT(holds(x->p, x->n, x->seed));
      x->n += 100;
      fill(x->p, x->n, x->seed);
    } else if (kind == 3) {
      size_t got, n = x->n / 2;
      IPX_ASSERT_OK(ipx_segment_shrink(s, x->p, n, &got));
      IPX_ASSERT_GE(got, n);
      x->n = n;
      IPX_ASSERT(holds(x->p, x->n, x->seed));
    } else {
      IPX_ASSERT_OK(ipx_segment_deallocate(s, x->p));
      x->p = NULL;
    }
  }
  assert_check(s);
  IPX_ASSERT_EQ(all_freed(s), 0);
  size_t largest;
  IPX_ASSERT_OK(ipx_segment_largest_free_block(s, &largest));
  IPX_ASSERT_LE(largest, free_mem(s));
  for (int i = 0; i < N; i++)
    if (b[i].p) {
      IPX_ASSERT(holds(b[i].p, b[i].n, b[i].seed));
      IPX_ASSERT_OK(ipx_segment_deallocate(s, b[i].p));
    }
  IPX_ASSERT_EQ(free_mem(s), free0);
  IPX_ASSERT_EQ(all_freed(s), 1);
  IPX_ASSERT_OK(ipx_segment_largest_free_block(s, &largest));
  IPX_ASSERT_GT(largest, free0 - 64);
  assert_check(s);
  ipx_test_log("%ld ops, %ld allocations refused for lack of memory", ops,
               fails);
}

IPX_TEST(shm_backing) {
  char name[128];
  ipx_test_name(name, sizeof name, "b");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 4 * MiB));
  exercise(s, ipx_test_scale(20000, 2000));
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

IPX_TEST(file_backing) {
  char path[512];
  snprintf(path, sizeof path, "%s/a.seg", ipx_test_tmpdir());
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_CREATE_ONLY;
  o.size = 4 * MiB;
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_open_file(&s, path, &o));
  exercise(s, ipx_test_scale(20000, 2000));
  /* The heap persists: reopen and allocate again. */
  void *p;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 100, &p));
  strcpy(p, "kept in the file");
  uint64_t h;
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, p, &h));
  IPX_ASSERT_OK(ipx_segment_flush(s));
  ipx_segment_close(s);
  o.mode = IPX_OPEN_ONLY;
  IPX_ASSERT_OK(ipx_segment_open_file(&s, path, &o));
  IPX_ASSERT_OK(ipx_segment_address_from_handle(s, h, &p));
  IPX_ASSERT_STREQ(p, "kept in the file");
  IPX_ASSERT_OK(ipx_segment_deallocate(s, p));
  IPX_ASSERT_EQ(all_freed(s), 1);
  assert_check(s);
  ipx_segment_close(s);
}

IPX_TEST(buffer_backing) {
  size_t sz = 4 * MiB;
  void *buf = aligned_alloc(64, sz);
  IPX_ASSERT(buf);
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_CREATE_ONLY;
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_open_buffer(&s, buf, sz, &o));
  exercise(s, ipx_test_scale(20000, 2000));
  ipx_segment_close(s);
  free(buf);
}

IPX_TEST(heap_backing) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, 4 * MiB));
  exercise(s, ipx_test_scale(20000, 2000));
  ipx_segment_close(s);
}

/* A small segment filled to exhaustion: everything comes back. */
IPX_TEST(exhaustion_then_everything_comes_back) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, 256 * KiB));
  uint64_t free0 = free_mem(s);
  void *p[4096];
  int n = 0;
  while (n < 4096 && ipx_segment_allocate(s, 48, &p[n]) == 0) n++;
  IPX_ASSERT_GT(n, 100);
  IPX_ASSERT_LT(n, 4096);
  IPX_ASSERT_LT(free_mem(s), 64);
  void *q;
  IPX_ASSERT_ERR(ipx_segment_allocate(s, 48, &q), IPX_ENOMEM);
  assert_check(s);
  for (int i = 0; i < n; i += 2) IPX_ASSERT_OK(ipx_segment_deallocate(s, p[i]));
  /* Freed small blocks sit in caches, yet a large request still finds the
   * space (the caches are coalesced when needed). */
  for (int i = 1; i < n; i += 2) IPX_ASSERT_OK(ipx_segment_deallocate(s, p[i]));
  IPX_ASSERT_EQ(free_mem(s), free0);
  IPX_ASSERT_OK(ipx_segment_allocate(s, (size_t)free0 - 16, &q));
  IPX_ASSERT_EQ(free_mem(s), 0);
  IPX_ASSERT_OK(ipx_segment_deallocate(s, q));
  IPX_ASSERT_EQ(free_mem(s), free0);
  assert_check(s);
  ipx_segment_close(s);
}

IPX_TEST(zero_free_memory_and_largest_block) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, 1 * MiB));
  unsigned char *a, *b;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 5000, (void **)&a));
  IPX_ASSERT_OK(ipx_segment_allocate(s, 5000, (void **)&b));
  memset(a, 0xEE, 5000);
  memset(b, 0xEE, 5000);
  IPX_ASSERT_OK(ipx_segment_deallocate(s, a));
  IPX_ASSERT_OK(ipx_segment_zero_free_memory(s));
  /* The freed block's bytes past the allocator's 16 bytes of links. */
  for (size_t i = 16; i < 5000; i++)
    if (a[i] != 0) IPX_FAIL("byte %zu of a freed block is %u", i, a[i]);
  for (size_t i = 0; i < 5000; i++) IPX_ASSERT_EQ(b[i], 0xEE);
  size_t largest;
  IPX_ASSERT_OK(ipx_segment_largest_free_block(s, &largest));
  void *c;
  IPX_ASSERT_OK(ipx_segment_allocate(s, largest, &c));
  IPX_ASSERT_OK(ipx_segment_deallocate(s, c));
  IPX_ASSERT_ERR(ipx_segment_allocate(s, largest + 1, &c), IPX_ENOMEM);
  IPX_ASSERT_OK(ipx_segment_deallocate(s, b));
  assert_check(s);
  ipx_segment_close(s);
}

/* ---- bad input ----------------------------------------------------------- */

IPX_TEST(bad_input_is_refused_and_changes_nothing) {
  char name[128];
  ipx_test_name(name, sizeof name, "bad");
  ipx_segment_t *s, *ro;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 1 * MiB));
  uint64_t free0 = free_mem(s);
  void *p = NULL, *q;
  size_t n;
  int v;

  /* NULL arguments. */
  IPX_ASSERT_ERR(ipx_segment_allocate(NULL, 8, &p), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_allocate(s, 8, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_allocate_aligned(NULL, 8, 64, &p), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_allocate_aligned(s, 8, 64, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_deallocate(NULL, p), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_segment_deallocate(s, NULL)); /* like free(NULL) */
  IPX_ASSERT_ERR(ipx_segment_usable_size(NULL, p, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_usable_size(s, NULL, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_reallocate(NULL, NULL, 8, &q), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_reallocate(s, NULL, 8, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_expand(s, NULL, 8, 8, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_shrink(s, NULL, 8, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_largest_free_block(NULL, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_largest_free_block(s, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_zero_free_memory(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_all_memory_deallocated(NULL, &v), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_all_memory_deallocated(s, NULL), IPX_EINVAL);

  /* allocate(0): a unique minimum block. */
  void *z1, *z2;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 0, &z1));
  IPX_ASSERT_OK(ipx_segment_allocate(s, 0, &z2));
  IPX_ASSERT(z1 != z2);
  IPX_ASSERT_OK(ipx_segment_usable_size(s, z1, &n));
  IPX_ASSERT_EQ(n, 16);

  /* Sizes that would overflow when rounded, and sizes beyond the segment. */
  static const size_t huge[] = {SIZE_MAX,      SIZE_MAX - 1, SIZE_MAX - 15,
                                SIZE_MAX - 16, SIZE_MAX - 64, SIZE_MAX / 2,
                                (size_t)1 << 46, 2 * MiB,    1 * MiB};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    p = (void *)1;
    IPX_ASSERT_ERR(ipx_segment_allocate(s, huge[i], &p), IPX_ENOMEM);
    IPX_ASSERT_PTR_EQ(p, (void *)1);
    IPX_ASSERT_ERR(ipx_segment_allocate_aligned(s, huge[i], 4096, &p),
                   IPX_ENOMEM);
    IPX_ASSERT_ERR(ipx_segment_reallocate(s, z1, huge[i], &q), IPX_ENOMEM);
    IPX_ASSERT_ERR(ipx_segment_expand(s, z1, huge[i], huge[i], &n), IPX_ENOMEM);
  }

  /* Alignments: zero, not a power of two, above the page size. */
  static const size_t bad_align[] = {0, 3, 24, 4095, 8192, SIZE_MAX,
                                     (size_t)1 << 63};
  for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++)
    IPX_ASSERT_ERR(ipx_segment_allocate_aligned(s, 64, bad_align[i], &p),
                   IPX_EINVAL);

  /* Pointers: double free, interior, into the allocator's control block,
   * into the segment header, foreign. */
  unsigned char *a;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 100, (void **)&a));
  memset(a, 0x5A, 100);
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, a + 16), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, a + 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, a - 16), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_usable_size(s, a + 32, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_reallocate(s, a + 32, 10, &q), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_expand(s, a + 32, 200, 200, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_shrink(s, a + 32, 10, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_shrink(s, a, 1000, &n), IPX_EINVAL);
  unsigned char *base = ipx_segment_base(s);
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, base + IPX_SEGMENT_HEADER_SIZE + 64),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, base + 64), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, base - 4096), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, base + ipx_segment_size(s)),
                 IPX_ERANGE);
  int on_stack;
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, &on_stack), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_usable_size(s, &on_stack, &n), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_reallocate(s, &on_stack, 8, &q), IPX_ERANGE);
  void *heap_ptr = malloc(64);
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, heap_ptr), IPX_ERANGE);
  free(heap_ptr);
  /* A block of another segment is foreign too. */
  ipx_segment_t *other;
  IPX_ASSERT_OK(ipx_segment_create_heap(&other, 64 * KiB));
  void *op;
  IPX_ASSERT_OK(ipx_segment_allocate(other, 10, &op));
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, op), IPX_ERANGE);
  IPX_ASSERT_OK(ipx_segment_deallocate(other, op));
  ipx_segment_close(other);
  for (int i = 0; i < 100; i++) IPX_ASSERT_EQ(a[i], 0x5A);
  IPX_ASSERT_OK(ipx_segment_deallocate(s, a));
  IPX_ASSERT_ERR(ipx_segment_deallocate(s, a), IPX_EINVAL); /* double free */
  IPX_ASSERT_ERR(ipx_segment_usable_size(s, a, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_reallocate(s, a, 10, &q), IPX_EINVAL);
  assert_check(s);

  /* A read-only opener reads but never allocates or frees. */
  IPX_ASSERT_OK(open_shm(&ro, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  void *z1ro = (unsigned char *)ipx_segment_base(ro) +
               ((unsigned char *)z1 - base);
  IPX_ASSERT_ERR(ipx_segment_allocate(ro, 8, &p), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_segment_allocate_aligned(ro, 8, 64, &p), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_segment_deallocate(ro, z1ro), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_segment_reallocate(ro, z1ro, 8, &q), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_segment_expand(ro, z1ro, 8, 8, &n), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_segment_shrink(ro, z1ro, 8, &n), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_segment_largest_free_block(ro, &n), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_segment_zero_free_memory(ro), IPX_EREADONLY);
  IPX_ASSERT_OK(ipx_segment_usable_size(ro, z1ro, &n));
  IPX_ASSERT_EQ(n, 16);
  IPX_ASSERT_ERR(ipx_segment_usable_size(ro, (unsigned char *)z1ro + 16, &n),
                 IPX_EINVAL);
  IPX_ASSERT_EQ(all_freed(ro), 0);
  IPX_ASSERT_OK(ipx_segment_deallocate(s, z1));
  IPX_ASSERT_OK(ipx_segment_deallocate(s, z2));
  IPX_ASSERT_EQ(all_freed(ro), 1);
  IPX_ASSERT_EQ(free_mem(ro), free0);
  IPX_ASSERT_OK(ipx_segment_check(ro, NULL, NULL));
  ipx_segment_close(ro);

  IPX_ASSERT_EQ(free_mem(s), free0);
  assert_check(s);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* ---- several processes --------------------------------------------------- */

struct crowd {
  char name[128];
  long ops;
};

static void crowd_worker(void *arg) {
  struct crowd *c = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, c->name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  enum { N = 64 };
  struct blk b[N];
  memset(b, 0, sizeof b);
  uint32_t seed = (uint32_t)getpid() * 131u;
  for (long op = 0; op < c->ops; op++) {
    struct blk *x = &b[ipx_test_rand() % N];
    if (!x->p) {
      size_t n = rand_size(8 * KiB);
      int r = ipx_segment_allocate(s, n, (void **)&x->p);
      if (r == IPX_ENOMEM) continue;
      IPX_ASSERT_OK(r);
      x->n = n;
      x->seed = seed++;
      fill(x->p, x->n, x->seed);
    } else {
      if (!holds(x->p, x->n, x->seed)) IPX_FAIL("a block lost its contents");
      if (ipx_test_rand() % 4 == 0) {
        size_t n = rand_size(8 * KiB);
        void *q;
        int r = ipx_segment_reallocate(s, x->p, n, &q);
        if (r == IPX_ENOMEM) continue;
        IPX_ASSERT_OK(r);
        IPX_ASSERT(holds(q, n < x->n ? n : x->n, x->seed));
        x->p = q;
        x->n = n;
        fill(x->p, x->n, x->seed);
      } else {
        IPX_ASSERT_OK(ipx_segment_deallocate(s, x->p));
        x->p = NULL;
      }
    }
  }
  for (int i = 0; i < N; i++)
    if (b[i].p) IPX_ASSERT_OK(ipx_segment_deallocate(s, b[i].p));
  ipx_segment_close(s);
}

IPX_TEST(several_processes_allocate_and_free_at_once) {
  struct crowd *c = ipx_test_shared_alloc(sizeof *c);
  ipx_test_name(c->name, sizeof c->name, "crowd");
  c->ops = ipx_test_scale(40000, 2000);
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, c->name, IPX_CREATE_ONLY, IPX_READ_WRITE, 4 * MiB));
  uint64_t free0 = free_mem(s);
  enum { P = 4 };
  pid_t pid[P];
  for (int i = 0; i < P; i++) pid[i] = ipx_test_fork(crowd_worker, c);
  for (int i = 0; i < P; i++) IPX_ASSERT_CHILD_OK(pid[i]);
  assert_check(s);
  IPX_ASSERT_EQ(free_mem(s), free0);
  IPX_ASSERT_EQ(all_freed(s), 1);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(c->name));
  ipx_test_shared_free(c, sizeof *c);
}

/* ---- crash loop ---------------------------------------------------------- */

/* A table inside the segment: each entry a block's handle, size and seed,
 * with a state written after the other fields. */
enum { T_EMPTY, T_PENDING, T_LIVE, T_FREEING, T_REALLOC };
struct entry {
  uint32_t state;
  uint32_t seed;
  uint64_t off; /* handle: valid in every process */
  uint64_t size;
  uint64_t new_size;
};
enum { ENTRIES = 256 };

static void set_state(struct entry *e, uint32_t st) {
  __atomic_store_n(&e->state, st, __ATOMIC_RELEASE);
}

/* Any prefix of a stamped block is the stamp of that length: cheap to
 * write, so the child spends its time in the allocator. */
static void stamp(unsigned char *p, size_t n, uint32_t seed) {
  uint64_t s = seed;
  memcpy(p, &s, n < 8 ? n : 8);
  if (n > 8) memset(p + 8, (int)(seed & 0xff), n - 8);
}
static int stamped(const unsigned char *p, size_t n, uint32_t seed) {
  uint64_t s = seed;
  if (memcmp(p, &s, n < 8 ? n : 8) != 0) return 0;
  for (size_t i = 8; i < n; i++)
    if (p[i] != (seed & 0xff)) return 0;
  return 1;
}

struct crash_ctx {
  char name[128];
  uint64_t table; /* handle */
  int ready;      /* the child has the segment open */
};

static void crash_child(void *arg) {
  struct crash_ctx *cx = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, cx->name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  unsigned char *b = ipx_segment_base(s);
  struct entry *table = (struct entry *)(void *)(b + cx->table);
  uint32_t seed = (uint32_t)ipx_test_rand() | 1u;
  __atomic_store_n(&cx->ready, 1, __ATOMIC_RELEASE);
  for (;;) {
    struct entry *e = &table[ipx_test_rand() % ENTRIES];
    if (e->state == T_EMPTY) {
      e->size = rand_size(12000);
      e->seed = seed++;
      set_state(e, T_PENDING);
      void *p;
      if (ipx_segment_allocate(s, e->size, &p) != 0) {
        set_state(e, T_EMPTY);
        continue;
      }
      e->off = (uint64_t)((unsigned char *)p - b);
      stamp(p, e->size, e->seed);
      set_state(e, T_LIVE);
    } else if (ipx_test_rand() % 3 == 0) {
      e->new_size = rand_size(12000);
      set_state(e, T_REALLOC);
      void *q;
      if (ipx_segment_reallocate(s, b + e->off, e->new_size, &q) != 0) {
        set_state(e, T_LIVE);
        continue;
      }
      set_state(e, T_PENDING); /* the new handle is not recorded yet */
      e->off = (uint64_t)((unsigned char *)q - b);
      e->size = e->new_size;
      stamp(q, e->size, e->seed);
      set_state(e, T_LIVE);
    } else {
      set_state(e, T_FREEING);
      ipx_segment_deallocate(s, b + e->off);
      set_state(e, T_EMPTY);
    }
  }
}

struct orphan_scan {
  const struct entry *table;
  uint64_t table_off;
  uint64_t orphans[4];
  int n;
};
static int find_orphans(void *ctx, uint64_t off, size_t usable, int allocated) {
  struct orphan_scan *o = ctx;
  (void)usable;
  if (!allocated || off == o->table_off) return 0;
  for (int i = 0; i < ENTRIES; i++)
    if (o->table[i].state == T_LIVE && o->table[i].off == off) return 0;
  if (o->n < 4) o->orphans[o->n] = off;
  o->n++;
  return 0;
}
static int is_live(ipx_segment_t *s, uint64_t off) {
  size_t n;
  return ipx_segment_usable_size(s, (unsigned char *)ipx_segment_base(s) + off,
                                 &n) == 0;
}
static int cmp_u64(const void *x, const void *y) {
  const uint64_t *a = x, *b = y;
  return (a[0] > b[0]) - (a[0] < b[0]);
}

IPX_TEST_T(crash_loop_children_killed_inside_allocate_free_reallocate, 150) {
  struct crash_ctx *cx = ipx_test_shared_alloc(sizeof *cx);
  ipx_test_name(cx->name, sizeof cx->name, "crash");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, cx->name, IPX_CREATE_ONLY, IPX_READ_WRITE, 8 * MiB));
  uint64_t free0 = free_mem(s);
  unsigned char *b = ipx_segment_base(s);
  void *tp;
  IPX_ASSERT_OK(ipx_segment_allocate(s, ENTRIES * sizeof(struct entry), &tp));
  memset(tp, 0, ENTRIES * sizeof(struct entry));
  struct entry *table = tp;
  cx->table = (uint64_t)((unsigned char *)tp - b);
  long iters = ipx_test_scale(300, 60);
  long repaired = 0, realloc_resolved = 0, orphans_freed = 0;
  /* Past `iters` only while no kill has yet landed inside the allocator
   * (under valgrind the child spends most of its time elsewhere). */
  long it = 0;
  for (; it < iters || (repaired == 0 && it < 5 * iters); it++) {
    uint64_t repairs0 = heap_stats(s).repairs;
    cx->ready = 0;
    pid_t pid = ipx_test_fork(crash_child, cx);
    /* Wait until it is at work (a slow start under a sanitizer must not
     * eat the delay), then let it run for 0..2 ms. */
    for (int i = 0; i < 200000 && !__atomic_load_n(&cx->ready, __ATOMIC_ACQUIRE); i++)
      usleep(50);
    usleep((useconds_t)(ipx_test_rand() % 2000));
    kill(pid, SIGKILL);
    int st = ipx_test_wait(pid, 10000);
    IPX_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* Locking (inside check) runs the repair when the child died in it. */
    assert_check(s);
    if (heap_stats(s).repairs != repairs0) repaired++;

    for (int i = 0; i < ENTRIES; i++) {
      struct entry *e = &table[i];
      if (e->state == T_FREEING) {
        if (is_live(s, e->off)) IPX_ASSERT_OK(ipx_segment_deallocate(s, b + e->off));
        e->state = T_EMPTY;
      } else if (e->state == T_REALLOC) {
        size_t keep = e->new_size < e->size ? e->new_size : e->size;
        if (is_live(s, e->off)) {
          /* Undone, or done in place. */
          if (!stamped(b + e->off, keep, e->seed))
            IPX_FAIL("iteration %ld: interrupted reallocate lost its data", it);
        } else {
          /* Done and moved: the new block is the one orphan. */
          struct orphan_scan o = {table, cx->table, {0}, 0};
          IPX_ASSERT_OK(ipx__heap_walk(b, IPX_SEGMENT_HEADER_SIZE, find_orphans, &o));
          IPX_ASSERT_EQ(o.n, 1);
          IPX_ASSERT(stamped(b + o.orphans[0], keep, e->seed));
          e->off = o.orphans[0];
        }
        e->size = keep;
        e->state = T_LIVE;
        realloc_resolved++;
      } else if (e->state == T_PENDING) {
        e->state = T_EMPTY; /* its block, if any, is an orphan below */
      }
    }
    struct orphan_scan o = {table, cx->table, {0}, 0};
    IPX_ASSERT_OK(ipx__heap_walk(b, IPX_SEGMENT_HEADER_SIZE, find_orphans, &o));
    IPX_ASSERT_LE(o.n, 1); /* only the block being allocated */
    for (int i = 0; i < o.n; i++) {
      IPX_ASSERT_OK(ipx_segment_deallocate(s, b + o.orphans[i]));
      orphans_freed++;
    }
    /* Every recorded block holds its pattern; none overlap. */
    uint64_t live[ENTRIES][2];
    size_t n = 0;
    for (int i = 0; i < ENTRIES; i++) {
      struct entry *e = &table[i];
      if (e->state != T_LIVE) continue;
      size_t us;
      IPX_ASSERT_OK(ipx_segment_usable_size(s, b + e->off, &us));
      IPX_ASSERT_GE(us, e->size);
      if (!stamped(b + e->off, e->size, e->seed))
        IPX_FAIL("iteration %ld: block at %llu lost its pattern", it,
                 (unsigned long long)e->off);
      live[n][0] = e->off;
      live[n][1] = us;
      n++;
    }
    qsort(live, n, sizeof live[0], cmp_u64);
    for (size_t i = 0; i + 1 < n; i++)
      IPX_ASSERT_LE(live[i][0] + live[i][1], live[i + 1][0]);
    /* The parent allocates and frees more. */
    for (int k = 0; k < 20; k++) {
      void *p;
      size_t sz = rand_size(12000);
      if (ipx_segment_allocate(s, sz, &p) == 0) {
        stamp(p, sz, 7);
        IPX_ASSERT(stamped(p, sz, 7));
        IPX_ASSERT_OK(ipx_segment_deallocate(s, p));
      }
    }
  }
  for (int i = 0; i < ENTRIES; i++)
    if (table[i].state == T_LIVE)
      IPX_ASSERT_OK(ipx_segment_deallocate(s, b + table[i].off));
  IPX_ASSERT_OK(ipx_segment_deallocate(s, tp));
  IPX_ASSERT_EQ(all_freed(s), 1);
  IPX_ASSERT_EQ(free_mem(s), free0);
  assert_check(s);
  ipx_test_log("%ld kills: %ld needed repair (rolled back), %ld interrupted "
               "reallocates resolved, %ld orphaned blocks freed",
               it, repaired, realloc_resolved, orphans_freed);
  IPX_ASSERT_GT(repaired, 0);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(cx->name));
  ipx_test_shared_free(cx, sizeof *cx);
}

/* ---- placement across processes ------------------------------------------ */

struct place_job {
  char name[128];
  uint64_t expect; /* handle the child's allocation should get */
};

static void allocate_16k_in_a_fresh_handle(void *arg) {
  struct place_job *j = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, j->name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  void *p;
  uint64_t h;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 16 * KiB, &p));
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, p, &h));
  IPX_ASSERT_EQ(h, j->expect);
  IPX_ASSERT_OK(ipx_segment_deallocate(s, p));
  ipx_segment_close(s);
}

/* A process new to a segment knows which of its pages others already
 * brought into memory (docs/heap.md, "Placement"): here the parent touched
 * only the page where a back split of a free 64 KiB block would write its
 * header, so the child's 16 KiB allocation takes that block's back. */
IPX_TEST(placement_knows_pages_another_process_brought_in) {
  struct place_job *j = ipx_test_shared_alloc(sizeof *j);
  ipx_test_name(j->name, sizeof j->name, "place");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, j->name, IPX_CREATE_ONLY, IPX_READ_WRITE, 8 * MiB));
  unsigned char *x, *guard;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 64 * KiB, (void **)&x));
  IPX_ASSERT_OK(ipx_segment_allocate(s, 2000, (void **)&guard));
  /* The free block spans x - 16 .. x + 64 KiB; a block of 16 KiB + 16
   * taken from its back has its header here. */
  unsigned char *back = x + 64 * KiB - (16 * KiB + 16);
  back[100] = 1;
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, back + 16, &j->expect));
  IPX_ASSERT_OK(ipx_segment_deallocate(s, x));
  IPX_ASSERT_CHILD_OK(ipx_test_fork(allocate_16k_in_a_fresh_handle, j));

  /* Without the page touched, the same request takes the front. */
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(j->name));
  IPX_ASSERT_OK(open_shm(&s, j->name, IPX_CREATE_ONLY, IPX_READ_WRITE, 8 * MiB));
  IPX_ASSERT_OK(ipx_segment_allocate(s, 64 * KiB, (void **)&x));
  IPX_ASSERT_OK(ipx_segment_allocate(s, 2000, (void **)&guard));
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, x, &j->expect));
  IPX_ASSERT_OK(ipx_segment_deallocate(s, x));
  IPX_ASSERT_CHILD_OK(ipx_test_fork(allocate_16k_in_a_fresh_handle, j));

  IPX_ASSERT_OK(ipx_segment_deallocate(s, guard));
  IPX_ASSERT_EQ(all_freed(s), 1);
  assert_check(s);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(j->name));
  ipx_test_shared_free(j, sizeof *j);
}

/* ---- grow and shrink to fit ---------------------------------------------- */

IPX_TEST(grow_then_allocate_into_the_new_space) {
  char name[128];
  ipx_test_name(name, sizeof name, "grow");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  char *keep;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 1000, (void **)&keep));
  strcpy(keep, "before the grow");
  uint64_t h;
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, keep, &h));
  void *p;
  IPX_ASSERT_ERR(ipx_segment_allocate(s, 512 * KiB, &p), IPX_ENOMEM);
  uint64_t free_before = free_mem(s);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_grow_shm(name, 1 * MiB));
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(free_mem(s), free_before + 1 * MiB);
  assert_check(s);
  IPX_ASSERT_OK(ipx_segment_allocate(s, 512 * KiB, &p));
  memset(p, 1, 512 * KiB);
  IPX_ASSERT_OK(ipx_segment_address_from_handle(s, h, (void **)&keep));
  IPX_ASSERT_STREQ(keep, "before the grow");
  IPX_ASSERT_OK(ipx_segment_deallocate(s, p));
  IPX_ASSERT_OK(ipx_segment_deallocate(s, keep));
  IPX_ASSERT_EQ(all_freed(s), 1);
  assert_check(s);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

IPX_TEST(shrink_to_fit_keeps_every_live_block) {
  char name[128];
  ipx_test_name(name, sizeof name, "fit");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 8 * MiB));
  enum { N = 300 };
  static uint64_t h[N];
  static size_t sz[N];
  for (int i = 0; i < N; i++) {
    void *p;
    sz[i] = rand_size(20000);
    IPX_ASSERT_OK(ipx_segment_allocate(s, sz[i], &p));
    fill(p, sz[i], (uint32_t)i);
    IPX_ASSERT_OK(ipx_segment_handle_from_address(s, p, &h[i]));
  }
  /* Free every other one (the caches keep many of them). */
  unsigned char *b = ipx_segment_base(s);
  for (int i = 0; i < N; i += 2) IPX_ASSERT_OK(ipx_segment_deallocate(s, b + h[i]));
  uint64_t size0 = ipx_segment_size(s);
  ipx_segment_close(s);
  uint64_t ns;
  IPX_ASSERT_OK(ipx_segment_shrink_to_fit_shm(name, &ns));
  IPX_ASSERT_LT(ns, size0 / 2);
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(ipx_segment_size(s), ns);
  assert_check(s);
  b = ipx_segment_base(s);
  for (int i = 1; i < N; i += 2) {
    size_t us;
    IPX_ASSERT_OK(ipx_segment_usable_size(s, b + h[i], &us));
    IPX_ASSERT_GE(us, sz[i]);
    IPX_ASSERT(holds(b + h[i], sz[i], (uint32_t)i));
  }
  /* Shrinking again changes nothing; growing then shrinking comes back. */
  ipx_segment_close(s);
  uint64_t ns2;
  IPX_ASSERT_OK(ipx_segment_shrink_to_fit_shm(name, &ns2));
  IPX_ASSERT_EQ(ns2, ns);
  IPX_ASSERT_OK(ipx_segment_grow_shm(name, 3 * MiB));
  IPX_ASSERT_OK(ipx_segment_shrink_to_fit_shm(name, &ns2));
  IPX_ASSERT_EQ(ns2, ns);
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  b = ipx_segment_base(s);
  for (int i = 1; i < N; i += 2) {
    IPX_ASSERT(holds(b + h[i], sz[i], (uint32_t)i));
    IPX_ASSERT_OK(ipx_segment_deallocate(s, b + h[i]));
  }
  IPX_ASSERT_EQ(all_freed(s), 1);
  assert_check(s);
  ipx_segment_close(s);
  /* Empty: down to the minimum. */
  IPX_ASSERT_OK(ipx_segment_shrink_to_fit_shm(name, &ns));
  IPX_ASSERT_EQ(ns, IPX_SEGMENT_MIN_SIZE);
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  assert_check(s);
  void *p;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 1000, &p));
  IPX_ASSERT_OK(ipx_segment_deallocate(s, p));
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* A writer killed with the lock held and an operation half done: a
 * shrink-to-fit (which needs no lock: nobody has the segment open) rolls
 * it back itself. */
static void die_inside(void *arg) {
  const char *name = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  ipx_test_expect_crash();
  void *p;
  for (;;)
    if (ipx_segment_allocate(s, 200 + ipx_test_rand() % 3000, &p) == 0)
      ipx_segment_deallocate(s, p);
}

IPX_TEST(resize_after_a_writer_died_in_the_heap) {
  char *name = ipx_test_shared_alloc(128);
  ipx_test_name(name, 128, "died");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 1 * MiB));
  void *keep;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 5000, &keep));
  fill(keep, 5000, 3);
  uint64_t h;
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, keep, &h));
  ipx_segment_close(s);
  for (int i = 0; i < 20; i++) {
    pid_t pid = ipx_test_fork(die_inside, name);
    usleep((useconds_t)(3000 + ipx_test_rand() % 7000));
    kill(pid, SIGKILL);
    ipx_test_wait(pid, 10000);
    uint64_t ns;
    IPX_ASSERT_OK(i % 2 ? ipx_segment_grow_shm(name, 64 * KiB)
                        : ipx_segment_shrink_to_fit_shm(name, &ns));
    IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
    assert_check(s);
    unsigned char *b = ipx_segment_base(s);
    IPX_ASSERT(holds(b + h, 5000, 3));
    ipx_segment_close(s);
  }
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  ipx_test_log("20 kills: %llu interrupted operations rolled back by the "
               "resize", (unsigned long long)heap_stats(s).repairs);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
  ipx_test_shared_free(name, 128);
}
