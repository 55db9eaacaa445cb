/* fuzz_corpus: every input kept in fuzz/corpus/ (the seeds, what the
 * fuzzers found that added coverage, and the reproducers of the crashes
 * they found) replayed through the fuzz targets' own code, built here with
 * the suite's compiler and sanitizers instead of libFuzzer: a fixed crash
 * that comes back fails `make test`, not only a fuzzing session. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ipx_test.h"

/* The targets' entry points, renamed from LLVMFuzzerTestOneInput by the
 * build (tests/CMakeLists.txt). */
int fuzz_segment_one(const uint8_t *data, size_t size);
int fuzz_heap_one(const uint8_t *data, size_t size);
int fuzz_sync_one(const uint8_t *data, size_t size);

/* Whether a corpus file is one libFuzzer named (its SHA-1), rather than a
 * reproducer kept under a name that says what it caught. */
static int hashed_name(const char *name) {
  size_t n = strlen(name);
  return n == 40 && strspn(name, "0123456789abcdef") == n;
}

/* Each file of `dir` through `one`; the number of files.  At a test scale
 * below 1 (valgrind, TSan) only every k-th of libFuzzer's files, in
 * directory order, but every named reproducer. */
static int replay_dir(const char *dir,
                      int (*one)(const uint8_t *, size_t)) {
  DIR *d = opendir(dir);
  if (!d) IPX_FAIL("cannot open the corpus %s", dir);
  long stride = 1000 / ipx_test_scale(1000, 1), seen = 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (hashed_name(e->d_name) && seen++ % stride != 0) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) IPX_FAIL("cannot open %s", path);
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
      fclose(f);
      continue;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || fread(buf, 1, len, f) != len) IPX_FAIL("cannot read %s", path);
    fclose(f);
    one(buf, len);
    free(buf);
    n++;
  }
  closedir(d);
  return n;
}

/* Arbitrary bytes opened as a segment, then every layer's calls. */
IPX_TEST(segment_corpus_replays_cleanly) {
  int n = replay_dir(IPX_FUZZ_CORPUS_DIR "/segment", fuzz_segment_one);
  IPX_ASSERT_GT(n, 0);
  ipx_test_log("%d inputs", n);
}

/* Operation sequences on the allocator against its shadow (the target
 * aborts on any breach). */
IPX_TEST(heap_corpus_replays_cleanly) {
  int n = replay_dir(IPX_FUZZ_CORPUS_DIR "/heap", fuzz_heap_one);
  IPX_ASSERT_GT(n, 0);
  ipx_test_log("%d inputs", n);
}

/* Synchronisation objects with damaged bytes, every non-blocking call of
 * their kind (the target aborts on a hang; a crash kills the case). */
IPX_TEST(sync_corpus_replays_cleanly) {
#if defined(__SANITIZE_THREAD__)
  /* TSan models each lock's state from the annotations: bytes damaged into
   * a held state, and one buffer reused for every kind, are (rightly, from
   * its point of view) a double lock or an unlock of what was never
   * locked. */
  IPX_SKIP("TSan reports the damaged lock states themselves");
#endif
  int n = replay_dir(IPX_FUZZ_CORPUS_DIR "/sync", fuzz_sync_one);
  IPX_ASSERT_GT(n, 0);
  ipx_test_log("%d inputs", n);
}
