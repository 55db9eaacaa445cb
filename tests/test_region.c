/* region: mapped regions, file mappings, anonymous shared memory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

/* A fresh read-write object of `size` bytes, byte i holding (i * 7) & 0xff. */
static ipx_shm_t *patterned(const char *tag, uint64_t size, char *name,
                            size_t len) {
  ipx_test_name(name, len, tag);
  ipx_shm_t *s;
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx_shm_resize(s, size, IPX_SHM_SPARSE));
  if (size) {
    ipx_region_t *r;
    IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL));
    unsigned char *p = ipx_region_address(r);
    for (uint64_t i = 0; i < size; i++) p[i] = (unsigned char)(i * 7);
    IPX_ASSERT_OK(ipx_region_unmap(r));
  }
  return s;
}

static void make_file(const char *path, uint64_t size) {
  int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
  IPX_ASSERT_GE(fd, 0);
  for (uint64_t i = 0; i < size; i++) {
    unsigned char c = (unsigned char)(i * 7);
    IPX_ASSERT_EQ(pwrite(fd, &c, 1, (off_t)i), 1);
  }
  close(fd);
}

IPX_TEST(page_size) {
  size_t p = ipx_page_size();
  IPX_ASSERT_GE(p, 4096);
  IPX_ASSERT_EQ(p & (p - 1), 0);
  IPX_ASSERT_EQ(p, (size_t)sysconf(_SC_PAGESIZE));
}

IPX_TEST(map_whole_and_share_writes) {
  char name[128];
  ipx_shm_t *s = patterned("whole", 10000, name, sizeof name);
  ipx_region_t *a, *b;
  IPX_ASSERT_OK(ipx_region_map_shm(&a, s, IPX_READ_WRITE, NULL));
  IPX_ASSERT_OK(ipx_region_map_shm(&b, s, IPX_READ_ONLY, NULL));
  IPX_ASSERT_EQ(ipx_region_size(a), 10000);
  IPX_ASSERT_EQ(ipx_region_access(a), IPX_READ_WRITE);
  IPX_ASSERT_EQ(ipx_region_access(b), IPX_READ_ONLY);
  IPX_ASSERT(ipx_region_address(a) != ipx_region_address(b));
  unsigned char *pa = ipx_region_address(a), *pb = ipx_region_address(b);
  IPX_ASSERT_EQ(pb[9999], (unsigned char)(9999 * 7));
  pa[5000] = 0xAB;
  IPX_ASSERT_EQ(pb[5000], 0xAB);
  /* The region outlives the handle and the name. */
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
  pa[1] = 0xCD;
  IPX_ASSERT_EQ(pb[1], 0xCD);
  IPX_ASSERT_OK(ipx_region_unmap(a));
  IPX_ASSERT_OK(ipx_region_unmap(b));
  IPX_ASSERT_OK(ipx_region_unmap(NULL));
}

IPX_TEST(any_offset_gives_the_byte_asked_for) {
  char name[128];
  size_t page = ipx_page_size();
  uint64_t total = 3 * page + 123;
  ipx_shm_t *s = patterned("off", total, name, sizeof name);
  const uint64_t offsets[] = {0, 1, 7, page - 1, page, page + 1, 2 * page + 77,
                              total - 1};
  for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
    ipx_region_opts_t o;
    ipx_region_opts_init(&o);
    o.offset = offsets[i];
    ipx_region_t *r;
    IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o));
    const unsigned char *p = ipx_region_address(r);
    IPX_ASSERT_EQ((uintptr_t)p % page, o.offset % page);
    IPX_ASSERT_EQ(ipx_region_size(r), total - o.offset);
    IPX_ASSERT_EQ(p[0], (unsigned char)(o.offset * 7));
    IPX_ASSERT_EQ(p[ipx_region_size(r) - 1], (unsigned char)((total - 1) * 7));
    IPX_ASSERT_OK(ipx_region_unmap(r));

    o.size = 1;
    IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o));
    IPX_ASSERT_EQ(ipx_region_size(r), 1);
    IPX_ASSERT_EQ(*(unsigned char *)ipx_region_address(r),
                  (unsigned char)(o.offset * 7));
    IPX_ASSERT_OK(ipx_region_unmap(r));
  }
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

