/* shm: named shared memory objects. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipx/ipx.h"
#include "ipx_test.h"

static void shm_path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "/dev/shm/ipx.%s", name);
}

static struct stat stat_of(const char *name) {
  char path[512];
  struct stat st;
  shm_path(path, sizeof path, name);
  if (stat(path, &st) != 0) IPX_FAIL("stat %s: %s", path, strerror(errno));
  return st;
}

IPX_TEST(create_open_close_remove) {
  char name[128];
  ipx_test_name(name, sizeof name, "obj");
  ipx_shm_t *a, *b;
  IPX_ASSERT_OK(ipx_shm_open(&a, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(ipx_shm_created(a), 1);
  IPX_ASSERT_STREQ(ipx_shm_name(a), name);
  IPX_ASSERT_EQ(ipx_shm_access(a), IPX_READ_WRITE);
  IPX_ASSERT_GE(ipx_shm_fd(a), 0);
  uint64_t size = 99;
  IPX_ASSERT_OK(ipx_shm_size(a, &size));
  IPX_ASSERT_EQ(size, 0);
  /* The documented OS-level name. */
  struct stat st = stat_of(name);
  IPX_ASSERT(S_ISREG(st.st_mode));

  IPX_ASSERT_OK(ipx_shm_open(&b, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_EQ(ipx_shm_created(b), 0);
  IPX_ASSERT_EQ(ipx_shm_access(b), IPX_READ_ONLY);
  IPX_ASSERT_OK(ipx_shm_resize(a, 12345, IPX_SHM_SPARSE));
  IPX_ASSERT_OK(ipx_shm_size(b, &size));
  IPX_ASSERT_EQ(size, 12345);
  /* A read-only handle's descriptor cannot write either. */
  IPX_ASSERT_EQ(write(ipx_shm_fd(b), "x", 1), -1);
  IPX_ASSERT_EQ(errno, EBADF);
  IPX_ASSERT_OK(ipx_shm_close(b));

  IPX_ASSERT_OK(ipx_shm_open(&b, name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(ipx_shm_created(b), 0);
  IPX_ASSERT_OK(ipx_shm_close(b));

  IPX_ASSERT_OK(ipx_shm_remove(name));
  IPX_ASSERT_ERR(ipx_shm_open(&b, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0),
                 IPX_ENOTFOUND);
  /* The handle outlives the name. */
  IPX_ASSERT_OK(ipx_shm_size(a, &size));
  IPX_ASSERT_EQ(size, 12345);
  IPX_ASSERT_OK(ipx_shm_close(a));
  IPX_ASSERT_OK(ipx_shm_close(NULL));
}

IPX_TEST(open_or_create_creates_once) {
  char name[128];
  ipx_test_name(name, sizeof name, "ooc");
  ipx_shm_t *a, *b;
  IPX_ASSERT_OK(ipx_shm_open(&a, name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 0));
  IPX_ASSERT_EQ(ipx_shm_created(a), 1);
  IPX_ASSERT_OK(ipx_shm_open(&b, name, IPX_OPEN_OR_CREATE, IPX_READ_ONLY, 0));
  IPX_ASSERT_EQ(ipx_shm_created(b), 0);
  struct stat sa, sb;
  IPX_ASSERT_OK(fstat(ipx_shm_fd(a), &sa));
  IPX_ASSERT_OK(fstat(ipx_shm_fd(b), &sb));
  IPX_ASSERT_EQ(sa.st_ino, sb.st_ino);
  ipx_shm_close(a);
  ipx_shm_close(b);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

IPX_TEST(created_read_only_handle_is_read_only) {
  char name[128];
  ipx_test_name(name, sizeof name, "ro");
  ipx_shm_t *a;
  IPX_ASSERT_OK(ipx_shm_open(&a, name, IPX_CREATE_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_EQ(ipx_shm_created(a), 1);
  IPX_ASSERT_ERR(ipx_shm_resize(a, 10, IPX_SHM_SPARSE), IPX_EREADONLY);
  IPX_ASSERT_EQ(write(ipx_shm_fd(a), "x", 1), -1);
  ipx_shm_close(a);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

IPX_TEST(longest_name_works) {
  char name[IPX_NAME_MAX + 2];
  ipx_test_name(name, sizeof name, "");
  size_t n = strlen(name);
  memset(name + n, 'L', IPX_NAME_MAX - n);
  name[IPX_NAME_MAX] = 0;
  ipx_shm_t *a;
  IPX_ASSERT_OK(ipx_shm_open(&a, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  ipx_shm_close(a);
  IPX_ASSERT_OK(ipx_shm_remove(name));
  name[IPX_NAME_MAX] = 'L';
  name[IPX_NAME_MAX + 1] = 0;
  IPX_ASSERT_ERR(ipx_shm_open(&a, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0),
                 IPX_EBADNAME);
}

IPX_TEST(bad_input) {
  char name[128], longname[IPX_NAME_MAX + 2];
  ipx_test_name(name, sizeof name, "bad");
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  ipx_shm_t *s = (ipx_shm_t *)&name; /* poisoned: must become NULL */

  /* open */
  IPX_ASSERT_ERR(ipx_shm_open(NULL, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_shm_open(&s, NULL, IPX_CREATE_ONLY, IPX_READ_WRITE, 0),
                 IPX_EINVAL);
  IPX_ASSERT(s == NULL);
  const char *bad_names[] = {"", ".", "..", "a/b", "/x", "sp ace", "t\xc3\xa9",
                             longname};
  for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
    IPX_ASSERT_ERR(ipx_shm_open(&s, bad_names[i], IPX_OPEN_OR_CREATE,
                                IPX_READ_WRITE, 0),
                   IPX_EBADNAME);
    IPX_ASSERT_ERR(ipx_shm_remove(bad_names[i]), IPX_EBADNAME);
  }
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, (ipx_open_mode_t)0, IPX_READ_WRITE, 0),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, (ipx_open_mode_t)9, IPX_READ_WRITE, 0),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_COPY_ON_WRITE, 0),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, IPX_CREATE_ONLY, (ipx_access_t)0, 0),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 01600),
                 IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0),
                 IPX_ENOTFOUND);
  IPX_ASSERT(s == NULL);
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  ipx_shm_t *t;
  IPX_ASSERT_ERR(ipx_shm_open(&t, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0),
                 IPX_EEXIST);
  IPX_ASSERT(t == NULL);

  /* resize */
  IPX_ASSERT_ERR(ipx_shm_resize(NULL, 10, 0), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_shm_resize(s, 10, 2), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_shm_resize(s, UINT64_MAX, IPX_SHM_SPARSE), IPX_ETOOBIG);
  IPX_ASSERT_ERR(ipx_shm_resize(s, (uint64_t)INT64_MAX + 1, IPX_SHM_RESERVE),
                 IPX_ETOOBIG);
  IPX_ASSERT_OK(ipx_shm_open(&t, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0));
  IPX_ASSERT_ERR(ipx_shm_resize(t, 10, IPX_SHM_SPARSE), IPX_EREADONLY);
  IPX_ASSERT_ERR(ipx_shm_resize(t, 10, IPX_SHM_RESERVE), IPX_EREADONLY);

  /* size and accessors */
  uint64_t size;
  IPX_ASSERT_ERR(ipx_shm_size(NULL, &size), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx_shm_size(s, NULL), IPX_EINVAL);
  IPX_ASSERT_OK(ipx_shm_size(s, &size));
  IPX_ASSERT_EQ(size, 0); /* nothing above changed it */
  IPX_ASSERT(ipx_shm_name(NULL) == NULL);
  IPX_ASSERT_EQ(ipx_shm_access(NULL), 0);
  IPX_ASSERT_EQ(ipx_shm_created(NULL), 0);
  IPX_ASSERT_ERR(ipx_shm_fd(NULL), IPX_EINVAL);

  /* remove */
  IPX_ASSERT_ERR(ipx_shm_remove(NULL), IPX_EINVAL);
  ipx_shm_close(t);
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
  IPX_ASSERT_ERR(ipx_shm_remove(name), IPX_ENOTFOUND);
}

IPX_TEST(names_that_are_not_objects) {
  char name[128], path[512], target[512];
  ipx_shm_t *s;
  ipx_test_name(name, sizeof name, "dir");
  shm_path(path, sizeof path, name);
  IPX_ASSERT_OK(mkdir(path, 0700));
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, IPX_OPEN_ONLY, IPX_READ_ONLY, 0),
                 IPX_EWRONGKIND);
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 0),
                 IPX_EWRONGKIND);
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0),
                 IPX_EEXIST);
  IPX_ASSERT_ERR(ipx_shm_remove(name), IPX_EWRONGKIND);
  IPX_ASSERT_OK(rmdir(path));

  /* A symlink planted under an ipx name is not followed. */
  ipx_test_name(name, sizeof name, "link");
  shm_path(path, sizeof path, name);
  snprintf(target, sizeof target, "%s/target", ipx_test_tmpdir());
  int fd = open(target, O_CREAT | O_RDWR, 0600);
  IPX_ASSERT_GE(fd, 0);
  close(fd);
  IPX_ASSERT_OK(symlink(target, path));
  IPX_ASSERT_ERR(ipx_shm_open(&s, name, IPX_OPEN_ONLY, IPX_READ_WRITE, 0),
                 IPX_EWRONGKIND);
  IPX_ASSERT_OK(ipx_shm_remove(name)); /* removes the link itself */
}

