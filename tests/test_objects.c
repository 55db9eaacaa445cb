/* objects: named, unique and anonymous objects in a managed segment. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"
#include "heap/heap.h"
#include "objects/objects_internal.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

struct point {
  double x, y;
  int id;
};

static ipx_segment_t *heap_seg(uint64_t size) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, size));
  return s;
}

static int open_shm(ipx_segment_t **s, const char *name, ipx_open_mode_t mode,
                    ipx_access_t access, uint64_t size) {
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = mode;
  o.access = access;
  if (size) o.size = size;
  return ipx_segment_open_shm(s, name, &o);
}

/* Free bytes of the segment's heap (no other process may be inside). */
static uint64_t heap_free(ipx_segment_t *s) {
  return ipx__heap_free_bytes(ipx_segment_base(s), IPX_SEGMENT_HEADER_SIZE);
}

static void report_fail(void *ctx, const char *msg) {
  (void)ctx;
  ipx_test_log("check: %s", msg);
}

static void assert_check(ipx_segment_t *s) {
  IPX_ASSERT_OK(ipx_segment_check(s, report_fail, NULL));
}

static uint64_t named_count(ipx_segment_t *s) {
  uint64_t n = 99999;
  IPX_ASSERT_OK(ipx_segment_named_count(s, &n));
  return n;
}

/* ---- basics ------------------------------------------------------------ */

IPX_TEST(construct_find_destroy) {
  ipx_segment_t *s = heap_seg(1 * MiB);
  IPX_ASSERT_EQ(named_count(s), 0);
  uint64_t free0 = heap_free(s);
  void *p, *q;
  size_t n = 0;
  IPX_ASSERT_OK(ipx_object_construct(s, IPX_OBJECT_NAMED, "alpha", 8, 0, 100,
                                     NULL, NULL, &p));
  for (int i = 0; i < 800; i++) IPX_ASSERT_EQ(((unsigned char *)p)[i], 0);
  memset(p, 0xab, 800);
  IPX_ASSERT_EQ((uintptr_t)p % 16, 0);
  IPX_ASSERT_OK(ipx_object_find(s, IPX_OBJECT_NAMED, "alpha", 8, &q, &n));
  IPX_ASSERT_PTR_EQ(p, q);
  IPX_ASSERT_EQ(n, 100);
  IPX_ASSERT_OK(ipx_object_find(s, IPX_OBJECT_NAMED, "alpha", 0, &q, NULL));
  IPX_ASSERT_EQ(named_count(s), 1);
  /* A unique object of the same name is another object. */
  IPX_ASSERT_ERR(ipx_object_find(s, IPX_OBJECT_UNIQUE, "alpha", 8, &q, &n),
                 IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, "alpha", 8, 0, 1,
                                      NULL, NULL, &q),
                 IPX_EEXIST);
  /* Names are any bytes but NUL. */
  const char *odd = "a/b c\xc3\xa9/..";
  IPX_ASSERT_OK(ipx_object_construct(s, IPX_OBJECT_NAMED, odd, 1, 0, 3, NULL,
                                     NULL, &q));
  IPX_ASSERT_EQ(named_count(s), 2);
  assert_check(s);
  IPX_ASSERT_OK(ipx_object_destroy(s, IPX_OBJECT_NAMED, "alpha", 8));
  IPX_ASSERT_ERR(ipx_object_find(s, IPX_OBJECT_NAMED, "alpha", 8, &q, &n),
                 IPX_ENOTFOUND);
  IPX_ASSERT_OK(ipx_object_destroy(s, IPX_OBJECT_NAMED, odd, 0));
  IPX_ASSERT_EQ(named_count(s), 0);
  assert_check(s);
  uint64_t free1 = heap_free(s);
  /* Only the index table stays. */
  IPX_ASSERT_LE(free0 - free1, 4 * KiB);
  ipx_segment_close(s);
}

struct init_ctx {
  int calls;
  size_t fail_at;
};

static int init_points(void *elem, size_t i, void *ctx) {
  struct init_ctx *c = ctx;
  struct point *pt = elem;
  IPX_ASSERT(pt->x == 0 && pt->y == 0 && pt->id == 0); /* zeroed first */
  c->calls++;
  if (i == c->fail_at) return -42;
  pt->x = (double)i;
  pt->y = -(double)i;
  pt->id = (int)i + 1;
  return 0;
}

IPX_TEST(init_callback) {
  ipx_segment_t *s = heap_seg(1 * MiB);
  struct init_ctx c = {0, (size_t)-1};
  struct point *p, *q;
  size_t n;
  IPX_ASSERT_OK(IPX_CONSTRUCT_INIT(s, struct point, "pts", 10, init_points, &c,
                                   &p));
  IPX_ASSERT_EQ(c.calls, 10);
  IPX_ASSERT_OK(IPX_FIND(s, struct point, "pts", &q, &n));
  IPX_ASSERT_PTR_EQ(p, q);
  IPX_ASSERT_EQ(n, 10);
  for (int i = 0; i < 10; i++) IPX_ASSERT_EQ(q[i].id, i + 1);
  /* A failing callback abandons the object: not found, name free. */
  c.calls = 0;
  c.fail_at = 4;
  IPX_ASSERT_ERR(IPX_CONSTRUCT_INIT(s, struct point, "bad", 10, init_points,
                                    &c, &p),
                 -42);
  IPX_ASSERT_EQ(c.calls, 5);
  IPX_ASSERT_ERR(IPX_FIND(s, struct point, "bad", &q, &n), IPX_ENOTFOUND);
  IPX_ASSERT_EQ(named_count(s), 1);
  assert_check(s);
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, struct point, "bad", 2, &p));
  /* find-or-construct: found, the callback does not run. */
  c.calls = 0;
  c.fail_at = (size_t)-1;
  IPX_ASSERT_OK(IPX_FIND_OR_CONSTRUCT_INIT(s, struct point, "pts", 3,
                                           init_points, &c, &q));
  IPX_ASSERT_EQ(c.calls, 0);
  IPX_ASSERT_EQ(q[9].id, 10);
  int constructed = -1;
  IPX_ASSERT_OK(ipx_object_find_or_construct(
      s, IPX_OBJECT_NAMED, "new", sizeof(struct point), 0, 3, init_points, &c,
      (void **)&q, &n, &constructed));
  IPX_ASSERT_EQ(constructed, 1);
  IPX_ASSERT_EQ(n, 3);
  IPX_ASSERT_EQ(c.calls, 3);
  IPX_ASSERT_OK(ipx_object_find_or_construct(
      s, IPX_OBJECT_NAMED, "new", sizeof(struct point), 0, 7, NULL, NULL,
      (void **)&p, &n, &constructed));
  IPX_ASSERT_EQ(constructed, 0);
  IPX_ASSERT_EQ(n, 3);
  IPX_ASSERT_PTR_EQ(p, q);
  assert_check(s);
  ipx_segment_close(s);
}

