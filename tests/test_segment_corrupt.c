/* segment: everything that is not a good segment, for shared memory, files
 * and buffers, opened (read-write, read-only, copy-on-write, open-or-create)
 * and checked in a child: a clear error, never a signal, never a hang. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"
#include "segment/segment_internal.h"

#define KiB 1024u
#define SEG_SIZE (64 * KiB)

struct target {
  int is_file;
  char name[128]; /* shm name */
  char path[512]; /* where the bytes live */
};

static void target_init(struct target *t, int is_file) {
  memset(t, 0, sizeof *t);
  t->is_file = is_file;
  ipx_test_name(t->name, sizeof t->name, is_file ? "cf" : "cs");
  if (is_file)
    snprintf(t->path, sizeof t->path, "%s/c.seg", ipx_test_tmpdir());
  else
    snprintf(t->path, sizeof t->path, "/dev/shm/ipx.%s", t->name);
}

static int open_t(const struct target *t, ipx_segment_t **s,
                  ipx_open_mode_t mode, ipx_access_t access) {
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = mode;
  o.access = access;
  o.size = SEG_SIZE;
  return t->is_file ? ipx_segment_open_file(s, t->path, &o)
                    : ipx_segment_open_shm(s, t->name, &o);
}

static void put(const struct target *t, const void *data, size_t len) {
  int fd = open(t->path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  IPX_ASSERT_GE(fd, 0);
  IPX_ASSERT_EQ(ftruncate(fd, (off_t)len), 0);
  if (len) IPX_ASSERT_EQ(pwrite(fd, data, len, 0), (ssize_t)len);
  close(fd);
}

/* A real segment's bytes. */
static unsigned char *good_image(void) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, SEG_SIZE));
  unsigned char *img = malloc(SEG_SIZE);
  IPX_ASSERT(img);
  memcpy(img, ipx_segment_base(s), SEG_SIZE);
  ipx_segment_close(s);
  return img;
}

/* E_CORRUPT_OR_CHECK: refused at open, or opened and check finds it. */
enum expect { E_CORRUPT, E_VERSION, E_OK, E_OK_CHECK_CORRUPT, E_ANY_ERROR,
              E_CORRUPT_OR_CHECK };

/* Open every way; the outcome must be `want`.  Opened segments are
 * checked. */
static void try_all(const struct target *t, enum expect want, const char *what) {
  static const ipx_access_t acc[] = {IPX_READ_WRITE, IPX_READ_ONLY,
                                     IPX_COPY_ON_WRITE};
  for (int m = 0; m < 4; m++) {
    ipx_open_mode_t mode = m == 3 ? IPX_OPEN_OR_CREATE : IPX_OPEN_ONLY;
    ipx_access_t a = acc[m % 3];
    ipx_segment_t *s = NULL;
    uint64_t t0 = ipx_now();
    int r = open_t(t, &s, mode, a);
    if (ipx_now() - t0 > IPX_SEC) IPX_FAIL("%s: open took over a second", what);
    switch (want) {
      case E_CORRUPT:
        if (r != IPX_ECORRUPT)
          IPX_FAIL("%s (mode %d access %d): %s, expected IPX_ECORRUPT", what,
                   mode, a, ipx_err_name(r));
        break;
      case E_VERSION:
        if (r != IPX_EVERSION)
          IPX_FAIL("%s (mode %d access %d): %s, expected IPX_EVERSION", what,
                   mode, a, ipx_err_name(r));
        break;
      case E_ANY_ERROR:
        if (r != IPX_ECORRUPT && r != IPX_EVERSION)
          IPX_FAIL("%s: %s, expected IPX_ECORRUPT or IPX_EVERSION", what,
                   ipx_err_name(r));
        break;
      case E_CORRUPT_OR_CHECK:
        if (r == IPX_ECORRUPT) break;
        /* fall through */
      case E_OK:
      case E_OK_CHECK_CORRUPT:
        if (r != 0) IPX_FAIL("%s (access %d): %s, expected success", what, a, ipx_err_name(r));
        /* Read-only walks of live fields may wait out an odd generation;
         * the writers' walk is the one that matters. */
        if (a != IPX_READ_ONLY) {
          int c = ipx_segment_check(s, NULL, NULL);
          int wc = want == E_OK ? 0 : IPX_ECORRUPT;
          if (c != wc)
            IPX_FAIL("%s (access %d): check %s, expected %s", what, a,
                     ipx_err_name(c), ipx_err_name(wc));
        }
        ipx_segment_close(s);
        break;
    }
    if (r == 0 && want != E_OK && want != E_OK_CHECK_CORRUPT &&
        want != E_CORRUPT_OR_CHECK)
      ipx_segment_close(s);
  }
}

