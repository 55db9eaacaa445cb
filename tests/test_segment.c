/* segment: open modes, backings, racing creators, killed creators and
 * growers, persistence across runs and boots, read-only and copy-on-write
 * openers, grow/shrink, handles, the lock and check. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"
#include "heap/heap.h"
#include "segment/segment_internal.h"

#define KiB 1024u

static ipx_segment_options_t opts(ipx_open_mode_t mode, ipx_access_t access,
                                  uint64_t size) {
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = mode;
  o.access = access;
  o.size = size;
  return o;
}

static int open_shm(ipx_segment_t **s, const char *name, ipx_open_mode_t mode,
                    ipx_access_t access, uint64_t size) {
  ipx_segment_options_t o = opts(mode, access, size);
  return ipx_segment_open_shm(s, name, &o);
}

static int open_file(ipx_segment_t **s, const char *path, ipx_open_mode_t mode,
                     ipx_access_t access, uint64_t size) {
  ipx_segment_options_t o = opts(mode, access, size);
  return ipx_segment_open_file(s, path, &o);
}

static void file_in_tmp(char *buf, size_t len, const char *tag) {
  snprintf(buf, len, "%s/%s.seg", ipx_test_tmpdir(), tag);
}

/* Scratch bytes inside the heap: the interior of the free block a fresh
 * segment's heap consists of, past its header and list links, which the
 * allocator never touches while nothing is allocated there. */
static uint64_t heap_at_off(void) {
  return IPX_SEGMENT_HEADER_SIZE + ipx__heap_ctl_size() + 64;
}
static unsigned char *heap_at(ipx_segment_t *s) {
  return (unsigned char *)ipx_segment_base(s) + heap_at_off();
}

/* Free memory of a fresh segment of `total` bytes: the heap less the
 * allocator's control block. */
static uint64_t fresh_free(uint64_t total) {
  return ((total - IPX_SEGMENT_HEADER_SIZE) & ~UINT64_C(63)) -
         ipx__heap_ctl_size();
}

struct problems {
  int n;
  char first[256];
};
static void collect(void *ctx, const char *msg) {
  struct problems *p = ctx;
  if (p->n++ == 0) snprintf(p->first, sizeof p->first, "%s", msg);
}

/* ---- basics ------------------------------------------------------------ */

IPX_TEST_PEER(peer_open_only_reads) {
  /* argv: name, expected size, heap byte offset, expected byte */
  if (argc < 5) return 90;
  ipx_segment_t *s;
  int r = open_shm(&s, argv[1], IPX_OPEN_ONLY, IPX_READ_WRITE, 0);
  if (r) return 91;
  if (ipx_segment_size(s) != strtoull(argv[2], NULL, 10)) return 92;
  void *p;
  if (ipx_segment_address_from_handle(s, strtoull(argv[3], NULL, 10), &p))
    return 93;
  if (*(unsigned char *)p != (unsigned char)atoi(argv[4])) return 94;
  if (ipx_segment_created(s)) return 95;
  if (ipx_segment_check(s, NULL, NULL) != 0) return 96;
  ipx_segment_close(s);
  return 0;
}

IPX_TEST(create_open_close_remove_shm) {
  char name[128];
  ipx_test_name(name, sizeof name, "seg");
  ipx_segment_t *s, *t;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 256 * KiB));
  IPX_ASSERT_EQ(ipx_segment_size(s), 256 * KiB);
  IPX_ASSERT_EQ(ipx_segment_created(s), 1);
  IPX_ASSERT_EQ(ipx_segment_access(s), IPX_READ_WRITE);
  uint64_t v;
  IPX_ASSERT_OK(ipx_segment_free_memory(s, &v));
  IPX_ASSERT_EQ(v, fresh_free(256 * KiB));
  IPX_ASSERT_OK(ipx_segment_named_count(s, &v));
  IPX_ASSERT_EQ(v, 0);
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  IPX_ASSERT_ERR(open_shm(&t, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB),
                 IPX_EEXIST);
  /* Open-or-create of an existing one opens it, whatever size was asked. */
  IPX_ASSERT_OK(open_shm(&t, name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 64 * KiB));
  IPX_ASSERT_EQ(ipx_segment_size(t), 256 * KiB);
  IPX_ASSERT_EQ(ipx_segment_created(t), 0);
  IPX_ASSERT_OK(ipx_segment_close(t));
  heap_at(s)[100] = 77;
  char sz[32], off[32];
  snprintf(sz, sizeof sz, "%u", 256 * KiB);
  snprintf(off, sizeof off, "%llu", (unsigned long long)heap_at_off() + 100);
  IPX_ASSERT_CHILD_OK(ipx_test_spawn("peer_open_only_reads", name, sz, off, "77", NULL));
  /* The object is /dev/shm/ipx.NAME with exactly the default 0600. */
  char path[512];
  struct stat st;
  snprintf(path, sizeof path, "/dev/shm/ipx.%s", name);
  IPX_ASSERT_EQ(stat(path, &st), 0);
  IPX_ASSERT_EQ(st.st_mode & 07777, 0600);
  IPX_ASSERT_OK(ipx_segment_close(s));
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
  IPX_ASSERT_ERR(ipx_segment_remove_shm(name), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0), IPX_ENOTFOUND);
  IPX_ASSERT_OK(ipx_segment_close(NULL));
}

/* The creator's pid in the header is the creating process's, in a fork
 * child (and its child) as well, though the library caches it. */
static void create_and_check_pid(void *arg) {
  const char *name = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  IPX_ASSERT_EQ(ipx__seg_hdr(s)->creator_pid, getpid());
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

static void fork_twice_and_create(void *arg) {
  create_and_check_pid(arg);
  IPX_ASSERT_CHILD_OK(ipx_test_fork(create_and_check_pid, arg));
  create_and_check_pid(arg);
}

static void create_and_keep(void *arg) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, arg, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  ipx_segment_close(s);
}

static void *create_in_thread(void *arg) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, 64 * KiB));
  *(int32_t *)arg = ipx__seg_hdr(s)->creator_pid;
  ipx_segment_close(s);
  return NULL;
}