/* The callback constructs another object and may not find its own. */
static ipx_segment_t *nest_seg;
static int init_nested(void *elem, size_t i, void *ctx) {
  (void)ctx;
  int *v = elem, *inner;
  *v = (int)i;
  IPX_ASSERT_ERR(ipx_object_find(nest_seg, IPX_OBJECT_NAMED, "outer", 0,
                                 (void **)&inner, NULL),
                 IPX_ENOTFOUND);
  IPX_ASSERT_ERR(IPX_FIND_OR_CONSTRUCT(nest_seg, int, "outer", 1, &inner),
                 IPX_EBUSY);
  IPX_ASSERT_ERR(IPX_CONSTRUCT(nest_seg, int, "outer", 1, &inner), IPX_EEXIST);
  char name[32];
  snprintf(name, sizeof name, "inner%zu", i);
  return IPX_CONSTRUCT(nest_seg, int, name, 5, &inner);
}

IPX_TEST(nested_construct) {
  ipx_segment_t *s = nest_seg = heap_seg(1 * MiB);
  int *p;
  /* 40 inner objects grow the table while "outer" is unfinished in it. */
  IPX_ASSERT_OK(IPX_CONSTRUCT_INIT(s, int, "outer", 40, init_nested, NULL, &p));
  IPX_ASSERT_EQ(named_count(s), 41);
  int *q;
  size_t n;
  IPX_ASSERT_OK(IPX_FIND(s, int, "outer", &q, &n));
  IPX_ASSERT_PTR_EQ(p, q);
  IPX_ASSERT_EQ(q[39], 39);
  IPX_ASSERT_OK(IPX_FIND(s, int, "inner39", &q, &n));
  IPX_ASSERT_EQ(n, 5);
  assert_check(s);
  ipx_segment_close(s);
}

IPX_TEST(typed_macros_unique_anonymous) {
  ipx_segment_t *s = heap_seg(1 * MiB);
  struct point *p, *q;
  size_t n;
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, struct point, "p", 10, &p));
  p[9].id = 7;
  IPX_ASSERT_OK(IPX_FIND(s, struct point, "p", &q, &n));
  IPX_ASSERT_EQ(q[9].id, 7);
  IPX_ASSERT_EQ(n, 10);
  /* Wrong element size. */
  double *d;
  IPX_ASSERT_ERR(IPX_FIND(s, double, "p", &d, &n), IPX_EWRONGKIND);
  IPX_ASSERT_ERR(IPX_FIND_OR_CONSTRUCT(s, double, "p", 1, &d), IPX_EWRONGKIND);
  IPX_ASSERT_ERR(IPX_DESTROY(s, double, "p"), IPX_EWRONGKIND);

  IPX_ASSERT_OK(IPX_UNIQUE_CONSTRUCT(s, struct point, 1, &q));
  IPX_ASSERT(q != p);
  IPX_ASSERT_ERR(IPX_UNIQUE_CONSTRUCT(s, struct point, 1, &q), IPX_EEXIST);
  struct point *u;
  IPX_ASSERT_OK(IPX_UNIQUE_FIND(s, struct point, &u, &n));
  IPX_ASSERT_PTR_EQ(u, q);
  IPX_ASSERT_EQ(n, 1);
  IPX_ASSERT_OK(IPX_UNIQUE_FIND_OR_CONSTRUCT(s, struct point, 5, &u));
  IPX_ASSERT_PTR_EQ(u, q);
  uint64_t cnt;
  IPX_ASSERT_OK(ipx_object_count(s, IPX_OBJECT_UNIQUE, &cnt));
  IPX_ASSERT_EQ(cnt, 1);
  IPX_ASSERT_EQ(named_count(s), 1);

  ipx_object_info_t info;
  IPX_ASSERT_OK(ipx_object_query(s, u, &info));
  IPX_ASSERT_EQ(info.kind, IPX_OBJECT_UNIQUE);
  IPX_ASSERT_STREQ(info.name, "struct point");
  IPX_ASSERT_EQ(info.count, 1);
  IPX_ASSERT_EQ(info.elem_size, sizeof(struct point));
  IPX_ASSERT_OK(ipx_object_query(s, p, &info));
  IPX_ASSERT_EQ(info.kind, IPX_OBJECT_NAMED);
  IPX_ASSERT_STREQ(info.name, "p");
  IPX_ASSERT_EQ(info.name_len, 1);
  IPX_ASSERT_EQ(info.count, 10);

  long *a;
  IPX_ASSERT_OK(IPX_ANONYMOUS_CONSTRUCT(s, long, 4, &a));
  a[3] = 5;
  IPX_ASSERT_OK(ipx_object_query(s, a, &info));
  IPX_ASSERT_EQ(info.kind, IPX_OBJECT_ANONYMOUS);
  IPX_ASSERT_EQ(info.name_len, 0);
  IPX_ASSERT_STREQ(info.name, "");
  IPX_ASSERT_EQ(info.count, 4);
  IPX_ASSERT_EQ(named_count(s), 1);
  assert_check(s);
  IPX_ASSERT_OK(ipx_object_destroy_ptr(s, a));
  IPX_ASSERT_ERR(ipx_object_query(s, a, &info), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(s, a), IPX_ENOTFOUND);

  IPX_ASSERT_OK(IPX_UNIQUE_DESTROY(s, struct point));
  IPX_ASSERT_ERR(IPX_UNIQUE_FIND(s, struct point, &u, &n), IPX_ENOTFOUND);
  IPX_ASSERT_OK(ipx_object_destroy_ptr(s, p));
  IPX_ASSERT_ERR(IPX_FIND(s, struct point, "p", &q, &n), IPX_ENOTFOUND);
  IPX_ASSERT_EQ(named_count(s), 0);
  assert_check(s);
  ipx_segment_close(s);
}