/* What flipping bits of header byte `off` must give. */
static enum expect flip_expect(size_t off, unsigned mask) {
  if (off >= 8 && off < 12) return E_VERSION;
  if (off < 128) return E_CORRUPT;      /* checksummed identity */
  if (off < 192) return E_CORRUPT;      /* slot, reserved, active geometry */
  if (off < 224) return E_OK;           /* the inactive geometry slot */
  if (off < 256) return E_CORRUPT;      /* reserved */
  if (off < 336) return E_OK;           /* generation, depth, owner */
  if (off < 340) {                      /* flags */
    if (off == 336 && mask == 1) return E_OK_CHECK_CORRUPT;
    if (off == 336 && mask == 2) return E_OK; /* "repair me": harmless */
    return E_CORRUPT;
  }
  if (off < 344) return E_CORRUPT;      /* reserved */
  if (off < 360) return E_OK;           /* boot id: the lock gets reset */
  if (off < 448) return E_CORRUPT;      /* note without flag, reserved */
  /* The name index's root (docs/FORMAT.md, objects): magic, version,
   * reserved word, table, mask, counters and the pending block are
   * checked; the walk and operation counters of a lock holder are not
   * (a holder may call check from inside either). */
  if (off < 454) return E_OK_CHECK_CORRUPT;
  if (off < 460) return E_OK;
  if (off < 512) return E_OK_CHECK_CORRUPT;
  return E_CORRUPT;                     /* reserved */
}