static mode_t created_mode(const char *tag, mode_t mask, unsigned perm) {
  char name[128];
  ipx_test_name(name, sizeof name, tag);
  mode_t old = umask(mask);
  ipx_shm_t *s;
  int r = ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, perm);
  umask(old);
  IPX_ASSERT_OK(r);
  struct stat st;
  IPX_ASSERT_OK(fstat(ipx_shm_fd(s), &st));
  struct stat byname = stat_of(name);
  IPX_ASSERT_EQ(st.st_ino, byname.st_ino);
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
  return st.st_mode & 07777;
}

IPX_TEST(permissions_are_exact_whatever_the_umask) {
  IPX_ASSERT_EQ(created_mode("p1", 0777, 0), 0600);
  IPX_ASSERT_EQ(created_mode("p2", 0777, 0640), 0640);
  IPX_ASSERT_EQ(created_mode("p3", 0022, 0666), 0666);
  IPX_ASSERT_EQ(created_mode("p4", 0, 0600), 0600);
  IPX_ASSERT_EQ(created_mode("p5", 0, 0), 0600);
  IPX_ASSERT_EQ(created_mode("p6", 0077, 0604), 0604);
  IPX_ASSERT_EQ(created_mode("p7", 0, 0400), 0400);
}

IPX_TEST(sparse_and_reserved_resize) {
  char name[128];
  ipx_test_name(name, sizeof name, "sz");
  ipx_shm_t *s;
  struct stat st;
  uint64_t size;
  const uint64_t mib = 1 << 20;
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx_shm_resize(s, 8 * mib, IPX_SHM_SPARSE));
  IPX_ASSERT_OK(fstat(ipx_shm_fd(s), &st));
  IPX_ASSERT_EQ(st.st_size, 8 * mib);
  IPX_ASSERT_LT((uint64_t)st.st_blocks * 512, mib); /* nothing allocated */
  IPX_ASSERT_OK(ipx_shm_resize(s, 4 * mib, IPX_SHM_RESERVE)); /* shrink */
  IPX_ASSERT_OK(fstat(ipx_shm_fd(s), &st));
  IPX_ASSERT_EQ(st.st_size, 4 * mib);
  IPX_ASSERT_GE((uint64_t)st.st_blocks * 512, 4 * mib);
  IPX_ASSERT_OK(ipx_shm_resize(s, 6 * mib, IPX_SHM_RESERVE)); /* grow */
  IPX_ASSERT_OK(fstat(ipx_shm_fd(s), &st));
  IPX_ASSERT_EQ(st.st_size, 6 * mib);
  IPX_ASSERT_GE((uint64_t)st.st_blocks * 512, 6 * mib);
  IPX_ASSERT_OK(ipx_shm_resize(s, 0, IPX_SHM_RESERVE));
  IPX_ASSERT_OK(ipx_shm_size(s, &size));
  IPX_ASSERT_EQ(size, 0);
  /* Huge but representable sparse sizes are fine on tmpfs. */
  IPX_ASSERT_OK(ipx_shm_resize(s, UINT64_C(1) << 40, IPX_SHM_SPARSE));
  IPX_ASSERT_OK(ipx_shm_size(s, &size));
  IPX_ASSERT_EQ(size, UINT64_C(1) << 40);
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