IPX_TEST(alignment) {
  ipx_segment_t *s = heap_seg(1 * MiB);
  void *p;
  size_t aligns[] = {1, 2, 8, 16, 32, 64, 256, 4096};
  for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
    char name[16];
    snprintf(name, sizeof name, "a%zu", aligns[i]);
    IPX_ASSERT_OK(ipx_object_construct(s, IPX_OBJECT_NAMED, name, 3,
                                       aligns[i], 5, NULL, NULL, &p));
    IPX_ASSERT_EQ((uintptr_t)p % (aligns[i] < 16 ? 16 : aligns[i]), 0);
    ipx_object_info_t info;
    IPX_ASSERT_OK(ipx_object_query(s, p, &info));
    IPX_ASSERT_EQ(info.align, aligns[i] < 16 ? 16 : aligns[i]);
  }
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, "x", 3, 3, 5, NULL,
                                      NULL, &p),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, "x", 3, 8192, 5,
                                      NULL, NULL, &p),
                 IPX_EINVAL);
  assert_check(s);
  ipx_segment_close(s);
}

/* ---- bad input --------------------------------------------------------- */

IPX_TEST(bad_input) {
  ipx_segment_t *s = heap_seg(256 * KiB);
  void *p;
  size_t n;
  int dummy;
  ipx_object_info_t info;
  char longname[IPX_OBJECT_NAME_MAX + 2];
  memset(longname, 'n', sizeof longname);
  longname[IPX_OBJECT_NAME_MAX + 1] = 0;
  /* NULL everywhere. */
  IPX_ASSERT_ERR(ipx_object_construct(NULL, IPX_OBJECT_NAMED, "a", 1, 0, 1,
                                      NULL, NULL, &p),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, NULL, 1, 0, 1, NULL,
                                      NULL, &p),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, "a", 1, 0, 1, NULL,
                                      NULL, NULL),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_find(NULL, IPX_OBJECT_NAMED, "a", 1, &p, &n),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_find(s, IPX_OBJECT_NAMED, NULL, 1, &p, &n),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_find(s, IPX_OBJECT_NAMED, "a", 1, NULL, &n),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_find_or_construct(NULL, IPX_OBJECT_NAMED, "a", 1,
                                              0, 1, NULL, NULL, &p, NULL, NULL),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_find_or_construct(s, IPX_OBJECT_NAMED, "a", 1, 0,
                                              1, NULL, NULL, NULL, NULL, NULL),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_destroy(NULL, IPX_OBJECT_NAMED, "a", 0), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_destroy(s, IPX_OBJECT_NAMED, NULL, 0), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(NULL, &dummy), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(s, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_query(NULL, &dummy, &info), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_query(s, NULL, &info), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_query(s, &dummy, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_count(NULL, IPX_OBJECT_NAMED, &n), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_count(s, IPX_OBJECT_NAMED, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_count(s, IPX_OBJECT_ANONYMOUS, (uint64_t *)&n),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_reserve(NULL, 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_atomic_func(NULL, NULL, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_atomic_func(s, NULL, NULL), IPX_EINVAL);
  /* Names: empty, one byte too long; the longest is fine. */
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, "", 1, 0, 1, NULL,
                                      NULL, &p),
                 IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, longname, 1, 0, 1,
                                      NULL, NULL, &p),
                 IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_object_find(s, IPX_OBJECT_NAMED, "", 1, &p, &n),
                 IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_object_find(s, IPX_OBJECT_UNIQUE, longname, 1, &p, &n),
                 IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_object_destroy(s, IPX_OBJECT_NAMED, "", 0), IPX_EBADNAME);
  longname[IPX_OBJECT_NAME_MAX] = 0;
  IPX_ASSERT_OK(ipx_object_construct(s, IPX_OBJECT_NAMED, longname, 1, 0, 1,
                                     NULL, NULL, &p));
  IPX_ASSERT_OK(ipx_object_query(s, p, &info));
  IPX_ASSERT_EQ(info.name_len, IPX_OBJECT_NAME_MAX);
  IPX_ASSERT_STREQ(info.name, longname);
  /* Kinds, shapes. */
  IPX_ASSERT_ERR(ipx_object_construct(s, (ipx_object_kind_t)0, "a", 1, 0, 1,
                                      NULL, NULL, &p),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_construct(s, (ipx_object_kind_t)4, "a", 1, 0, 1,
                                      NULL, NULL, &p),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_ANONYMOUS, "a", 1, 0, 1,
                                      NULL, NULL, &p),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_find(s, IPX_OBJECT_ANONYMOUS, "a", 1, &p, &n),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_destroy(s, IPX_OBJECT_ANONYMOUS, "a", 0),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, "a", 0, 0, 1, NULL,
                                      NULL, &p),
                 IPX_EINVAL);
  /* Sizes: overflow, larger than the segment. */
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, "a", 16, 0,
                                      SIZE_MAX / 8, NULL, NULL, &p),
                 IPX_ENOMEM);
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, "a", 1, 0,
                                      SIZE_MAX - 10, NULL, NULL, &p),
                 IPX_ENOMEM);
  IPX_ASSERT_ERR(ipx_object_construct(s, IPX_OBJECT_NAMED, "a", 1, 0,
                                      1 * MiB, NULL, NULL, &p),
                 IPX_ENOMEM);
  IPX_ASSERT_ERR(ipx_object_find(s, IPX_OBJECT_NAMED, "a", 1, &p, &n),
                 IPX_ENOTFOUND);
  /* An empty array has an address. */
  IPX_ASSERT_OK(ipx_object_construct(s, IPX_OBJECT_NAMED, "empty", 4, 0, 0,
                                     NULL, NULL, &p));
  IPX_ASSERT_OK(ipx_object_find(s, IPX_OBJECT_NAMED, "empty", 4, &p, &n));
  IPX_ASSERT_EQ(n, 0);
  /* Destroy: missing names, pointers that are no instance. */
  IPX_ASSERT_ERR(ipx_object_destroy(s, IPX_OBJECT_NAMED, "missing", 0),
                 IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_object_destroy(s, IPX_OBJECT_UNIQUE, "empty", 0),
                 IPX_ENOTFOUND);
  int *arr;
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "arr", 64, &arr));
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(s, &dummy), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(s, arr + 1), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(s, arr + 4), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(s, ipx_segment_base(s)), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(
                     s, (char *)ipx_segment_base(s) + IPX_SEGMENT_HEADER_SIZE),
                 IPX_ENOTFOUND);
  /* A fake header copied elsewhere does not pass for an instance. */
  int *copy;
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "copy", 64, &copy));
  memcpy(copy, (char *)arr - 128, 128);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(s, copy + 32), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_object_query(s, arr + 1, &info), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_object_query(s, &dummy, &info), IPX_ERANGE);
  IPX_ASSERT_OK(ipx_object_destroy_ptr(s, arr));
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(s, arr), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_object_foreach(NULL, IPX_OBJECT_NAMED_BIT, NULL, NULL),
                 IPX_EINVAL);
  assert_check(s);
  ipx_segment_close(s);
}