static void flips(void *arg) {
  const struct target *t = arg;
  unsigned char *img = good_image();
  put(t, img, SEG_SIZE);
  try_all(t, E_OK, "the good image");
  int fd = open(t->path, O_RDWR | O_CLOEXEC);
  IPX_ASSERT_GE(fd, 0);
  static const unsigned masks[] = {0x01, 0x02, 0x80};
  unsigned char hdr[IPX_SEGMENT_HEADER_SIZE];
  int n = 0;
  for (size_t off = 0; off < IPX_SEGMENT_HEADER_SIZE; off++) {
    /* The lock's own bytes belong to the mutex implementation. */
    if (off >= 256 && off < 320) continue;
    for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
      if (masks[m] == 0x02 && off != 336) continue;
      memcpy(hdr, img, sizeof hdr);
      hdr[off] ^= (unsigned char)masks[m];
      IPX_ASSERT_EQ(pwrite(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
      char what[64];
      snprintf(what, sizeof what, "byte %zu ^ 0x%02x", off, masks[m]);
      try_all(t, flip_expect(off, masks[m]), what);
      n++;
    }
  }
  close(fd);
  free(img);
  ipx_test_log("%d flipped headers", n);
}

static void truncations(void *arg) {
  const struct target *t = arg;
  unsigned char *img = good_image();
  for (size_t len = 0; len < SEG_SIZE; len += len < 4200 ? 1 : 1021) {
    put(t, img, len);
    char what[64];
    snprintf(what, sizeof what, "truncated to %zu", len);
    try_all(t, E_CORRUPT, what);
  }
  /* Made for another size: the object is larger than the segment. */
  unsigned char *big = calloc(1, SEG_SIZE + 4096);
  memcpy(big, img, SEG_SIZE);
  put(t, big, SEG_SIZE + 4096);
  try_all(t, E_CORRUPT, "object larger than its segment");
  /* ... and a header rewritten for another size. */
  struct ipx__seg_header *h = (struct ipx__seg_header *)(void *)img;
  h->geo[0].total_size *= 2;
  h->geo[0].heap_size = h->geo[0].total_size - IPX_SEGMENT_HEADER_SIZE;
  ipx__seg_seal(h);
  put(t, img, SEG_SIZE);
  try_all(t, E_CORRUPT, "header for a segment twice the size");
  free(big);
  free(img);
}

static void versions(void *arg) {
  const struct target *t = arg;
  unsigned char *img = good_image();
  unsigned char *v = malloc(SEG_SIZE);
  struct ipx__seg_header *h = (struct ipx__seg_header *)(void *)v;

  memcpy(v, img, SEG_SIZE);
  h->version = IPX_SEGMENT_FORMAT_VERSION + 1;
  ipx__seg_seal(h);
  put(t, v, SEG_SIZE);
  try_all(t, E_VERSION, "format version + 1");

  memcpy(v, img, SEG_SIZE);
  h->ptr_size = 4;
  h->fingerprint = ipx__seg_hash(v + 8, 24);
  ipx__seg_seal(h);
  put(t, v, SEG_SIZE);
  try_all(t, E_VERSION, "32-bit pointers");

  memcpy(v, img, SEG_SIZE);
  h->rmutex_size = 128;
  h->fingerprint = ipx__seg_hash(v + 8, 24);
  ipx__seg_seal(h);
  put(t, v, SEG_SIZE);
  try_all(t, E_VERSION, "another recursive mutex size");

  memcpy(v, img, SEG_SIZE);
  h->cache_line = 128;
  ipx__seg_seal(h); /* fingerprint left stale: still another layout */
  put(t, v, SEG_SIZE);
  try_all(t, E_VERSION, "another cache line, stale fingerprint");

  memcpy(v, img, SEG_SIZE);
  h->endian = 0x04030201u;
  ipx__seg_seal(h);
  put(t, v, SEG_SIZE);
  try_all(t, E_VERSION, "other byte order");

  /* A segment of format version 1, as the previous release wrote it: a
   * 4 KiB header with the heap after it.  Refused for its version, before
   * any of its other rules could be misread. */
  memcpy(v, img, SEG_SIZE);
  h->version = 1;
  h->header_size = 4096;
  h->fingerprint = ipx__seg_hash(v + 8, 24);
  h->heap_off = 4096;
  h->geo[0].heap_size = h->geo[0].total_size - 4096;
  ipx__seg_seal(h);
  put(t, v, SEG_SIZE);
  try_all(t, E_VERSION, "format version 1 (4 KiB header)");

  /* A big-endian writer's header as this machine reads it. */
  memcpy(v, img, SEG_SIZE);
  h->version = __builtin_bswap32(h->version);
  put(t, v, SEG_SIZE);
  try_all(t, E_VERSION, "byte-swapped version");
  free(v);
  free(img);
}

static void garbage(void *arg) {
  const struct target *t = arg;
  unsigned char *junk = malloc(256 * KiB);
  for (int i = 0; i < 40; i++) {
    size_t len = (size_t)(ipx_test_rand() % (256 * KiB));
    for (size_t k = 0; k < len; k++) junk[k] = (unsigned char)ipx_test_rand();
    if (i % 2 && len >= 8) memcpy(junk, IPX__SEG_MAGIC, 8); /* past the magic */
    put(t, junk, len);
    try_all(t, i % 2 && len >= 8 ? E_ANY_ERROR : E_CORRUPT, "random bytes");
  }
  memset(junk, 0, 256 * KiB);
  static const size_t zl[] = {0,    1,    IPX_SEGMENT_HEADER_SIZE - 1,
                              IPX_SEGMENT_HEADER_SIZE, 4096, SEG_SIZE,
                              256 * KiB};
  for (size_t i = 0; i < sizeof zl / sizeof zl[0]; i++) {
    put(t, junk, zl[i]);
    try_all(t, E_CORRUPT, "zeros");
  }
  free(junk);
}

static void run(int is_file, void (*fn)(void *)) {
  struct target t;
  target_init(&t, is_file);
  IPX_ASSERT_CHILD_OK(ipx_test_fork(fn, &t));
  unlink(t.path);
}

IPX_TEST(shm_flipped_header_bytes) { run(0, flips); }
IPX_TEST(file_flipped_header_bytes) { run(1, flips); }
IPX_TEST(shm_truncated_and_resized) { run(0, truncations); }
IPX_TEST(file_truncated_and_resized) { run(1, truncations); }
IPX_TEST(shm_other_versions_and_layouts) { run(0, versions); }
IPX_TEST(file_other_versions_and_layouts) { run(1, versions); }
IPX_TEST(shm_random_bytes_and_zeros) { run(0, garbage); }
IPX_TEST(file_random_bytes_and_zeros) { run(1, garbage); }

IPX_TEST(not_a_regular_file_or_a_symlink) {
  char dir[512], link[512], name[128];
  snprintf(dir, sizeof dir, "%s/adir", ipx_test_tmpdir());
  IPX_ASSERT_EQ(mkdir(dir, 0700), 0);
  ipx_segment_t *s;
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_OPEN_ONLY;
  int r = ipx_segment_open_file(&s, dir, &o);
  IPX_ASSERT(r == -EISDIR || r == IPX_ECORRUPT);
  /* /dev/shm/ipx.NAME as a symlink is refused, never followed. */
  ipx_test_name(name, sizeof name, "lnk");
  snprintf(link, sizeof link, "/dev/shm/ipx.%s", name);
  IPX_ASSERT_EQ(symlink("/etc/passwd", link), 0);
  IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &o), IPX_ECORRUPT);
  unlink(link);
  /* A FIFO in its place: refused at once, whoever opens it and however
   * (a read-only open must not wait for a writer), and never grown. */
  ipx_test_name(name, sizeof name, "fifo");
  snprintf(link, sizeof link, "/dev/shm/ipx.%s", name);
  IPX_ASSERT_EQ(mkfifo(link, 0600), 0);
  static const ipx_access_t acc[] = {IPX_READ_WRITE, IPX_READ_ONLY,
                                     IPX_COPY_ON_WRITE};
  for (int m = 0; m < 2; m++)
    for (int a = 0; a < (m ? 1 : 3); a++) { /* creating needs read-write */
      o.mode = m ? IPX_OPEN_OR_CREATE : IPX_OPEN_ONLY;
      o.access = acc[a];
      o.size = 64 * 1024;
      uint64_t t0 = ipx_now();
      IPX_ASSERT_ERR(ipx_segment_open_shm(&s, name, &o), IPX_ECORRUPT);
      IPX_ASSERT_LT(ipx_now() - t0, IPX_SEC);
    }
  IPX_ASSERT_ERR(ipx_segment_grow_shm(name, 4096), IPX_ECORRUPT);
  unlink(link);
}