/* In a private mount namespace with a 1 MiB tmpfs over /dev/shm: a
 * reserved resize beyond it is -ENOSPC and changes nothing. */
static void enospc_child(void *arg) {
  (void)arg;
  if (unshare(CLONE_NEWNS) != 0)
    IPX_SKIP("unshare(CLONE_NEWNS): %s", strerror(errno));
  if (mount("none", "/", "none", MS_PRIVATE | MS_REC, NULL) != 0)
    IPX_SKIP("making / private: %s", strerror(errno));
  if (mount("ipxtest", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
            "size=1m,mode=1777") != 0)
    IPX_SKIP("mount tmpfs on /dev/shm: %s", strerror(errno));
  char name[128];
  ipx_test_name(name, sizeof name, "full");
  ipx_shm_t *s;
  uint64_t size;
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_ERR(ipx_shm_resize(s, 4 << 20, IPX_SHM_RESERVE), -ENOSPC);
  IPX_ASSERT_OK(ipx_shm_size(s, &size));
  IPX_ASSERT_EQ(size, 0);
  IPX_ASSERT_OK(ipx_shm_resize(s, 256 << 10, IPX_SHM_RESERVE));
  IPX_ASSERT_ERR(ipx_shm_resize(s, 2 << 20, IPX_SHM_RESERVE), -ENOSPC);
  IPX_ASSERT_OK(ipx_shm_size(s, &size));
  IPX_ASSERT_EQ(size, 256 << 10);
  /* Sparse growth succeeds: the shortage would show as SIGBUS later. */
  IPX_ASSERT_OK(ipx_shm_resize(s, 4 << 20, IPX_SHM_SPARSE));
  IPX_ASSERT_OK(ipx_shm_size(s, &size));
  IPX_ASSERT_EQ(size, 4 << 20);
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
  /* A creation on the full file system fails cleanly too. */
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx_shm_resize(s, 1 << 20, IPX_SHM_RESERVE));
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}