/* ---- many names, iteration, reserve ----------------------------------- */

struct seen {
  unsigned char *mark;
  int n, unique;
};

static int visit(void *ctx, const ipx_object_info_t *info) {
  struct seen *sn = ctx;
  if (info->kind == IPX_OBJECT_UNIQUE) {
    sn->unique++;
    return 0;
  }
  int i = atoi(info->name + 4);
  char want[32];
  snprintf(want, sizeof want, "obj-%d", i);
  IPX_ASSERT_STREQ(info->name, want);
  IPX_ASSERT_EQ(*(int *)info->address, i);
  IPX_ASSERT_EQ(info->elem_size, sizeof(int));
  IPX_ASSERT_EQ(info->count, (size_t)(i % 7 + 1));
  IPX_ASSERT_EQ(sn->mark[i], 0);
  sn->mark[i] = 1;
  sn->n++;
  return 0;
}

static int stop_at_3(void *ctx, const ipx_object_info_t *info) {
  (void)info;
  return ++*(int *)ctx == 3 ? 77 : 0;
}

static ipx_segment_t *walk_seg;
static int visit_modify(void *ctx, const ipx_object_info_t *info) {
  (void)ctx;
  int *p;
  IPX_ASSERT_ERR(IPX_CONSTRUCT(walk_seg, int, "during", 1, &p), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_object_destroy(walk_seg, info->kind, info->name, 0),
                 IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(walk_seg, info->address), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_object_reserve(walk_seg, 100000), IPX_EBUSY);
  /* Anonymous objects and finds are fine. */
  IPX_ASSERT_OK(IPX_ANONYMOUS_CONSTRUCT(walk_seg, int, 1, &p));
  IPX_ASSERT_OK(ipx_object_destroy_ptr(walk_seg, p));
  IPX_ASSERT_OK(ipx_object_find(walk_seg, info->kind, info->name, 0, (void **)&p,
                                NULL));
  return 1;
}

IPX_TEST(many_names_and_iteration) {
  ipx_segment_t *s = walk_seg = heap_seg(16 * MiB);
  const int N = (int)ipx_test_scale(5000, 500);
  for (int i = 0; i < N; i++) {
    char name[32];
    int *p;
    snprintf(name, sizeof name, "obj-%d", i);
    IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, name, (size_t)(i % 7 + 1), &p));
    *p = i;
  }
  double *u;
  IPX_ASSERT_OK(IPX_UNIQUE_CONSTRUCT(s, double, 1, &u));
  IPX_ASSERT_EQ(named_count(s), (uint64_t)N);
  assert_check(s);
  /* Destroy every third in a scattered order. */
  int destroyed = 0;
  for (int k = 0; k < N; k++) {
    int i = (int)(((uint64_t)k * 7919u) % (uint64_t)N);
    if (i % 3) continue;
    char name[32];
    snprintf(name, sizeof name, "obj-%d", i);
    IPX_ASSERT_OK(IPX_DESTROY(s, int, name));
    destroyed++;
  }
  IPX_ASSERT_EQ(named_count(s), (uint64_t)(N - destroyed));
  assert_check(s);
  for (int i = 0; i < N; i++) {
    char name[32];
    int *p;
    size_t n;
    snprintf(name, sizeof name, "obj-%d", i);
    int r = IPX_FIND(s, int, name, &p, &n);
    if (i % 3 == 0) {
      IPX_ASSERT_ERR(r, IPX_ENOTFOUND);
    } else {
      IPX_ASSERT_OK(r);
      IPX_ASSERT_EQ(*p, i);
    }
  }
  struct seen sn = {calloc((size_t)N, 1), 0, 0};
  IPX_ASSERT_OK(ipx_object_foreach(
      s, IPX_OBJECT_NAMED_BIT | IPX_OBJECT_UNIQUE_BIT, visit, &sn));
  IPX_ASSERT_EQ(sn.n, N - destroyed);
  IPX_ASSERT_EQ(sn.unique, 1);
  for (int i = 0; i < N; i++) IPX_ASSERT_EQ(sn.mark[i], i % 3 != 0);
  sn.n = sn.unique = 0;
  memset(sn.mark, 0, (size_t)N);
  IPX_ASSERT_OK(ipx_object_foreach(s, IPX_OBJECT_UNIQUE_BIT, visit, &sn));
  IPX_ASSERT_EQ(sn.n, 0);
  IPX_ASSERT_EQ(sn.unique, 1);
  free(sn.mark);
  int calls = 0;
  IPX_ASSERT_ERR(ipx_object_foreach(s, IPX_OBJECT_NAMED_BIT, stop_at_3, &calls),
                 77);
  IPX_ASSERT_EQ(calls, 3);
  IPX_ASSERT_EQ(ipx_object_foreach(s, IPX_OBJECT_NAMED_BIT, visit_modify, NULL),
                1);
  IPX_ASSERT_ERR(ipx_object_foreach(s, 1u, visit, &sn), IPX_EINVAL);
  /* The walk flag is gone: changes work again. */
  int *p;
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "after", 1, &p));
  assert_check(s);
  ipx_segment_close(s);
}