IPX_TEST(bad_input) {
  char name[128], ename[128];
  ipx_shm_t *s = patterned("bad", 8192, name, sizeof name);
  ipx_shm_t *ro, *empty;
  IPX_ASSERT_OK(ipx_shm_open(&ro, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  ipx_test_name(ename, sizeof ename, "empty");
  IPX_ASSERT_OK(ipx_shm_open(&empty, ename, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  ipx_region_t *r = (ipx_region_t *)&name; /* poisoned: must become NULL */
  ipx_region_opts_t o;

  IPX_ASSERT_ERR(ipx_region_map_shm(NULL, s, IPX_READ_ONLY, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, NULL, IPX_READ_ONLY, NULL), IPX_EINVAL);
  IPX_ASSERT(r == NULL);
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, s, (ipx_access_t)0, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, s, (ipx_access_t)9, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, ro, IPX_READ_WRITE, NULL),
                 IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, empty, IPX_READ_ONLY, NULL),
                 IPX_EEMPTY);
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, empty, IPX_READ_WRITE, NULL),
                 IPX_EEMPTY);
  ipx_region_opts_init(&o);
  o.flags = 2;
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o), IPX_EINVAL);
  ipx_region_opts_init(&o);
  o.offset = 8192; /* the end */
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o), IPX_ERANGE);
  o.offset = UINT64_MAX;
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o), IPX_ERANGE);
  o.offset = 100;
  o.size = 8093; /* one byte past the end */
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o), IPX_ERANGE);
  o.size = UINT64_MAX;
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o), IPX_ETOOBIG);
  o.size = IPX_REGION_SIZE_MAX + 1;
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o), IPX_ETOOBIG);
  /* Beyond the address space, even when the object is that big. */
  IPX_ASSERT_OK(ipx_shm_resize(empty, IPX_REGION_SIZE_MAX + 4096,
                               IPX_SHM_SPARSE));
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, empty, IPX_READ_ONLY, NULL),
                 IPX_ETOOBIG);
  ipx_region_opts_init(&o);
  o.offset = 10;
  o.hint = (void *)(uintptr_t)(1ul << 40); /* page-aligned, offset is not */
  IPX_ASSERT_ERR(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o), IPX_EINVAL);
  IPX_ASSERT(r == NULL);
  ipx_region_opts_init(NULL);

  /* anonymous */
  IPX_ASSERT_ERR(ipx_region_anonymous(NULL, 4096), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_anonymous(&r, 0), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_anonymous(&r, UINT64_MAX), IPX_ETOOBIG);
  IPX_ASSERT_ERR(ipx_region_anonymous(&r, IPX_REGION_SIZE_MAX + 1), IPX_ETOOBIG);
  IPX_ASSERT(r == NULL);

  /* flush, advise, accessors */
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL));
  IPX_ASSERT_ERR(ipx_region_flush(NULL, 0, 0, IPX_FLUSH_SYNC), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_flush(r, 0, 0, 4), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_flush(r, 8193, 0, IPX_FLUSH_SYNC), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_region_flush(r, 8000, 193, IPX_FLUSH_SYNC), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_region_flush(r, 1, UINT64_MAX, IPX_FLUSH_SYNC), IPX_ERANGE);
  IPX_ASSERT_OK(ipx_region_flush(r, 8192, 0, IPX_FLUSH_SYNC)); /* empty */
  IPX_ASSERT_ERR(ipx_region_advise(NULL, 0, 0, IPX_ADVICE_NORMAL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_advise(r, 0, 0, (ipx_advice_t)99), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_advise(r, 9000, 0, IPX_ADVICE_NORMAL), IPX_ERANGE);
  IPX_ASSERT_ERR(ipx_region_advise(r, 0, 8193, IPX_ADVICE_NORMAL), IPX_ERANGE);
  IPX_ASSERT(ipx_region_address(NULL) == NULL);
  IPX_ASSERT_EQ(ipx_region_size(NULL), 0);
  IPX_ASSERT_EQ(ipx_region_access(NULL), 0);
  IPX_ASSERT_OK(ipx_region_unmap(r));

  ipx_shm_close(ro);
  ipx_shm_close(empty);
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
  IPX_ASSERT_OK(ipx_shm_remove(ename));
}