IPX_TEST(reserve_on_full_dev_shm_is_enospc) {
  if (geteuid() != 0)
    IPX_SKIP("needs root to mount a small tmpfs over /dev/shm in a private "
             "mount namespace");
  int st = ipx_test_wait(ipx_test_fork(enospc_child, NULL), 30000);
  if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 77)
    IPX_SKIP("no private mount namespace here (see the child's message)");
  IPX_ASSERT(st != -1 && WIFEXITED(st));
  IPX_ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* Racing open-or-create: many processes released at once by a gate, under a
 * hostile umask; when run as root, the racers alternate between two other
 * uids, so a window in which the object is visible with provisional
 * permissions would show as -EACCES for the uid that did not create it. */
struct race {
  ipx_test_gate_t gate;
  const char *name;
  int drop_uid;
  struct race_result {
    int rc;
    int created;
    ino_t ino;
    mode_t mode;
  } res[64];
};

static struct race *g_race;

static void racer_slot(void *arg) {
  int slot = (int)(intptr_t)arg;
  struct race *rc = g_race;
  struct race_result *out = &rc->res[slot];
  if (rc->drop_uid) {
    uid_t uid = 60000 + (uid_t)(slot % 2);
    if (setresgid(60000, 60000, 60000) != 0 || setresuid(uid, uid, uid) != 0)
      IPX_FAIL("dropping privileges: %s", strerror(errno));
  }
  ipx_test_gate_wait(&rc->gate);
  ipx_shm_t *s;
  out->rc = ipx_shm_open(&s, rc->name, IPX_OPEN_OR_CREATE, IPX_READ_WRITE, 0666);
  if (out->rc == 0) {
    struct stat st;
    IPX_ASSERT_OK(fstat(ipx_shm_fd(s), &st));
    out->created = ipx_shm_created(s);
    out->ino = st.st_ino;
    out->mode = st.st_mode & 07777;
    ipx_shm_close(s);
  }
}