IPX_TEST(reserve) {
  ipx_segment_t *s = heap_seg(8 * MiB);
  IPX_ASSERT_OK(ipx_object_reserve(s, 1000));
  struct ipx__obj_root *rt =
      (struct ipx__obj_root *)(void *)((char *)ipx_segment_base(s) + 448);
  uint64_t table = rt->table;
  IPX_ASSERT_NE(table, 0);
  IPX_ASSERT_GE(rt->mask + 1, 2000);
  for (int i = 0; i < 1000; i++) {
    char name[32];
    char *p;
    snprintf(name, sizeof name, "r%d", i);
    IPX_ASSERT_OK(IPX_CONSTRUCT(s, char, name, 1, &p));
  }
  IPX_ASSERT_EQ(rt->table, table); /* never regrown */
  IPX_ASSERT_OK(ipx_object_reserve(s, 10)); /* never shrinks */
  IPX_ASSERT_EQ(rt->table, table);
  IPX_ASSERT_ERR(ipx_object_reserve(s, UINT64_MAX / 2), IPX_ENOMEM);
  assert_check(s);
  ipx_segment_close(s);
}

/* ---- atomic_func -------------------------------------------------------- */

static int in_inner(void *ctx) {
  ipx_segment_t *s = ctx;
  int *p;
  IPX_ASSERT_ERR(IPX_CONSTRUCT(s, int, "af1", 1, &p), IPX_EEXIST);
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "af2", 1, &p));
  return -5;
}

static int in_atomic(void *ctx) {
  ipx_segment_t *s = ctx;
  int *p, *q;
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "af1", 1, &p));
  IPX_ASSERT_OK(IPX_FIND(s, int, "af1", &q, NULL));
  IPX_ASSERT_PTR_EQ(p, q);
  /* The lock is recursive. */
  IPX_ASSERT_EQ(ipx_segment_atomic_func(s, in_inner, s), -5);
  IPX_ASSERT_OK(IPX_DESTROY(s, int, "af1"));
  return 123;
}

IPX_TEST(atomic_func) {
  ipx_segment_t *s = heap_seg(1 * MiB);
  IPX_ASSERT_EQ(ipx_segment_atomic_func(s, in_atomic, s), 123);
  int *p;
  IPX_ASSERT_ERR(IPX_FIND(s, int, "af1", &p, NULL), IPX_ENOTFOUND);
  IPX_ASSERT_OK(IPX_FIND(s, int, "af2", &p, NULL));
  IPX_ASSERT_EQ(named_count(s), 1);
  assert_check(s);
  ipx_segment_close(s);
}

/* ---- several processes -------------------------------------------------- */

struct race {
  ipx_test_gate_t gate;
  char name[128];
  int inits;   /* callback runs, counted in shared memory */
  uint64_t handle[16];
};

static int count_init(void *elem, size_t i, void *ctx) {
  struct race *rc = ctx;
  __atomic_add_fetch(&rc->inits, 1, __ATOMIC_SEQ_CST);
  *(uint64_t *)elem = 0x1234 + i;
  return 0;
}

static struct race *race;
static void racer(void *arg) {
  int id = (int)(intptr_t)arg;
  ipx_segment_t *s;
  ipx_test_gate_wait(&race->gate);
  IPX_ASSERT_OK(open_shm(&s, race->name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE,
                         1 * MiB));
  uint64_t *p;
  size_t n;
  int constructed;
  IPX_ASSERT_OK(ipx_object_find_or_construct(
      s, IPX_OBJECT_NAMED, "the one", sizeof(uint64_t), 0, 4, count_init, race,
      (void **)&p, &n, &constructed));
  IPX_ASSERT_EQ(n, 4);
  IPX_ASSERT_EQ(p[3], 0x1234 + 3);
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, p, &race->handle[id]));
  ipx_segment_close(s);
}