static void buffers(void *arg) {
  (void)arg;
  unsigned char *img = good_image();
  unsigned char *buf = aligned_alloc(64, SEG_SIZE);
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_OPEN_ONLY;
  int n = 0;
  for (size_t off = 0; off < IPX_SEGMENT_HEADER_SIZE; off++) {
    if (off >= 256 && off < 320) continue;
    memcpy(buf, img, SEG_SIZE);
    buf[off] ^= 0x80;
    ipx_segment_t *s;
    int r = ipx_segment_open_buffer(&s, buf, SEG_SIZE, &o);
    enum expect e = flip_expect(off, 0x80);
    if (e == E_OK || e == E_OK_CHECK_CORRUPT) {
      IPX_ASSERT_OK(r);
      IPX_ASSERT_ERR(ipx_segment_check(s, NULL, NULL),
                     e == E_OK ? 0 : IPX_ECORRUPT);
      ipx_segment_close(s);
    } else {
      IPX_ASSERT_ERR(r, e == E_VERSION ? IPX_EVERSION : IPX_ECORRUPT);
    }
    n++;
  }
  ipx_test_log("%d flipped buffers", n);
  free(buf);
  free(img);
}

IPX_TEST(buffer_flipped_header_bytes) {
  IPX_ASSERT_CHILD_OK(ipx_test_fork(buffers, NULL));
}