IPX_TEST(creator_pid_is_the_creating_process_in_fork_children) {
  char name[128];
  ipx_test_name(name, sizeof name, "pid");
  create_and_check_pid(name); /* the parent knows its pid from now on */
  pid_t kid = ipx_test_fork(fork_twice_and_create, name);
  IPX_ASSERT_CHILD_OK(kid);
  /* A segment the child published records the child. */
  pid_t me = getpid();
  kid = ipx_test_fork(create_and_keep, name);
  IPX_ASSERT_CHILD_OK(kid);
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_EQ(ipx__seg_hdr(s)->creator_pid, kid);
  IPX_ASSERT_NE(ipx__seg_hdr(s)->creator_pid, me);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
  /* Another thread's segment records the process, not the thread. */
  int32_t pid = 0;
  pthread_t t;
  IPX_ASSERT_EQ(pthread_create(&t, NULL, create_in_thread, &pid), 0);
  IPX_ASSERT_EQ(pthread_join(t, NULL), 0);
  IPX_ASSERT_EQ(pid, me);
  create_and_check_pid(name);
}

IPX_TEST(permissions_are_exact_whatever_the_umask) {
  char name[128], file[512], path[512];
  ipx_test_name(name, sizeof name, "perm");
  file_in_tmp(file, sizeof file, "perm");
  mode_t old = umask(0077);
  ipx_segment_options_t o = opts(IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB);
  o.perm = 0644;
  ipx_segment_t *s, *f;
  IPX_ASSERT_OK(ipx_segment_open_shm(&s, name, &o));
  IPX_ASSERT_OK(ipx_segment_open_file(&f, file, &o));
  umask(old);
  struct stat st;
  snprintf(path, sizeof path, "/dev/shm/ipx.%s", name);
  IPX_ASSERT_EQ(stat(path, &st), 0);
  IPX_ASSERT_EQ(st.st_mode & 07777, 0644);
  IPX_ASSERT_EQ(stat(file, &st), 0);
  IPX_ASSERT_EQ(st.st_mode & 07777, 0644);
  ipx_segment_close(s);
  ipx_segment_close(f);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
  IPX_ASSERT_OK(ipx_segment_remove_file(file));
}