IPX_TEST(race_find_or_construct) {
  race = ipx_test_shared_alloc(sizeof *race);
  int rounds = (int)ipx_test_scale(5, 2);
  for (int round = 0; round < rounds; round++) {
    char tag[16];
    snprintf(tag, sizeof tag, "race%d", round);
    ipx_test_name(race->name, sizeof race->name, tag);
    race->inits = 0;
    ipx_test_gate_init(&race->gate);
    pid_t pids[16];
    for (int i = 0; i < 16; i++)
      pids[i] = ipx_test_fork(racer, (void *)(intptr_t)i);
    ipx_test_gate_open(&race->gate);
    for (int i = 0; i < 16; i++) IPX_ASSERT_CHILD_OK(pids[i]);
    IPX_ASSERT_EQ(race->inits, 4); /* one construction of 4 elements */
    for (int i = 1; i < 16; i++) IPX_ASSERT_EQ(race->handle[i], race->handle[0]);
    ipx_segment_t *s;
    IPX_ASSERT_OK(open_shm(&s, race->name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
    IPX_ASSERT_EQ(named_count(s), 1);
    assert_check(s);
    ipx_segment_close(s);
    IPX_ASSERT_OK(ipx_segment_remove_shm(race->name));
  }
}

/* Read-only opener in another process: finds, queries, iterates, counts,
 * and cannot change anything. */
IPX_TEST_PEER(peer_read_only) {
  (void)argc;
  ipx_segment_t *s;
  int r = open_shm(&s, argv[1], IPX_OPEN_ONLY, IPX_READ_ONLY, 0);
  if (r) return 10;
  struct point *p;
  size_t n = 0;
  if (IPX_FIND(s, struct point, "pts", &p, &n) || n != 50 || p[49].id != 49)
    return 11;
  double *d;
  if (IPX_FIND(s, double, "pts", &d, &n) != IPX_EWRONGKIND) return 12;
  if (IPX_FIND(s, struct point, "nope", &p, &n) != IPX_ENOTFOUND) return 13;
  ipx_object_info_t info;
  if (ipx_object_query(s, p, &info) || strcmp(info.name, "pts") ||
      info.count != 50)
    return 14;
  uint64_t c;
  if (ipx_segment_named_count(s, &c) || c != 200) return 15;
  int visits = 0;
  if (ipx_object_foreach(s, IPX_OBJECT_NAMED_BIT, stop_at_3, &visits) != 77)
    return 16;
  int *ip;
  if (IPX_CONSTRUCT(s, int, "x", 1, &ip) != IPX_EREADONLY) return 17;
  if (IPX_FIND_OR_CONSTRUCT(s, int, "x", 1, &ip) != IPX_EREADONLY)
    return 18;
  if (IPX_FIND_OR_CONSTRUCT(s, struct point, "pts", 1, &p) != 0) return 19;
  if (IPX_DESTROY(s, struct point, "pts") != IPX_EREADONLY) return 20;
  if (ipx_object_destroy_ptr(s, p) != IPX_EREADONLY) return 21;
  if (ipx_object_reserve(s, 10) != IPX_EREADONLY) return 22;
  if (ipx_segment_check(s, NULL, NULL) != 0) return 23;
  /* Keep finding while the parent constructs and destroys. */
  for (int i = 0; i < 2000; i++) {
    char name[32];
    int *v;
    snprintf(name, sizeof name, "obj-%d", i % 150);
    r = IPX_FIND(s, int, name, &v, &n);
    if (r == 0 && (n != 1 || *v != i % 150)) return 24;
    if (r != 0 && r != IPX_ENOTFOUND && r != IPX_EBUSY) return 25;
  }
  ipx_segment_close(s);
  return 0;
}

IPX_TEST(read_only_opener) {
  char name[128];
  ipx_test_name(name, sizeof name, "ro");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 4 * MiB));
  struct point *p;
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, struct point, "pts", 50, &p));
  for (int i = 0; i < 50; i++) p[i].id = i;
  for (int i = 0; i < 199; i++) {
    char nm[32];
    int *v;
    snprintf(nm, sizeof nm, "obj-%d", i);
    IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, nm, 1, &v));
    *v = i;
  }
  pid_t pid = ipx_test_spawn("peer_read_only", name, NULL);
  /* Churn objects 150..198 while the reader reads 0..149. */
  for (int k = 0; k < 300; k++) {
    char nm[32];
    int *v;
    snprintf(nm, sizeof nm, "obj-%d", 150 + k % 49);
    IPX_ASSERT_OK(IPX_DESTROY(s, int, nm));
    IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, nm, 1, &v));
  }
  int st = ipx_test_wait(pid, 60000);
  IPX_ASSERT(st != -1 && WIFEXITED(st));
  IPX_ASSERT_EQ(WEXITSTATUS(st), 0);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* A read-write opener's find runs without the lock when no holder is
 * inside: in another process, it must find every stable object and never
 * a half-built one while the parent constructs new names (slowly, element
 * by element; the table regrows on the way) and churns others.  Objects
 * "new-<k>" are never destroyed, so what the finder reads after the call
 * cannot have been freed under it. */
static int churn_init(void *elem, size_t i, void *ctx) {
  uint64_t *w = elem;
  for (volatile int x = 0; x < 200; x++) {
  }
  *w = 0xc0ffee00u + i + (uint64_t)(uintptr_t)ctx;
  return 0;
}

#define RW_NEW_MAX 3000

IPX_TEST_PEER(peer_read_write_finder) {
  (void)argc;
  ipx_segment_t *s;
  if (open_shm(&s, argv[1], IPX_OPEN_ONLY, IPX_READ_WRITE, 0)) return 10;
  int m = 0;
  for (int i = 0; i < 20000 && m < RW_NEW_MAX; i++) {
    char name[32];
    int *v;
    size_t n;
    snprintf(name, sizeof name, "obj-%d", i % 150);
    if (IPX_FIND(s, int, name, &v, &n) || n != 1 || *v != i % 150) return 11;
    uint64_t *w;
    snprintf(name, sizeof name, "new-%d", m);
    int r = IPX_FIND(s, uint64_t, name, &w, &n);
    if (r == IPX_ENOTFOUND) continue;
    if (r || n != 16) return 12;
    for (size_t k = 0; k < n; k++)
      if (w[k] != 0xc0ffee00u + k + (uint64_t)m) return 13;
    m++;
  }
  ipx_segment_close(s);
  return m ? 0 : 14;
}