IPX_TEST(file_mapping_bad_input) {
  char path[PATH_MAX + 10], dir[512], empty[512];
  ipx_file_mapping_t *fm = (ipx_file_mapping_t *)&path;
  snprintf(path, sizeof path, "%s/missing", ipx_test_tmpdir());
  IPX_ASSERT_ERR(ipx_file_mapping_open(NULL, path, IPX_READ_ONLY), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_mapping_open(&fm, NULL, IPX_READ_ONLY), IPX_EINVAL);
  IPX_ASSERT(fm == NULL);
  IPX_ASSERT_ERR(ipx_file_mapping_open(&fm, "", IPX_READ_ONLY), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_file_mapping_open(&fm, path, IPX_READ_ONLY),
                 IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_file_mapping_open(&fm, path, IPX_COPY_ON_WRITE),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_mapping_open(&fm, path, (ipx_access_t)0), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_mapping_remove(path), IPX_ENOTFOUND);
  IPX_ASSERT_ERR(ipx_file_mapping_remove(NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_file_mapping_remove(""), IPX_EBADNAME);
  memset(path, 'a', sizeof path - 1);
  path[0] = '/';
  path[sizeof path - 1] = 0;
  IPX_ASSERT_ERR(ipx_file_mapping_open(&fm, path, IPX_READ_ONLY), IPX_EBADNAME);
  IPX_ASSERT_ERR(ipx_file_mapping_remove(path), IPX_EBADNAME);

  snprintf(dir, sizeof dir, "%s/adir", ipx_test_tmpdir());
  IPX_ASSERT_OK(mkdir(dir, 0700));
  IPX_ASSERT_ERR(ipx_file_mapping_open(&fm, dir, IPX_READ_ONLY), IPX_EWRONGKIND);
  IPX_ASSERT_ERR(ipx_file_mapping_remove(dir), IPX_EWRONGKIND);

  snprintf(empty, sizeof empty, "%s/empty", ipx_test_tmpdir());
  make_file(empty, 0);
  IPX_ASSERT_OK(ipx_file_mapping_open(&fm, empty, IPX_READ_ONLY));
  ipx_region_t *r = (ipx_region_t *)&path;
  IPX_ASSERT_ERR(ipx_region_map_file(&r, fm, IPX_READ_ONLY, NULL), IPX_EEMPTY);
  IPX_ASSERT_ERR(ipx_region_map_file(&r, fm, IPX_READ_WRITE, NULL),
                 IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_region_map_file(&r, NULL, IPX_READ_ONLY, NULL),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_region_map_file(NULL, fm, IPX_READ_ONLY, NULL),
                 IPX_EINVAL);
  IPX_ASSERT(r == NULL);
  IPX_ASSERT(ipx_file_mapping_path(NULL) == NULL);
  IPX_ASSERT_EQ(ipx_file_mapping_access(NULL), 0);
  IPX_ASSERT_ERR(ipx_file_mapping_fd(NULL), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_file_mapping_close(fm));
  IPX_ASSERT_OK(ipx_file_mapping_close(NULL));
}

IPX_TEST(file_mapping_read_write_flush_remove) {
  char path[512];
  size_t page = ipx_page_size();
  uint64_t size = 3 * page + 50;
  snprintf(path, sizeof path, "%s/data", ipx_test_tmpdir());
  make_file(path, size);
  ipx_file_mapping_t *fm;
  IPX_ASSERT_OK(ipx_file_mapping_open(&fm, path, IPX_READ_WRITE));
  IPX_ASSERT_STREQ(ipx_file_mapping_path(fm), path);
  IPX_ASSERT_EQ(ipx_file_mapping_access(fm), IPX_READ_WRITE);
  ipx_region_opts_t o;
  ipx_region_opts_init(&o);
  o.offset = page + 5;
  o.size = 2 * page;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_region_map_file(&r, fm, IPX_READ_WRITE, &o));
  IPX_ASSERT_OK(ipx_file_mapping_close(fm)); /* the region stays */
  unsigned char *p = ipx_region_address(r);
  IPX_ASSERT_EQ(p[0], (unsigned char)((page + 5) * 7));
  memcpy(p + 10, "flushed!", 8);
  IPX_ASSERT_OK(ipx_region_flush(r, 10, 8, IPX_FLUSH_SYNC));
  IPX_ASSERT_OK(ipx_region_flush(r, 0, 0, IPX_FLUSH_ASYNC));
  int fd = open(path, O_RDONLY);
  char buf[9] = "";
  IPX_ASSERT_EQ(pread(fd, buf, 8, (off_t)(page + 15)), 8);
  close(fd);
  IPX_ASSERT_STREQ(buf, "flushed!");
  const ipx_advice_t advs[] = {IPX_ADVICE_NORMAL, IPX_ADVICE_SEQUENTIAL,
                               IPX_ADVICE_RANDOM, IPX_ADVICE_WILLNEED,
                               IPX_ADVICE_DONTNEED};
  for (size_t i = 0; i < 5; i++)
    IPX_ASSERT_OK(ipx_region_advise(r, 3, page, advs[i]));
  IPX_ASSERT_EQ(memcmp(p + 10, "flushed!", 8), 0); /* shared: data stays */

  IPX_ASSERT_OK(ipx_file_mapping_remove(path));
  IPX_ASSERT_EQ(access(path, F_OK), -1);
  IPX_ASSERT_EQ(p[2 * page - 1], (unsigned char)((3 * page + 4) * 7));
  IPX_ASSERT_OK(ipx_region_unmap(r));
}