IPX_TEST(bad_arguments) {
  char name[128];
  ipx_test_name(name, sizeof name, "bad");
  ipx_segment_t *s = NULL;
  ipx_segment_options_t o = opts(IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 64 * KiB);
  IPX_ASSERT_ERR(ipx_segment_open_shm(NULL, name, &o), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, NULL, &o), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, "a/b", &o), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, "", &o), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_segment_open_file(&s, NULL, &o), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_open_file(&s, "", &o), IPX_EINVAL);
  ipx_segment_options_t b = o;
  b.mode = (ipx_open_mode_t)9;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_EINVAL);
  b = o;
  b.access = (ipx_access_t)0;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_EINVAL);
  b = o;
  b.access = IPX_READ_ONLY; /* creating needs write access */
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_EINVAL);
  b.access = IPX_COPY_ON_WRITE;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_EINVAL);
  b = o;
  b.size = IPX_SEGMENT_MIN_SIZE - 1;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_EINVAL);
  b.size = IPX_SEGMENT_MAX_SIZE + 1;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_ETOOBIG);
  b.size = UINT64_MAX;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_ETOOBIG);
  b = o;
  b.flags = 0x80;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_EINVAL);
  b = o;
  b.perm = 010000;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_EINVAL);
  b = o;
  b.address = (void *)(uintptr_t)0x10001;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &b), IPX_EINVAL);
  IPX_ASSERT(s == NULL);
  /* Nothing was created by any of these. */
  IPX_ASSERT_ERR(ipx_segment_remove_shm(name), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_segment_remove_shm(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_remove_shm("x/y"), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_segment_remove_file(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_grow_shm(name, 4096), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_segment_grow_shm(name, 0), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_grow_shm("..", 1), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_segment_grow_file(NULL, 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_shrink_to_fit_shm(name, NULL), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_segment_shrink_to_fit_file("", NULL), IPX_EINVAL);
  /* A file in a missing directory. */
  char path[512];
  snprintf(path, sizeof path, "%s/no/such/dir/x.seg", ipx_test_tmpdir());
  IPX_ASSERT_ERR(ipx_segment_open_file(&s, path, &o), -ENOENT);
  /* Heap and buffer. */
  IPX_ASSERT_ERR(ipx_segment_create_heap(NULL, 64 * KiB), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_create_heap(&s, 100), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_create_heap(&s, IPX_SEGMENT_HEAP_MAX_SIZE + 1), IPX_ETOOBIG);
  IPX_ASSERT_ERR(ipx_segment_create_heap(&s, UINT64_MAX), IPX_ETOOBIG);
  void *buf = aligned_alloc(64, 64 * KiB);
  IPX_ASSERT(buf);
  ipx_segment_options_t c = opts(IPX_CREATE_ONLY, IPX_READ_WRITE, 0);
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&s, (char *)buf + 8, 32 * KiB, &c), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&s, buf, 4096, &c), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&s, NULL, 64 * KiB, &c), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&s, buf, 64 * KiB, NULL), IPX_EINVAL);
  c.mode = IPX_OPEN_OR_CREATE;
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&s, buf, 64 * KiB, &c), IPX_EINVAL);
  c.mode = IPX_OPEN_ONLY;
  c.access = IPX_COPY_ON_WRITE;
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&s, buf, 64 * KiB, &c), IPX_EINVAL);
  c.mode = IPX_CREATE_ONLY;
  c.access = IPX_READ_ONLY;
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&s, buf, 64 * KiB, &c), IPX_EINVAL);
  free(buf);
  /* Queries. */
  uint64_t v;
  void *p;
  IPX_ASSERT_ERR(ipx_segment_free_memory(NULL, &v), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_named_count(NULL, &v), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_check(NULL, NULL, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_flush(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_handle_from_address(NULL, &v, &v), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_segment_address_from_handle(NULL, 0, &p), IPX_EINVAL);
  IPX_ASSERT(ipx_segment_base(NULL) == NULL);
  IPX_ASSERT_EQ(ipx_segment_size(NULL), 0);
}

IPX_TEST(open_only_modes_and_remove_while_open) {
  char name[128];
  ipx_test_name(name, sizeof name, "rm");
  ipx_segment_t *s, *t;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 64 * KiB));
  IPX_ASSERT_EQ(ipx_segment_created(s), 1);
  heap_at(s)[0] = 5;
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
  /* The open handle keeps the memory; the name is free again. */
  IPX_ASSERT_EQ(heap_at(s)[0], 5);
  IPX_ASSERT_OK(open_shm(&t, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  IPX_ASSERT_EQ(heap_at(t)[0], 0);
  ipx_segment_close(t);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* ---- racing creators --------------------------------------------------- */

#define RACERS 16
struct race {
  ipx_test_gate_t gate;
  char name[128];
  int result[RACERS];
  int created[RACERS];
  uint64_t size[RACERS];
};

static struct race *g_race;
static int g_slot;
static void racer_slot(void *arg) {
  (void)arg;
  struct race *rc = g_race;
  int me = g_slot;
  ipx_test_gate_wait(&rc->gate);
  ipx_segment_t *s;
  int r = open_shm(&s, rc->name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 128 * KiB);
  rc->result[me] = r;
  if (r) return;
  rc->created[me] = ipx_segment_created(s);
  rc->size[me] = ipx_segment_size(s);
  /* Everyone marks the one segment; the parent counts the marks. */
  heap_at(s)[me] = (unsigned char)(me + 1);
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  ipx_segment_close(s);
}

IPX_TEST(sixteen_racing_open_or_create_agree_on_one_segment) {
  long rounds = ipx_test_scale(8, 2);
  for (long round = 0; round < rounds; round++) {
    struct race *rc = ipx_test_shared_alloc(sizeof *rc);
    g_race = rc;
    char tag[32];
    snprintf(tag, sizeof tag, "race%ld", round);
    ipx_test_name(rc->name, sizeof rc->name, tag);
    ipx_test_gate_init(&rc->gate);
    pid_t pids[RACERS];
    for (int i = 0; i < RACERS; i++) {
      rc->result[i] = 999;
      g_slot = i;
      pids[i] = ipx_test_fork(racer_slot, NULL);
    }
    ipx_test_gate_open(&rc->gate);
    for (int i = 0; i < RACERS; i++) IPX_ASSERT_CHILD_OK(pids[i]);
    int creators = 0;
    for (int i = 0; i < RACERS; i++) {
      IPX_ASSERT_OK(rc->result[i]);
      IPX_ASSERT_EQ(rc->size[i], 128 * KiB);
      creators += rc->created[i];
    }
    IPX_ASSERT_EQ(creators, 1);
    ipx_segment_t *s;
    IPX_ASSERT_OK(open_shm(&s, rc->name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
    for (int i = 0; i < RACERS; i++) IPX_ASSERT_EQ(heap_at(s)[i], i + 1);
    ipx_segment_close(s);
    IPX_ASSERT_OK(ipx_segment_remove_shm(rc->name));
    ipx_test_shared_free(rc, sizeof *rc);
  }
}

/* ---- killed creators and half-built objects ------------------------------ */

static char g_name[256];
static void create_forever(void *arg) {
  (void)arg;
  for (;;) {
    ipx_segment_t *s;
    ipx_segment_options_t o = opts(IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 1024 * KiB);
    o.flags = IPX_SEGMENT_RESERVE;
    if (ipx_segment_open_shm(&s, g_name, &o) == 0) {
      ipx_segment_close(s);
      ipx_segment_remove_shm(g_name);
    }
  }
}

IPX_TEST_T(creator_killed_at_random_points, 120) {
  ipx_test_name(g_name, sizeof g_name, "kill");
  long iters = ipx_test_scale(200, 10);
  int found = 0;
  for (long i = 0; i < iters; i++) {
    pid_t p = ipx_test_fork(create_forever, NULL);
    usleep((useconds_t)(ipx_test_rand() % 2000));
    kill(p, SIGKILL);
    int st = ipx_test_wait(p, 10000);
    IPX_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    uint64_t t0 = ipx_now();
    ipx_segment_t *s;
    int r = open_shm(&s, g_name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 64 * KiB);
    IPX_ASSERT_LT(ipx_now() - t0, IPX_SEC);
    /* The creator publishes only finished segments: never ECORRUPT here. */
    IPX_ASSERT_OK(r);
    if (!ipx_segment_created(s)) found++;
    IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
    ipx_segment_close(s);
    IPX_ASSERT_OK(ipx_segment_remove_shm(g_name));
  }
  ipx_test_log("%ld kills, %d left a published segment", iters, found);
}

/* An object made by hand: `len` bytes of `data` (NULL: zeros). */
static void stage_object(const char *path, const void *data, size_t len) {
  int fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
  IPX_ASSERT_GE(fd, 0);
  IPX_ASSERT_EQ(ftruncate(fd, (off_t)len), 0);
  if (data) IPX_ASSERT_EQ(pwrite(fd, data, len, 0), (ssize_t)len);
  close(fd);
}

struct staged {
  char name[128];
  int result;
};
static void open_staged(void *arg) {
  struct staged *sg = arg;
  ipx_segment_t *s;
  uint64_t t0 = ipx_now();
  sg->result = open_shm(&s, sg->name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 64 * KiB);
  IPX_ASSERT_LT(ipx_now() - t0, IPX_SEC);
  if (sg->result == 0) ipx_segment_close(s);
}

IPX_TEST(half_built_objects_are_reported_not_overwritten) {
  struct staged *sg = ipx_test_shared_alloc(sizeof *sg);
  ipx_test_name(sg->name, sizeof sg->name, "half");
  char path[512];
  snprintf(path, sizeof path, "/dev/shm/ipx.%s", sg->name);
  /* A real header to cut in half. */
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, 64 * KiB));
  unsigned char *img = malloc(64 * KiB);
  memcpy(img, ipx_segment_base(s), 64 * KiB);
  ipx_segment_close(s);
  memset(img + 64, 0, 64 * KiB - 64);
  struct {
    const void *data;
    size_t len;
  } cases[] = {{NULL, 0}, {NULL, 64 * KiB}, {NULL, 100}, {img, 64 * KiB}, {img, 60}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    stage_object(path, cases[i].data, cases[i].len);
    IPX_ASSERT_CHILD_OK(ipx_test_fork(open_staged, sg));
    IPX_ASSERT_ERR(sg->result, IPX_ECORRUPT);
    struct stat st;
    IPX_ASSERT_EQ(stat(path, &st), 0);
    IPX_ASSERT_EQ(st.st_size, (off_t)cases[i].len); /* untouched */
  }
  free(img);
  IPX_ASSERT_OK(ipx_segment_remove_shm(sg->name));
  ipx_test_shared_free(sg, sizeof *sg);
}

/* ---- files: persistence and boots ---------------------------------------- */

IPX_TEST_PEER(peer_file_write) {
  if (argc < 2) return 90;
  ipx_segment_t *s;
  if (open_file(&s, argv[1], IPX_CREATE_ONLY, IPX_READ_WRITE, 128 * KiB)) return 91;
  memcpy(heap_at(s), "persisted", 10);
  if (ipx_segment_flush(s)) return 92;
  ipx_segment_close(s);
  return 0;
}

IPX_TEST_PEER(peer_file_read) {
  if (argc < 2) return 90;
  ipx_segment_t *s;
  if (open_file(&s, argv[1], IPX_OPEN_ONLY, IPX_READ_WRITE, 0)) return 91;
  if (memcmp(heap_at(s), "persisted", 10) != 0) return 92;
  if (ipx_segment_size(s) != 128 * KiB) return 93;
  if (ipx_segment_check(s, NULL, NULL)) return 94;
  ipx_segment_close(s);
  return 0;
}

IPX_TEST(file_segment_survives_exit_and_is_reopened_by_another_run) {
  char path[512];
  file_in_tmp(path, sizeof path, "persist");
  IPX_ASSERT_CHILD_OK(ipx_test_spawn("peer_file_write", path, NULL));
  IPX_ASSERT_CHILD_OK(ipx_test_spawn("peer_file_read", path, NULL));
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_file(&s, path, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 64 * KiB));
  IPX_ASSERT_EQ(ipx_segment_created(s), 0);
  IPX_ASSERT_EQ(ipx_segment_size(s), 128 * KiB);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_file(path));
  IPX_ASSERT_ERR(ipx_segment_remove_file(path), IPX_ENOTFOUND);
}