IPX_TEST(read_write_find_without_lock) {
  char name[128];
  ipx_test_name(name, sizeof name, "rwfind");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 4 * MiB));
  for (int i = 0; i < 150; i++) {
    char nm[32];
    int *v;
    snprintf(nm, sizeof nm, "obj-%d", i);
    IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, nm, 1, &v));
    *v = i;
  }
  pid_t pid = ipx_test_spawn("peer_read_write_finder", name, NULL);
  int st = -1;
  for (int k = 0;; k++) {
    char nm[32];
    uint64_t *w;
    if (k < RW_NEW_MAX) {
      snprintf(nm, sizeof nm, "new-%d", k);
      IPX_ASSERT_OK(IPX_CONSTRUCT_INIT(s, uint64_t, nm, 16, churn_init,
                                       (void *)(uintptr_t)k, &w));
    }
    snprintf(nm, sizeof nm, "junk-%d", k % 5);
    int r = IPX_DESTROY(s, uint64_t, nm);
    IPX_ASSERT(r == 0 || r == IPX_ENOTFOUND);
    IPX_ASSERT_OK(
        IPX_CONSTRUCT_INIT(s, uint64_t, nm, 16, churn_init, NULL, &w));
    if (k % 16 == 0 && waitpid(pid, &st, WNOHANG) == pid) break;
  }
  IPX_ASSERT(WIFEXITED(st));
  IPX_ASSERT_EQ(WEXITSTATUS(st), 0);
  assert_check(s);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* ---- crashes ------------------------------------------------------------ */

#define PAT(name_i, elem, word) \
  (0x9e3779b97f4a7c15ull * (uint64_t)((name_i) + 1) ^ ((uint64_t)(elem) << 8) ^ (word))

struct pat_ctx {
  int name_i;
  int spin;
};

static int init_pattern(void *elem, size_t i, void *ctx) {
  struct pat_ctx *c = ctx;
  uint64_t *w = elem;
  for (int k = 0; k < 8; k++) {
    w[k] = PAT(c->name_i, i, k);
    for (volatile int x = 0; x < c->spin; x++) {
    }
  }
  return 0;
}

struct elem64 {
  uint64_t w[8];
};

static ipx_segment_t *crash_seg;

static int atomic_batch(void *ctx) {
  int base = *(int *)ctx;
  for (int k = 0; k < 3; k++) {
    char name[32];
    struct elem64 *p;
    snprintf(name, sizeof name, "c%d", (base + k) % 64);
    struct pat_ctx pc = {(base + k) % 64, 50};
    if (IPX_DESTROY(crash_seg, struct elem64, name) == IPX_ENOTFOUND)
      IPX_CONSTRUCT_INIT(crash_seg, struct elem64, name, 20, init_pattern, &pc,
                         &p);
  }
  return 0;
}

static void crash_child(void *arg) {
  (void)arg;
  ipx_segment_t *s = crash_seg;
  uint64_t x = (uint64_t)getpid() * 2654435761u;
  for (;;) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int i = (int)(x % 64);
    char name[32];
    snprintf(name, sizeof name, "c%d", i);
    struct elem64 *p;
    struct pat_ctx pc = {i, (int)(x >> 40) % 200};
    switch ((x >> 20) % 4) {
      case 0:
      case 1:
        if (IPX_CONSTRUCT_INIT(s, struct elem64, name, 1 + (x >> 32) % 60,
                               init_pattern, &pc, &p) == IPX_EEXIST)
          IPX_DESTROY(s, struct elem64, name);
        break;
      case 2: {
        p = NULL;
        IPX_ANONYMOUS_CONSTRUCT(s, struct elem64, 3, &p);
        if (p) ipx_object_destroy_ptr(s, p);
        break;
      }
      default:
        ipx_segment_atomic_func(s, atomic_batch, &i);
    }
  }
}

static int verify_visit(void *ctx, const ipx_object_info_t *info) {
  (void)ctx;
  IPX_ASSERT_EQ(info->name[0], 'c');
  int i = atoi(info->name + 1);
  IPX_ASSERT_EQ(info->elem_size, sizeof(struct elem64));
  const struct elem64 *e = info->address;
  for (size_t k = 0; k < info->count; k++)
    for (int w = 0; w < 8; w++)
      if (e[k].w[w] != PAT(i, k, w))
        IPX_FAIL("%s element %zu word %d half-built", info->name, k, w);
  return 0;
}

IPX_TEST_T(crash_loop, 120) {
  char name[128];
  ipx_test_name(name, sizeof name, "crash");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 8 * MiB));
  crash_seg = s;
  struct ipx__obj_root *rt =
      (struct ipx__obj_root *)(void *)((char *)ipx_segment_base(s) + 448);
  long iters = ipx_test_scale(300, 20);
  long rebuilds = 0;
  /* Past `iters` only while no kill has yet landed inside the index (under
   * valgrind the child spends most of its time elsewhere). */
  long it = 0;
  for (; it < iters || (rebuilds == 0 && it < 5 * iters); it++) {
    pid_t pid = ipx_test_fork(crash_child, NULL);
    ipx_test_sleep_ms((long)(ipx_test_rand() % 4));
    if (ipx_test_rand() % 2) usleep((useconds_t)(ipx_test_rand() % 500));
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    IPX_ASSERT(WIFSIGNALED(st));
    if (rt->busy || rt->pending) rebuilds++;
    /* The first lock repairs; check must then pass. */
    assert_check(s);
    IPX_ASSERT_OK(ipx_object_foreach(s, IPX_OBJECT_NAMED_BIT, verify_visit,
                                     NULL));
    /* Usable: construct, find, destroy. */
    struct elem64 *p, *q;
    IPX_ASSERT_OK(IPX_CONSTRUCT(s, struct elem64, "parent", 2, &p));
    IPX_ASSERT_OK(IPX_FIND(s, struct elem64, "parent", &q, NULL));
    IPX_ASSERT_PTR_EQ(p, q);
    IPX_ASSERT_OK(IPX_DESTROY(s, struct elem64, "parent"));
  }
  ipx_test_log("%ld iterations, %ld needed an index rebuild", it, rebuilds);
  IPX_ASSERT_GT(rebuilds, 0);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* Deterministic deaths: inside an init callback, and inside a nested one. */