IPX_TEST(copy_on_write_stays_private) {
  char name[128];
  ipx_shm_t *s = patterned("cow", 4096, name, sizeof name);
  ipx_shm_t *ro;
  IPX_ASSERT_OK(ipx_shm_open(&ro, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  ipx_region_t *cow, *shared;
  IPX_ASSERT_OK(ipx_region_map_shm(&cow, ro, IPX_COPY_ON_WRITE, NULL));
  IPX_ASSERT_OK(ipx_region_map_shm(&shared, s, IPX_READ_WRITE, NULL));
  IPX_ASSERT_EQ(ipx_region_access(cow), IPX_COPY_ON_WRITE);
  unsigned char *c = ipx_region_address(cow), *sh = ipx_region_address(shared);
  c[100] = 0xEE;
  IPX_ASSERT_EQ(sh[100], (unsigned char)(100 * 7));
  /* Don't-need on a private mapping throws the private copy away. */
  IPX_ASSERT_OK(ipx_region_advise(cow, 0, 0, IPX_ADVICE_DONTNEED));
  IPX_ASSERT_EQ(c[100], (unsigned char)(100 * 7));
  IPX_ASSERT_OK(ipx_region_flush(cow, 0, 0, IPX_FLUSH_SYNC));
  IPX_ASSERT_OK(ipx_region_unmap(cow));
  IPX_ASSERT_OK(ipx_region_unmap(shared));
  ipx_shm_close(ro);
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

static void write_read_only(void *arg) {
  ipx_region_t *r = arg;
  ipx_test_expect_crash();
  volatile unsigned char *p = ipx_region_address(r);
  p[10] = 1; /* must fault */
  _exit(0);
}

IPX_TEST(read_only_mapping_faults_on_write) {
  char name[128];
  ipx_shm_t *s = patterned("rofault", 4096, name, sizeof name);
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_ONLY, NULL));
  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(write_read_only, r), SIGSEGV);
  IPX_ASSERT_EQ(((unsigned char *)ipx_region_address(r))[10], 70);
  IPX_ASSERT_OK(ipx_region_unmap(r));
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

static void touch_past_end(void *arg) {
  ipx_region_t *r = arg;
  ipx_test_expect_crash();
  volatile unsigned char *p = ipx_region_address(r);
  p[ipx_page_size() * 2] = 1;
  _exit(0);
}

IPX_TEST(shrinking_under_a_mapping_is_sigbus_past_the_end) {
  char name[128];
  ipx_shm_t *s = patterned("shrink", 4 * ipx_page_size(), name, sizeof name);
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL));
  IPX_ASSERT_OK(ipx_shm_resize(s, ipx_page_size(), IPX_SHM_SPARSE));
  IPX_ASSERT_CHILD_SIGNALED(ipx_test_fork(touch_past_end, r), SIGBUS);
  IPX_ASSERT_OK(ipx_region_unmap(r));
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