struct holder {
  char path[512];
  int ready;
};
static void hold_lock_forever(void *arg) {
  struct holder *h = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_file(&s, h->path, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx__seg_lock(s));
  IPX_ASSERT_OK(ipx__seg_lock(s)); /* nested: depth 2 */
  __atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
  for (;;) ipx_test_sleep_ms(1000);
}

static void copy_file(const char *from, const char *to) {
  int a = open(from, O_RDONLY | O_CLOEXEC);
  int b = open(to, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  IPX_ASSERT(a >= 0 && b >= 0);
  char buf[65536];
  ssize_t n;
  while ((n = read(a, buf, sizeof buf)) > 0) IPX_ASSERT_EQ(write(b, buf, (size_t)n), n);
  close(a);
  close(b);
}

IPX_TEST(segment_from_an_earlier_boot_has_its_lock_reset) {
  struct holder *h = ipx_test_shared_alloc(sizeof *h);
  file_in_tmp(h->path, sizeof h->path, "boot");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_file(&s, h->path, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  ipx_segment_close(s);
  pid_t p = ipx_test_fork(hold_lock_forever, h);
  while (!__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE)) ipx_test_sleep_ms(1);
  /* The disk image at the moment the machine went down: the lock is held
   * (by a thread that will never run again) and a writer is inside. */
  char same[600], other[600];
  snprintf(same, sizeof same, "%s.same", h->path);
  snprintf(other, sizeof other, "%s.other", h->path);
  copy_file(h->path, same);
  copy_file(h->path, other);
  kill(p, SIGKILL);
  ipx_test_wait(p, 10000);
  /* Fake the earlier boot in one copy. */
  int fd = open(other, O_RDWR | O_CLOEXEC);
  IPX_ASSERT_GE(fd, 0);
  uint8_t boot[16];
  IPX_ASSERT_EQ(pread(fd, boot, 16, offsetof(struct ipx__seg_header, boot_id)), 16);
  boot[0] ^= 0x5a;
  IPX_ASSERT_EQ(pwrite(fd, boot, 16, offsetof(struct ipx__seg_header, boot_id)), 16);
  close(fd);

  /* Control: same boot, lock genuinely held by a live-or-unknown owner. */
  IPX_ASSERT_OK(open_file(&s, same, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_ERR(ipx_recursive_mutex_try_lock(&ipx__seg_hdr(s)->lock), IPX_EBUSY);
  ipx_segment_close(s);

  IPX_ASSERT_OK(open_file(&s, other, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  struct ipx__seg_header *hd = ipx__seg_hdr(s);
  IPX_ASSERT_EQ(hd->lock_depth, 0);
  IPX_ASSERT(hd->flags & IPX__SEG_F_REPAIR); /* a writer was inside */
  uint64_t t0 = ipx_now();
  IPX_ASSERT_OK(ipx__seg_lock(s));
  IPX_ASSERT_LT(ipx_now() - t0, IPX_SEC);
  IPX_ASSERT_EQ(hd->flags & IPX__SEG_F_REPAIR, 0);
  IPX_ASSERT_EQ(hd->generation & 1, 1);
  IPX_ASSERT_OK(ipx__seg_unlock(s));
  IPX_ASSERT_EQ(hd->generation & 1, 0);
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  ipx_segment_close(s);
  ipx_test_shared_free(h, sizeof *h);
}

/* ---- the lock ------------------------------------------------------------ */

static void lock_and_die(void *arg) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, arg, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx__seg_lock(s));
  IPX_ASSERT_OK(ipx__seg_lock(s));
  ipx_test_expect_crash();
  raise(SIGKILL);
}

static void lock_once(void *arg) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, arg, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx__seg_lock(s));
  IPX_ASSERT_OK(ipx__seg_unlock(s));
  ipx_segment_close(s);
}

/* The outermost unlock is inline (segment_internal.h): it must still wake
 * a process asleep on the lock, here one that flagged FUTEX_WAITERS and
 * slept while we held it. */
IPX_TEST(inline_unlock_wakes_a_process_sleeping_on_the_lock) {
  char name[128];
  ipx_test_name(name, sizeof name, "wake");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  const uint32_t *word = (const uint32_t *)(const void *)&ipx__seg_hdr(s)->lock;
  for (int round = 0; round < 3; round++) {
    IPX_ASSERT_OK(ipx__seg_lock(s));
    pid_t pid = ipx_test_fork(lock_once, name);
    uint64_t deadline = ipx_now() + 5 * IPX_SEC;
    while (!(__atomic_load_n(word, __ATOMIC_ACQUIRE) & 0x80000000u) &&
           ipx_now() < deadline)
      usleep(1000);
    IPX_ASSERT(__atomic_load_n(word, __ATOMIC_ACQUIRE) & 0x80000000u);
    usleep(20000); /* let it reach the futex wait */
    IPX_ASSERT_OK(ipx__seg_unlock(s));
    IPX_ASSERT_EQ(ipx_test_wait(pid, 5000) & 0xffff, 0); /* exited 0 */
  }
  IPX_ASSERT_EQ(__atomic_load_n(word, __ATOMIC_ACQUIRE), 0);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

IPX_TEST(lock_is_recursive_bumps_generation_and_survives_a_dead_holder) {
  char name[128];
  ipx_test_name(name, sizeof name, "lock");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  struct ipx__seg_header *h = ipx__seg_hdr(s);
  uint64_t g0 = h->generation;
  IPX_ASSERT_EQ(g0 & 1, 0);
  IPX_ASSERT_ERR(ipx__seg_unlock(s), IPX_ENOTOWNER);
  IPX_ASSERT_OK(ipx__seg_lock(s));
  IPX_ASSERT_OK(ipx__seg_lock(s));
  IPX_ASSERT_EQ(h->lock_depth, 2);
  IPX_ASSERT_EQ(h->generation, g0 + 1);
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL)); /* nested check is fine */
  IPX_ASSERT_OK(ipx__seg_unlock(s));
  IPX_ASSERT_EQ(h->generation, g0 + 1);
  IPX_ASSERT_OK(ipx__seg_unlock(s));
  IPX_ASSERT_EQ(h->generation, g0 + 2);
  IPX_ASSERT_EQ(h->lock_depth, 0);
  IPX_ASSERT_EQ(h->lock_owner, 0);

  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(lock_and_die, name), SIGKILL);
  IPX_ASSERT_EQ(h->generation & 1, 1); /* the dead holder was inside */
  uint64_t t0 = ipx_now();
  IPX_ASSERT_OK(ipx__seg_lock(s));
  IPX_ASSERT_LT(ipx_now() - t0, IPX_SEC);
  IPX_ASSERT_EQ(h->lock_depth, 1);
  IPX_ASSERT_OK(ipx__seg_unlock(s));
  IPX_ASSERT_EQ(h->generation & 1, 0);
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));

  /* A segment marked corrupt refuses the lock and says why. */
  IPX_ASSERT_OK(ipx__seg_lock(s));
  ipx__seg_mark_corrupt(s, "test: allocator tree broken");
  IPX_ASSERT_OK(ipx__seg_unlock(s));
  IPX_ASSERT_ERR(ipx__seg_lock(s), IPX_ECORRUPT);
  struct problems pr = {0};
  IPX_ASSERT_ERR(ipx_segment_check(s, collect, &pr), IPX_ECORRUPT);
  IPX_ASSERT_GE(pr.n, 1);
  IPX_ASSERT(strstr(pr.first, "allocator tree broken") != NULL);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