/* ---- the heap inside ------------------------------------------------------ */

/* A segment whose heap holds live, free and cached blocks; *blk gets the
 * offsets of the headers of the first three blocks. */
static unsigned char *heap_image(uint64_t blk[3]) {
  ipx_segment_t *s;
  IPX_ASSERT_OK(ipx_segment_create_heap(&s, SEG_SIZE));
  unsigned char *b = ipx_segment_base(s);
  static const size_t sizes[] = {100, 2000, 50, 3000, 7};
  void *p[5];
  for (int i = 0; i < 5; i++) {
    IPX_ASSERT_OK(ipx_segment_allocate(s, sizes[i], &p[i]));
    memset(p[i], 0x33, sizes[i]);
  }
  IPX_ASSERT_OK(ipx_segment_deallocate(s, p[2])); /* cached */
  IPX_ASSERT_OK(ipx_segment_deallocate(s, p[3])); /* free, coalesced */
  for (int i = 0; i < 3; i++) blk[i] = (uint64_t)((unsigned char *)p[i] - b) - 16;
  unsigned char *img = malloc(SEG_SIZE);
  IPX_ASSERT(img);
  memcpy(img, b, SEG_SIZE);
  ipx_segment_close(s);
  return img;
}

/* After a damaged heap was opened: allocating and freeing either works or
 * says IPX_ECORRUPT, never a signal; check afterwards reports the damage. */
static void poke(const struct target *t) {
  ipx_segment_t *s;
  if (open_t(t, &s, IPX_OPEN_ONLY, IPX_READ_WRITE) != 0) return;
  void *p[8];
  int n = 0;
  for (int i = 0; i < 8; i++) {
    int r = ipx_segment_allocate(s, (size_t)(i * 700), &p[n]);
    if (r == 0) n++;
    else if (r != IPX_ECORRUPT && r != IPX_ENOMEM)
      IPX_FAIL("allocate on a damaged heap: %s", ipx_err_name(r));
  }
  for (int i = 0; i < n; i++) {
    int r = ipx_segment_deallocate(s, p[i]);
    if (r != 0 && r != IPX_ECORRUPT)
      IPX_FAIL("deallocate on a damaged heap: %s", ipx_err_name(r));
  }
  ipx_segment_check(s, NULL, NULL);
  ipx_segment_close(s);
}