IPX_TEST(hint_is_honoured_and_never_replaces) {
  char name[128];
  size_t page = ipx_page_size();
  ipx_shm_t *s = patterned("hint", 4 * page, name, sizeof name);
  /* Find a free range: map, note, unmap. */
  ipx_region_t *probe;
  IPX_ASSERT_OK(ipx_region_anonymous(&probe, 8 * page));
  char *free_at = ipx_region_address(probe);
  IPX_ASSERT_OK(ipx_region_unmap(probe));

  ipx_region_opts_t o;
  ipx_region_opts_init(&o);
  o.offset = page + 3;
  o.hint = free_at + 3;
  o.flags = IPX_REGION_HINT_STRICT;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_ONLY, &o));
  IPX_ASSERT_PTR_EQ(ipx_region_address(r), free_at + 3);
  IPX_ASSERT_EQ(*(unsigned char *)ipx_region_address(r),
                (unsigned char)((page + 3) * 7));

  /* The range is now occupied: strict refuses, loose goes elsewhere, and
   * the existing mapping is untouched either way. */
  ipx_region_t *r2 = (ipx_region_t *)&o;
  IPX_ASSERT_ERR(ipx_region_map_shm(&r2, s, IPX_READ_WRITE, &o), IPX_EBUSY);
  IPX_ASSERT(r2 == NULL);
  o.flags = 0;
  IPX_ASSERT_OK(ipx_region_map_shm(&r2, s, IPX_READ_WRITE, &o));
  IPX_ASSERT(ipx_region_address(r2) != ipx_region_address(r));
  ((unsigned char *)ipx_region_address(r2))[0] = 0x5A;
  IPX_ASSERT_EQ(*(unsigned char *)ipx_region_address(r), 0x5A);
  IPX_ASSERT_OK(ipx_region_unmap(r2));
  IPX_ASSERT_OK(ipx_region_unmap(r));
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

static void anon_child(void *arg) {
  ipx_region_t *r = arg;
  uint64_t *v = ipx_region_address(r);
  IPX_ASSERT_EQ(v[0], 42);
  v[1] = 43;
  IPX_ASSERT_OK(ipx_region_unmap(r)); /* the child's copy of the handle */
}

IPX_TEST(anonymous_memory_is_shared_with_forked_children) {
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_region_anonymous(&r, 10000));
  IPX_ASSERT_EQ(ipx_region_size(r), 10000);
  IPX_ASSERT_EQ(ipx_region_access(r), IPX_READ_WRITE);
  uint64_t *v = ipx_region_address(r);
  IPX_ASSERT_EQ(v[0], 0);
  v[0] = 42;
  IPX_ASSERT_CHILD_OK(ipx_test_fork(anon_child, r));
  IPX_ASSERT_EQ(v[1], 43);
  IPX_ASSERT_OK(ipx_region_flush(r, 0, 0, IPX_FLUSH_SYNC));
  IPX_ASSERT_OK(ipx_region_advise(r, 0, 0, IPX_ADVICE_WILLNEED));
  IPX_ASSERT_OK(ipx_region_unmap(r));
}

IPX_TEST_PEER(peer_reads_object) {
  /* argv: name, expected size */
  ipx_shm_t *s;
  ipx_region_t *r;
  IPX_ASSERT_OK(ipx_shm_open(&s, argv[1], IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_OK(ipx_region_map_shm(&r, s, IPX_READ_ONLY, NULL));
  uint64_t n = strtoull(argv[2], NULL, 0);
  IPX_ASSERT_EQ(ipx_region_size(r), n);
  const unsigned char *p = ipx_region_address(r);
  for (uint64_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(i * 7)) IPX_FAIL("byte %llu", (unsigned long long)i);
  (void)argc;
  IPX_ASSERT_OK(ipx_region_unmap(r));
  IPX_ASSERT_OK(ipx_shm_close(s));
  return 0;
}

IPX_TEST(another_program_reads_what_was_written) {
  char name[128], size[32];
  ipx_shm_t *s = patterned("peer", 50000, name, sizeof name);
  snprintf(size, sizeof size, "%d", 50000);
  IPX_ASSERT_CHILD_OK(ipx_test_spawn("peer_reads_object", name, size, NULL));
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}