IPX_TEST(check_reports_damage_in_words) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, 64 * KiB));
  struct ipx__seg_header *h = ipx__seg_hdr(s);
  h->reserved5[100] = 1;
  struct problems pr = {0};
  IPX_ASSERT_ERR(ipx_segment_check(s, collect, &pr), IPX_ECORRUPT);
  IPX_ASSERT_EQ(pr.n, 1);
  IPX_ASSERT(strstr(pr.first, "reserved") != NULL);
  h->reserved5[100] = 0;
  h->geo[0].heap_size += 8;
  ipx__seg_seal(h);
  memset(&pr, 0, sizeof pr);
  IPX_ASSERT_ERR(ipx_segment_check(s, collect, &pr), IPX_ECORRUPT);
  IPX_ASSERT(strstr(pr.first, "heap size") != NULL);
  h->geo[0].heap_size -= 8;
  ipx__seg_seal(h);
  IPX_ASSERT_OK(ipx_segment_check(s, collect, NULL));
  ipx_segment_close(s);
}

/* ---- read-only and copy-on-write openers ---------------------------------- */

struct rocow {
  char name[128];
  int step; /* parent/child hand-offs */
  int busy_result, ok_result, lock_result, sees, cow_lock;
};

static void wait_step(struct rocow *x, int v) {
  while (__atomic_load_n(&x->step, __ATOMIC_ACQUIRE) < v) ipx_test_sleep_ms(1);
}
static void set_step(struct rocow *x, int v) {
  __atomic_store_n(&x->step, v, __ATOMIC_RELEASE);
}

static void ro_child(void *arg) {
  struct rocow *x = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, x->name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_EQ(ipx_segment_access(s), IPX_READ_ONLY);
  x->sees = heap_at(s)[0];
  x->lock_result = ipx__seg_lock(s);
  uint64_t v;
  IPX_ASSERT_OK(ipx_segment_free_memory(s, &v));
  IPX_ASSERT_EQ(v, fresh_free(64 * KiB));
  set_step(x, 1);
  wait_step(x, 2); /* the parent holds the lock now */
  x->busy_result = ipx_segment_check(s, NULL, NULL);
  set_step(x, 3);
  wait_step(x, 4); /* released */
  x->ok_result = ipx_segment_check(s, NULL, NULL);
  ipx_segment_close(s);
}

static void ro_write_crashes(void *arg) {
  struct rocow *x = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, x->name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  ipx_test_expect_crash();
  heap_at(s)[0] = 1;
}

IPX_TEST(read_only_opener_reads_and_checks_without_the_lock) {
  struct rocow *x = ipx_test_shared_alloc(sizeof *x);
  ipx_test_name(x->name, sizeof x->name, "ro");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, x->name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  heap_at(s)[0] = 42;
  pid_t p = ipx_test_fork(ro_child, x);
  wait_step(x, 1);
  IPX_ASSERT_OK(ipx__seg_lock(s));
  set_step(x, 2);
  wait_step(x, 3);
  IPX_ASSERT_OK(ipx__seg_unlock(s));
  set_step(x, 4);
  IPX_ASSERT_CHILD_OK(p);
  IPX_ASSERT_EQ(x->sees, 42);
  IPX_ASSERT_ERR(x->lock_result, IPX_EREADONLY);
  IPX_ASSERT_ERR(x->busy_result, IPX_EBUSY); /* a writer stayed inside */
  IPX_ASSERT_OK(x->ok_result);
  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(ro_write_crashes, x), SIGSEGV);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(x->name));
  ipx_test_shared_free(x, sizeof *x);
}