IPX_TEST(racing_open_or_create_agree) {
  struct race *rc = ipx_test_shared_alloc(sizeof *rc);
  int nproc = (int)ipx_test_scale(24, 8);
  int rounds = (int)ipx_test_scale(15, 3);
  if (nproc > 64) nproc = 64;
  rc->drop_uid = geteuid() == 0;
  if (!rc->drop_uid) ipx_test_log("not root: racers all run as one user");
  g_race = rc;
  mode_t old = umask(0777);
  for (int round = 0; round < rounds; round++) {
    char name[128], tag[32];
    snprintf(tag, sizeof tag, "race%d", round);
    rc->name = ipx_test_name(name, sizeof name, tag);
    memset(rc->res, 0, sizeof rc->res);
    ipx_test_gate_init(&rc->gate);
    pid_t pids[64];
    for (int i = 0; i < nproc; i++) {
      pids[i] = ipx_test_fork(racer_slot, (void *)(intptr_t)i);
    }
    ipx_test_gate_open(&rc->gate);
    for (int i = 0; i < nproc; i++) IPX_ASSERT_CHILD_OK(pids[i]);
    int creators = 0;
    for (int i = 0; i < nproc; i++) {
      IPX_ASSERT_OK(rc->res[i].rc);
      creators += rc->res[i].created;
      IPX_ASSERT_EQ(rc->res[i].ino, rc->res[0].ino);
      IPX_ASSERT_EQ(rc->res[i].mode, 0666);
    }
    IPX_ASSERT_EQ(creators, 1);
    IPX_ASSERT_OK(ipx_shm_remove(name));
  }
  umask(old);
  ipx_test_shared_free(rc, sizeof *rc);
}

static void use_inherited(void *arg) {
  ipx_shm_t *s = arg;
  uint64_t size;
  IPX_ASSERT_OK(ipx_shm_size(s, &size));
  IPX_ASSERT_EQ(size, 4096);
  IPX_ASSERT_OK(ipx_shm_resize(s, 8192, IPX_SHM_SPARSE));
  IPX_ASSERT_OK(ipx_shm_close(s));
}

IPX_TEST(forked_child_uses_inherited_handle) {
  char name[128];
  ipx_test_name(name, sizeof name, "fork");
  ipx_shm_t *s;
  uint64_t size;
  IPX_ASSERT_OK(ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0));
  IPX_ASSERT_OK(ipx_shm_resize(s, 4096, IPX_SHM_SPARSE));
  IPX_ASSERT_CHILD_OK(ipx_test_fork(use_inherited, s));
  IPX_ASSERT_OK(ipx_shm_size(s, &size)); /* the child's close is its own */
  IPX_ASSERT_EQ(size, 8192);
  IPX_ASSERT_EQ(fcntl(ipx_shm_fd(s), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ipx_shm_close(s);
  IPX_ASSERT_OK(ipx_shm_remove(name));
}