static int init_die(void *elem, size_t i, void *ctx) {
  (void)elem;
  if (i == (size_t)(intptr_t)ctx) kill(getpid(), SIGKILL);
  return 0;
}

static void die_in_construct(void *arg) {
  ipx_test_expect_crash();
  int *p;
  IPX_CONSTRUCT_INIT(crash_seg, int, (const char *)arg, 10, init_die,
                     (void *)(intptr_t)3, &p);
}

static int die_nested(void *ctx) {
  int *p;
  IPX_ASSERT_OK(IPX_CONSTRUCT(crash_seg, int, "done-in-atomic", 1, &p));
  IPX_ASSERT_OK(IPX_DESTROY(crash_seg, int, "keep"));
  return IPX_CONSTRUCT_INIT(crash_seg, int, "never", 10, init_die, ctx, &p);
}

static void die_in_atomic(void *arg) {
  (void)arg;
  ipx_test_expect_crash();
  ipx_segment_atomic_func(crash_seg, die_nested, (void *)(intptr_t)0);
}

IPX_TEST(killed_inside_construct) {
  char name[128];
  ipx_test_name(name, sizeof name, "die");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 1 * MiB));
  crash_seg = s;
  int *p;
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "keep", 1, &p));
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "keep2", 1, &p));
  uint64_t before = heap_free(s);
  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(die_in_construct, "half"), SIGKILL);
  IPX_ASSERT_ERR(IPX_FIND(s, int, "half", &p, NULL), IPX_ENOTFOUND);
  assert_check(s);
  IPX_ASSERT_EQ(heap_free(s), before); /* the half-built block was freed */
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "half", 10, &p));
  IPX_ASSERT_EQ(named_count(s), 3);
  /* Killed in atomic_func, inside a construct after other changes: those
   * finished changes stay, the unfinished one is gone. */
  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(die_in_atomic, NULL), SIGKILL);
  IPX_ASSERT_ERR(IPX_FIND(s, int, "never", &p, NULL), IPX_ENOTFOUND);
  IPX_ASSERT_OK(IPX_FIND(s, int, "done-in-atomic", &p, NULL));
  IPX_ASSERT_ERR(IPX_FIND(s, int, "keep", &p, NULL), IPX_ENOTFOUND);
  IPX_ASSERT_OK(IPX_FIND(s, int, "keep2", &p, NULL));
  IPX_ASSERT_EQ(named_count(s), 3);
  assert_check(s);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* ---- check sees damage -------------------------------------------------- */

static int problems;
static void count_problem(void *ctx, const char *msg) {
  (void)ctx;
  if (strstr(msg, "objects")) problems++;
}

IPX_TEST(check_reports_damage) {
  ipx_segment_t *s = heap_seg(1 * MiB);
  int *p;
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "victim", 1, &p));
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "other", 1, &p));
  struct ipx__obj_root *rt =
      (struct ipx__obj_root *)(void *)((char *)ipx_segment_base(s) + 448);
  /* A counter off by one. */
  rt->named++;
  problems = 0;
  IPX_ASSERT_ERR(ipx_segment_check(s, count_problem, NULL), IPX_ECORRUPT);
  IPX_ASSERT_GT(problems, 0);
  rt->named--;
  assert_check(s);
  /* A header's element count changed behind the index's back. */
  uint16_t back; /* the elements' distance from the header / 16 */
  memcpy(&back, (char *)p - 2, 2);
  uint64_t off =
      (uint64_t)((char *)p - (char *)ipx_segment_base(s)) - back * 16u;
  struct ipx__obj_hdr *h =
      (struct ipx__obj_hdr *)(void *)((char *)ipx_segment_base(s) + off);
  IPX_ASSERT_EQ(h->elem_size, sizeof(int));
  h->count++;
  problems = 0;
  IPX_ASSERT_ERR(ipx_segment_check(s, count_problem, NULL), IPX_ECORRUPT);
  IPX_ASSERT_GT(problems, 0);
  h->count--;
  assert_check(s);
  ipx_segment_close(s);
}

/* The root names a table whose own header no longer holds up: finding
 * still works (a lookup only needs the slots in bounds), but nothing may
 * be added to or removed from the table, and nothing is allocated or freed
 * on the way to saying so. */
IPX_TEST(damaged_table_refuses_changes) {
  ipx_segment_t *s = heap_seg(1 * MiB);
  int *p, *q;
  size_t n;
  IPX_ASSERT_OK(IPX_CONSTRUCT(s, int, "victim", 1, &p));
  struct ipx__obj_root *rt =
      (struct ipx__obj_root *)(void *)((char *)ipx_segment_base(s) + 448);
  IPX_ASSERT_NE(rt->table, 0);
  struct ipx__obj_hdr *th =
      (struct ipx__obj_hdr *)(void *)((char *)ipx_segment_base(s) + rt->table);
  uint64_t fb0, fb1;
  IPX_ASSERT_OK(ipx_segment_free_memory(s, &fb0));
  th->count++;
  IPX_ASSERT_ERR(IPX_CONSTRUCT(s, int, "new", 1, &q), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_object_destroy(s, IPX_OBJECT_NAMED, "victim",
                                    sizeof(int)),
                 IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx_object_destroy_ptr(s, p), IPX_ECORRUPT);
  IPX_ASSERT_OK(IPX_FIND(s, int, "victim", &q, &n));
  IPX_ASSERT(q == p && n == 1);
  IPX_ASSERT_OK(ipx_segment_free_memory(s, &fb1));
  IPX_ASSERT_EQ(fb1, fb0);
  problems = 0;
  IPX_ASSERT_ERR(ipx_segment_check(s, count_problem, NULL), IPX_ECORRUPT);
  IPX_ASSERT_GT(problems, 0);
  th->count--;
  assert_check(s);
  IPX_ASSERT_OK(ipx_object_destroy_ptr(s, p));
  assert_check(s);
  ipx_segment_close(s);
}