static void cow_child(void *arg) {
  struct rocow *x = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, x->name, IPX_OPEN_ONLY, IPX_COPY_ON_WRITE, 0));
  x->sees = heap_at(s)[0];
  heap_at(s)[0] = 'B';
  /* The parent holds the shared lock; ours is a private copy. */
  x->cow_lock = ipx__seg_lock(s);
  if (x->cow_lock == 0) {
    IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
    ipx__seg_unlock(s);
  }
  IPX_ASSERT_EQ(heap_at(s)[0], 'B');
  ipx_segment_close(s);
}

IPX_TEST(copy_on_write_opener_changes_only_its_copy) {
  struct rocow *x = ipx_test_shared_alloc(sizeof *x);
  ipx_test_name(x->name, sizeof x->name, "cow");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, x->name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  heap_at(s)[0] = 'A';
  IPX_ASSERT_OK(ipx__seg_lock(s));
  IPX_ASSERT_CHILD_OK(ipx_test_fork(cow_child, x));
  IPX_ASSERT_EQ(x->sees, 'A');
  IPX_ASSERT_OK(x->cow_lock);
  IPX_ASSERT_EQ(heap_at(s)[0], 'A');
  struct ipx__seg_header *h = ipx__seg_hdr(s);
  IPX_ASSERT_EQ(h->lock_depth, 1); /* our lock state untouched */
  IPX_ASSERT_EQ(h->lock_owner, (uint32_t)gettid());
  IPX_ASSERT_OK(ipx__seg_unlock(s));
  /* And the file never changed. */
  ipx_segment_close(s);
  IPX_ASSERT_OK(open_shm(&s, x->name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_EQ(heap_at(s)[0], 'A');
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(x->name));
  ipx_test_shared_free(x, sizeof *x);
}

/* ---- grow and shrink -------------------------------------------------------- */

struct opener {
  char name[128];
  int ready;
};
static void hold_open_until_killed(void *arg) {
  struct opener *op = arg;
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, op->name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  __atomic_store_n(&op->ready, 1, __ATOMIC_RELEASE);
  for (;;) ipx_test_sleep_ms(1000);
}

/* Pages of the object `name` in the page cache (written by someone):
 * mincore on a read-only mapping of the file, which touches nothing. */
static void resident_pages(const char *name, uint64_t size, unsigned char *vec) {
  char path[512];
  snprintf(path, sizeof path, "/dev/shm/ipx.%s", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  IPX_ASSERT_GE(fd, 0);
  void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
  IPX_ASSERT(p != MAP_FAILED);
  IPX_ASSERT_EQ(mincore(p, (size_t)size, vec), 0);
  munmap(p, (size_t)size);
  close(fd);
}

/* Creating and growing a segment writes its header and the first bytes of
 * the allocator's control block, nothing else: a 64 MiB segment costs its
 * creator one or two pages, and grow adds none. */
IPX_TEST(create_and_grow_touch_only_the_header_pages) {
  char name[128];
  ipx_test_name(name, sizeof name, "touch");
  const uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE), size = 64u << 20;
  static unsigned char vec[(128u << 20) / 4096];
  IPX_ASSERT_LE((128u << 20) / pg, sizeof vec);
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, size));
  ipx_segment_close(s);
  /* The only pages allowed: the header's and the control block start's. */
  uint64_t ok_lo = IPX_SEGMENT_HEADER_SIZE / pg;
  for (int round = 0; round < 2; round++) {
    uint64_t total = round ? 2 * size : size;
    resident_pages(name, total, vec);
    for (uint64_t i = 0; i < total / pg; i++)
      if ((vec[i] & 1) && i != 0 && i != ok_lo)
        IPX_FAIL("after %s, page %llu of the object was written",
                 round ? "grow" : "create", (unsigned long long)i);
    if (!round) IPX_ASSERT_OK(ipx_segment_grow_shm(name, size));
  }
  /* And the segment works: the first allocation lands right after the
   * control block. */
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(ipx_segment_size(s), 2 * size);
  void *p;
  IPX_ASSERT_OK(ipx_segment_allocate(s, 100, &p));
  IPX_ASSERT_EQ((uint64_t)((unsigned char *)p - (unsigned char *)ipx_segment_base(s)),
                IPX_SEGMENT_HEADER_SIZE + ipx__heap_ctl_size() + 16);
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

