/* test_mount_ref: the checks made before mounting, and the unmount of a recorded mount that
 * moved away from the covered directory. The mounts (tmpfs) need root; without it those parts
 * are skipped. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mount_ref.h"
#include "unit.h"

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

static char base[256];

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", base, name);
}

static void test_close_null_and_twice(void)
{
    struct mount_ref ref;
    char dir[PATH_MAX];

    mount_ref_close(NULL);
    path_of(dir, sizeof(dir), "twice");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK_INT_EQ(mount_ref_open(&ref, dir), 0);
    CHECK(ref.parent_fd >= 0);
    CHECK_STR_EQ(ref.name, "twice");
    mount_ref_close(&ref);
    mount_ref_close(&ref);
    CHECK_INT_EQ(ref.covered_fd, -1);
}

static void test_refused_before_mounting(void)
{
    struct mount_ref ref = {.covered_fd = -1, .parent_fd = -1};
    char dir[PATH_MAX], link[PATH_MAX];

    path_of(dir, sizeof(dir), "mnt (deleted)");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK_INT_EQ(mount_ref_open(&ref, dir), -EINVAL);
    CHECK_INT_EQ(ref.covered_fd, -1); /* untouched */
    CHECK_INT_EQ(mount_ref_open(&ref, "/"), -EINVAL);
    path_of(link, sizeof(link), "link");
    path_of(dir, sizeof(dir), "target");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(symlink(dir, link) == 0);
    CHECK_INT_EQ(mount_ref_open(&ref, link), -ENOTDIR);
}

/* The mount is moved off the covered directory (as a rename from another mount namespace
 * moves it): it is no longer reached through the directory, and the unmount still finds it. */
static void test_unmount_of_a_moved_mount(void)
{
    struct mount_ref ref;
    char dir[PATH_MAX], away[PATH_MAX], target[32];

    path_of(dir, sizeof(dir), "mnt");
    path_of(away, sizeof(away), "away");
    CHECK(mkdir(dir, 0755) == 0 && mkdir(away, 0755) == 0);
    CHECK_INT_EQ(mount_ref_open(&ref, dir), 0);
    CHECK_INT_EQ(mount_ref_note(&ref), -ENOENT); /* nothing mounted yet */
    CHECK(mount("mount-ref-test", mount_ref_covered_path(&ref, target, sizeof(target)), "tmpfs", 0,
                "size=64k") == 0);
    CHECK_INT_EQ(mount_ref_note(&ref), 0);
    int root = mount_ref_open_root(&ref);
    CHECK(root >= 0);
    close(root);
    CHECK(mount(dir, away, "", MS_MOVE, "") == 0); /* type and data unused; "" for valgrind */
    CHECK_INT_EQ(mount_ref_open_root(&ref), -ESTALE);
    CHECK_INT_EQ(mount_ref_unmount(&ref), 0);
    struct stat a, b;
    CHECK(stat(away, &a) == 0 && stat(base, &b) == 0);
    CHECK(a.st_dev == b.st_dev); /* nothing mounted on away any more */
    CHECK_INT_EQ(mount_ref_unmount(&ref), -ENOENT);
    mount_ref_close(&ref);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(base, sizeof(base), "%s/test_mount_ref.XXXXXX", tmp ? tmp : "/tmp");
    CHECK(mkdtemp(base) != NULL);
    RUN(test_close_null_and_twice);
    RUN(test_refused_before_mounting);
    /* Before Linux 6.8 mount_ref accepts only FUSE mounts of this user (mount ids are reused
     * there), and the test mounts a tmpfs. */
    struct statx st;
    bool unique = statx(AT_FDCWD, base, 0, STATX_MNT_ID_UNIQUE, &st) == 0 &&
                  (st.stx_mask & STATX_MNT_ID_UNIQUE);
    if (geteuid() == 0 && unique)
        RUN(test_unmount_of_a_moved_mount);
    else
        fprintf(stderr, "-- test_unmount_of_a_moved_mount: skipped (needs root and Linux 6.8)\n");
    char cmd[sizeof(base) + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    CHECK(system(cmd) == 0);
    return 0;
}