static void heap_flips(void *arg) {
  const struct target *t = arg;
  uint64_t blk[3];
  unsigned char *img = heap_image(blk);
  put(t, img, SEG_SIZE);
  try_all(t, E_OK, "the good heap image");
  unsigned char *v = malloc(SEG_SIZE);
  const size_t ctl = IPX_SEGMENT_HEADER_SIZE;
  static const unsigned masks[] = {0x01, 0x80};
  int n = 0;
  /* The control block's fixed fields: refused at open. */
  for (size_t off = 0; off < 56; off++) {
    if (off >= 48 && off < 52) continue; /* flags: below */
    for (int m = 0; m < 2; m++) {
      memcpy(v, img, SEG_SIZE);
      v[ctl + off] ^= (unsigned char)masks[m];
      put(t, v, SEG_SIZE);
      char what[80];
      snprintf(what, sizeof what, "heap control byte %zu ^ 0x%02x", off, masks[m]);
      enum expect e = off >= 8 && off < 12 ? E_VERSION : E_CORRUPT;
      /* One pending undo entry is a valid state: the open succeeds and
       * check says an operation awaits recovery. */
      if (off == 52 && masks[m] == 0x01) e = E_OK_CHECK_CORRUPT;
      try_all(t, e, what);
      n++;
    }
  }
  /* Where the wilderness starts and the size of the block before it:
   * bounds and alignment are refused at open, a plausible wrong value is
   * found by check's walk. */
  for (size_t off = 64; off < 80; off++) {
    for (int m = 0; m < 2; m++) {
      memcpy(v, img, SEG_SIZE);
      v[ctl + off] ^= (unsigned char)masks[m];
      put(t, v, SEG_SIZE);
      char what[80];
      snprintf(what, sizeof what, "heap wilderness byte %zu ^ 0x%02x", off,
               masks[m]);
      try_all(t, E_CORRUPT_OR_CHECK, what);
      n++;
    }
  }
  /* Marked corrupt: refused at open. */
  memcpy(v, img, SEG_SIZE);
  v[ctl + 48] ^= 1;
  put(t, v, SEG_SIZE);
  try_all(t, E_CORRUPT, "heap marked corrupt");
  /* The free structures and the statistics: check reports them. */
  static const size_t live_fields[] = {
      48,   /* flags: a recount pending (bit 0x02 below) */
      80,   /* free bytes */
      88,   /* live blocks */
      96,   /* cached blocks */
      2216, /* count of the first cache */
      2744, /* first-level bitmap */
  };
  for (size_t i = 0; i < sizeof live_fields / sizeof live_fields[0]; i++) {
    memcpy(v, img, SEG_SIZE);
    v[ctl + live_fields[i]] ^= live_fields[i] == 48 ? 0x02 : 0x01;
    put(t, v, SEG_SIZE);
    char what[80];
    snprintf(what, sizeof what, "heap control byte %zu", live_fields[i]);
    try_all(t, E_OK_CHECK_CORRUPT, what);
    put(t, v, SEG_SIZE);
    poke(t);
    n++;
  }
  /* Every non-empty list head and cache head, pointed elsewhere. */
  for (size_t off = 1688; off < 23552; off += 8) {
    if (off >= 2216 && off < 3072) continue; /* cache counts, bitmaps */
    uint64_t w;
    memcpy(&w, img + ctl + off, 8);
    if (!w) continue;
    for (int m = 0; m < 2; m++) {
      memcpy(v, img, SEG_SIZE);
      v[ctl + off + (m ? 1 : 0)] ^= (unsigned char)(m ? 0x01 : 0x10);
      put(t, v, SEG_SIZE);
      char what[80];
      snprintf(what, sizeof what, "heap list head at control byte %zu", off);
      try_all(t, E_OK_CHECK_CORRUPT, what);
      put(t, v, SEG_SIZE);
      poke(t);
      n++;
    }
  }
  /* Block headers: every byte of the first three. */
  for (int k = 0; k < 3; k++)
    for (size_t off = 0; off < 16; off++)
      for (int m = 0; m < 2; m++) {
        memcpy(v, img, SEG_SIZE);
        v[blk[k] + off] ^= (unsigned char)masks[m];
        put(t, v, SEG_SIZE);
        char what[80];
        snprintf(what, sizeof what, "block %d header byte %zu ^ 0x%02x", k, off,
                 masks[m]);
        try_all(t, E_OK_CHECK_CORRUPT, what);
        put(t, v, SEG_SIZE);
        poke(t);
        n++;
      }
  ipx_test_log("%d damaged heaps", n);
  free(v);
  free(img);
}

IPX_TEST(shm_damaged_heap) { run(0, heap_flips); }
IPX_TEST(file_damaged_heap) { run(1, heap_flips); }