IPX_TEST(grow_and_shrink_only_when_nobody_has_it_open) {
  char name[128], path[512];
  ipx_test_name(name, sizeof name, "grow");
  file_in_tmp(path, sizeof path, "grow");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  heap_at(s)[1000] = 9;
  /* Our own handle counts. */
  IPX_ASSERT_ERR(ipx_segment_grow_shm(name, 64 * KiB), IPX_EBUSY);
  ipx_segment_close(s);
  struct opener *op = ipx_test_shared_alloc(sizeof *op);
  strcpy(op->name, name);
  pid_t p = ipx_test_fork(hold_open_until_killed, op);
  while (!__atomic_load_n(&op->ready, __ATOMIC_ACQUIRE)) ipx_test_sleep_ms(1);
  /* A read-only opener in another process counts too. */
  IPX_ASSERT_ERR(ipx_segment_grow_shm(name, 64 * KiB), IPX_EBUSY);
  IPX_ASSERT_ERR(ipx_segment_shrink_to_fit_shm(name, NULL), IPX_EBUSY);
  kill(p, SIGKILL);
  ipx_test_wait(p, 10000);
  ipx_test_shared_free(op, sizeof *op);
  /* The kernel dropped the dead opener's lock at once. */
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  uint64_t before = ipx_segment_size(s);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_grow_shm(name, 64 * KiB));
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(ipx_segment_size(s), before + 64 * KiB);
  IPX_ASSERT_EQ(heap_at(s)[1000], 9);
  uint64_t v;
  IPX_ASSERT_OK(ipx_segment_free_memory(s, &v));
  IPX_ASSERT_EQ(v, fresh_free(before + 64 * KiB));
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  ipx_segment_close(s);
  IPX_ASSERT_ERR(ipx_segment_grow_shm(name, IPX_SEGMENT_MAX_SIZE), IPX_ETOOBIG);
  IPX_ASSERT_ERR(ipx_segment_grow_shm(name, UINT64_MAX), IPX_ETOOBIG);
  uint64_t ns;
  IPX_ASSERT_OK(ipx_segment_shrink_to_fit_shm(name, &ns));
  /* No allocator holds anything yet: down to the minimum. */
  IPX_ASSERT_EQ(ns, IPX_SEGMENT_MIN_SIZE);
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(ipx_segment_size(s), IPX_SEGMENT_MIN_SIZE);
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));

  /* Files the same way. */
  IPX_ASSERT_OK(open_file(&s, path, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  IPX_ASSERT_ERR(ipx_segment_grow_file(path, 4096), IPX_EBUSY);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_grow_file(path, 1024 * KiB));
  IPX_ASSERT_OK(open_file(&s, path, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_EQ(ipx_segment_size(s), 1088 * KiB);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_shrink_to_fit_file(path, &ns));
  IPX_ASSERT_EQ(ns, IPX_SEGMENT_MIN_SIZE);
  struct stat st;
  IPX_ASSERT_EQ(stat(path, &st), 0);
  IPX_ASSERT_EQ(st.st_size, IPX_SEGMENT_MIN_SIZE);
}

static void grow_forever(void *arg) {
  for (;;) {
    ipx_segment_grow_shm(arg, 12 * KiB);
    ipx_segment_shrink_to_fit_shm(arg, NULL);
  }
}

IPX_TEST_T(grower_killed_at_random_points_is_finished_by_the_next_opener, 120) {
  char name[128];
  ipx_test_name(name, sizeof name, "gkill");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  heap_at(s)[10] = 3;
  ipx_segment_close(s);
  long iters = ipx_test_scale(200, 10);
  int settled = 0;
  for (long i = 0; i < iters; i++) {
    pid_t p = ipx_test_fork(grow_forever, name);
    usleep((useconds_t)(ipx_test_rand() % 3000));
    kill(p, SIGKILL);
    ipx_test_wait(p, 10000);
    /* Was it killed inside a resize? */
    char path[512];
    snprintf(path, sizeof path, "/dev/shm/ipx.%s", name);
    struct ipx__seg_header h;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    IPX_ASSERT_GE(fd, 0);
    IPX_ASSERT_EQ(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
    if (h.geo[h.geo_slot & 1].resize_to) settled++;
    uint64_t t0 = ipx_now();
    IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
    IPX_ASSERT_LT(ipx_now() - t0, IPX_SEC);
    IPX_ASSERT_EQ(heap_at(s)[10], 3);
    { struct problems pr = {0, {0}}; int cr = ipx_segment_check(s, collect, &pr); if (cr) IPX_FAIL("check: %s", pr.first); }
    ipx_segment_close(s);
  }
  ipx_test_log("%ld kills, %d inside a resize (finished by the next opener)",
               iters, settled);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

IPX_TEST(unfinished_resize_needs_a_lone_writer) {
  char name[128], path[512];
  ipx_test_name(name, sizeof name, "pend");
  snprintf(path, sizeof path, "/dev/shm/ipx.%s", name);
  ipx_segment_t *s, *t;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  /* Record an intent to grow to 96 KiB by hand, as a killed grower would. */
  struct ipx__seg_header *h = ipx__seg_hdr(s);
  h->geo[1] = h->geo[0];
  h->geo[1].resize_to = 96 * KiB;
  h->geo_slot = 1;
  ipx__seg_seal(h);
  ipx_segment_close(s);
  IPX_ASSERT_ERR(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0), IPX_EBUSY);
  IPX_ASSERT_ERR(open_shm(&s, name, IPX_OPEN_ONLY, IPX_COPY_ON_WRITE, 0), IPX_EBUSY);
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(ipx_segment_size(s), 96 * KiB);
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  IPX_ASSERT_OK(open_shm(&t, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_EQ(ipx_segment_size(t), 96 * KiB);
  ipx_segment_close(t);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* A resizer killed between its steps, staged exactly: the intent recorded
 * and the object already at the new size (grow), or the intent recorded
 * with nothing else done yet (shrink); then grow and open finish them. */
static void record_intent(const char *name, uint64_t to) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  struct ipx__seg_header *h = ipx__seg_hdr(s);
  uint32_t n = (h->geo_slot & 1) ^ 1;
  h->geo[n] = h->geo[h->geo_slot & 1];
  h->geo[n].resize_to = to;
  h->geo_slot = n;
  ipx__seg_seal(h);
  ipx_segment_close(s);
}

IPX_TEST(staged_resize_states_are_finished) {
  char name[128], path[512];
  ipx_test_name(name, sizeof name, "stage");
  snprintf(path, sizeof path, "/dev/shm/ipx.%s", name);
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  heap_at(s)[5] = 42;
  ipx_segment_close(s);
  /* Grow to 96 KiB killed right after its ftruncate. */
  record_intent(name, 96 * KiB);
  IPX_ASSERT_EQ(truncate(path, 96 * KiB), 0);
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(ipx_segment_size(s), 96 * KiB);
  IPX_ASSERT_EQ(heap_at(s)[5], 42);
  uint64_t v;
  IPX_ASSERT_OK(ipx_segment_free_memory(s, &v));
  IPX_ASSERT_EQ(v, fresh_free(96 * KiB));
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  ipx_segment_close(s);
  /* Shrink to 64 KiB killed before it did anything but record it: the
   * next grow finishes it first, then grows from there. */
  record_intent(name, 64 * KiB);
  IPX_ASSERT_OK(ipx_segment_grow_shm(name, 32 * KiB));
  struct stat st;
  IPX_ASSERT_EQ(stat(path, &st), 0);
  IPX_ASSERT_EQ(st.st_size, 96 * KiB);
  IPX_ASSERT_OK(open_shm(&s, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_EQ(ipx_segment_size(s), 96 * KiB);
  IPX_ASSERT_EQ(heap_at(s)[5], 42);
  IPX_ASSERT_OK(ipx_segment_free_memory(s, &v));
  IPX_ASSERT_EQ(v, fresh_free(96 * KiB));
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  const struct ipx__seg_header *h = ipx__seg_hdr(s);
  IPX_ASSERT_EQ(h->geo[h->geo_slot & 1].resize_to, 0);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* ---- handles, addresses ------------------------------------------------------ */

IPX_TEST_PEER(peer_handle_reads) {
  if (argc < 3) return 90;
  ipx_segment_t *s;
  if (open_shm(&s, argv[1], IPX_OPEN_ONLY, IPX_READ_ONLY, 0)) return 91;
  void *p;
  if (ipx_segment_address_from_handle(s, strtoull(argv[2], NULL, 10), &p)) return 92;
  if (strcmp(p, "through a handle") != 0) return 93;
  ipx_segment_close(s);
  return 0;
}

IPX_TEST(handles_round_trip_and_reject_outside_addresses) {
  char name[128];
  ipx_test_name(name, sizeof name, "hdl");
  ipx_segment_t *s;
  IPX_ASSERT_OK(open_shm(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB));
  char *base = ipx_segment_base(s);
  uint64_t hd;
  void *p;
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, base, &hd));
  IPX_ASSERT_EQ(hd, 0);
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, base + 64 * KiB - 1, &hd));
  IPX_ASSERT_EQ(hd, 64 * KiB - 1);
  IPX_ASSERT_ERR(ipx_segment_handle_from_address(s, base + 64 * KiB, &hd), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_handle_from_address(s, base - 1, &hd), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_handle_from_address(s, NULL, &hd), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_handle_from_address(s, &hd, &hd), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_handle_from_address(s, base, NULL), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_segment_address_from_handle(s, 5000, &p));
  IPX_ASSERT_PTR_EQ(p, base + 5000);
  IPX_ASSERT_ERR(ipx_segment_address_from_handle(s, 64 * KiB, &p), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_address_from_handle(s, UINT64_MAX, &p), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_segment_address_from_handle(s, 0, NULL), IPX_EINVAL);
  strcpy(base + 9000, "through a handle");
  IPX_ASSERT_OK(ipx_segment_handle_from_address(s, base + 9000, &hd));
  char hs[32];
  snprintf(hs, sizeof hs, "%llu", (unsigned long long)hd);
  IPX_ASSERT_CHILD_OK(ipx_test_spawn("peer_handle_reads", name, hs, NULL));
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

IPX_TEST(address_option_maps_exactly_there_or_fails) {
  char name[128];
  ipx_test_name(name, sizeof name, "addr");
  /* A free spot: reserve it, then let it go. */
  void *spot = mmap(NULL, 256 * KiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  IPX_ASSERT(spot != MAP_FAILED);
  munmap(spot, 256 * KiB);
  ipx_segment_options_t o = opts(IPX_CREATE_ONLY, IPX_READ_WRITE, 64 * KiB);
  o.address = spot;
  ipx_segment_t *s, *t;
  IPX_ASSERT_OK(ipx_segment_open_shm(&s, name, &o));
  IPX_ASSERT_PTR_EQ(ipx_segment_base(s), spot);
  /* The same spot again is taken: never replaced. */
  o.mode = IPX_OPEN_ONLY;
  IPX_ASSERT_ERR(ipx_segment_open_shm(&t, name, &o), -EEXIST);
  IPX_ASSERT_EQ(heap_at(s)[0], 0);
  ipx_segment_close(s);
  IPX_ASSERT_OK(ipx_segment_remove_shm(name));
}

/* ---- heap and buffer ---------------------------------------------------------- */

IPX_TEST(heap_and_buffer_backings) {
  ipx_segment_t *s, *t;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, 100 * KiB));
  IPX_ASSERT_EQ(ipx_segment_size(s), 100 * KiB);
  IPX_ASSERT_EQ(ipx_segment_created(s), 1);
  uint64_t v;
  IPX_ASSERT_OK(ipx_segment_free_memory(s, &v));
  IPX_ASSERT_EQ(v, fresh_free(100 * KiB));
  IPX_ASSERT_EQ(heap_at(s)[50 * KiB], 0);
  IPX_ASSERT_OK(ipx__seg_lock(s));
  IPX_ASSERT_OK(ipx__seg_unlock(s));
  IPX_ASSERT_OK(ipx_segment_check(s, NULL, NULL));
  IPX_ASSERT_OK(ipx_segment_flush(s));

  /* A buffer: format, close, reopen, damage, wrong size. */
  size_t n = 64 * KiB;
  unsigned char *buf = aligned_alloc(64, n + 4096);
  IPX_ASSERT(buf);
  memset(buf, 0xab, n + 4096);
  ipx_segment_options_t o = opts(IPX_CREATE_ONLY, IPX_READ_WRITE, 0);
  IPX_ASSERT_OK(ipx_segment_open_buffer(&t, buf, n, &o));
  IPX_ASSERT_PTR_EQ(ipx_segment_base(t), buf);
  IPX_ASSERT_EQ(ipx_segment_created(t), 1);
  IPX_ASSERT_OK(ipx_segment_check(t, NULL, NULL));
  heap_at(t)[0] = 17;
  ipx_segment_close(t);
  o.mode = IPX_OPEN_ONLY;
  IPX_ASSERT_OK(ipx_segment_open_buffer(&t, buf, n, &o));
  IPX_ASSERT_EQ(ipx_segment_created(t), 0);
  IPX_ASSERT_EQ(heap_at(t)[0], 17);
  ipx_segment_close(t);
  o.access = IPX_READ_ONLY;
  IPX_ASSERT_OK(ipx_segment_open_buffer(&t, buf, n, &o));
  IPX_ASSERT_ERR(ipx__seg_lock(t), IPX_EREADONLY);
  IPX_ASSERT_OK(ipx_segment_check(t, NULL, NULL));
  ipx_segment_close(t);
  o.access = IPX_READ_WRITE;
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&t, buf, n + 4096, &o), IPX_ECORRUPT);
  buf[60] ^= 1;
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&t, buf, n, &o), IPX_ECORRUPT);
  buf[60] ^= 1;
  buf[9] ^= 1; /* version */
  IPX_ASSERT_ERR(ipx_segment_open_buffer(&t, buf, n, &o), IPX_EVERSION);
  free(buf);
  ipx_segment_close(s);
}
