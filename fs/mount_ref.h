/* mount_ref: a mount known by the directory it covers, not by its path. Another user who owns
 * a directory on the path can rename it away and put anything at the old path. In the mount
 * namespace where the mount is, the covered directory itself cannot be renamed or removed while
 * it is mounted on, so its parent and its name there stay what they were at mount time, and a
 * lookup of that name in that parent crosses into the topmost mount on it. That holds in one
 * namespace only: a user who made her own user and mount namespace before the mount sees no
 * mount there and can rename the covered directory (the mount moves with it) or remove it (the
 * mount is detached everywhere). Every use therefore checks that it reached the mount recorded
 * at mount time, by its id and device, and answers -ESTALE when it did not.
 *
 * Needs Linux 5.8 or later (statx's STATX_MNT_ID and STATX_ATTR_MOUNT_ROOT); mount_ref_open
 * refuses older kernels before anything is mounted. Before 6.8 the id (STATX_MNT_ID) can be
 * reused once a mount is gone, and the recorded mount is also looked up in
 * /proc/self/mountinfo: a FUSE mount of this user with that id. */
#pragma once
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

struct mount_ref {
    int covered_fd;          /* O_PATH descriptor of the covered directory; -1 when closed */
    int parent_fd;           /* O_PATH descriptor of its parent; -1 when closed */
    char name[NAME_MAX + 1]; /* the covered directory's name in its parent */
    uint64_t mnt_id;         /* the mount's id, 0 until mount_ref_note */
    unsigned id_kind;        /* which id mnt_id is (statx's STATX_MNT_ID or STATX_MNT_ID_UNIQUE) */
    uint64_t short_id;       /* its STATX_MNT_ID, the id /proc/self/mountinfo shows */
    dev_t dev;               /* the mount's device */
};

/* Opens the directory at path (absolute and resolved) and its parent, and checks that path
 * leads to it once opened and that its name in the parent leads back to it: -ENOTDIR (also a
 * symlink), -ESTALE (it moved meanwhile), -EINVAL ("/", or a name ending in " (deleted)", which
 * /proc cannot tell from a removed directory), -ENAMETOOLONG, -ENOSYS (a kernel without the
 * statx mount ids, before 5.8), -errno. ret is untouched on failure. */
int mount_ref_open(struct mount_ref *ret, const char *path);

/* The path to mount on to cover exactly the opened directory ("/proc/self/fd/N"), meaningful
 * only in this process; size >= 32. */
const char *mount_ref_covered_path(const struct mount_ref *ref, char *buf, size_t size);

/* Records the mount now on top of the covered directory as the one to use; right after
 * mounting (nobody but root can mount on a FUSE root that gives no one write access). Sends
 * nothing to the filesystem, so it works before the session answers INIT. Returns 0, -ENOENT
 * (nothing is mounted there), -errno. */
int mount_ref_note(struct mount_ref *ref);

/* Opens (O_PATH) the root of the recorded mount if it is still the topmost mount on the covered
 * directory. Async-signal-safe (the materializer's caller process uses it). Returns the
 * descriptor, -ESTALE (another mount, or none, is there now), -errno. */
int mount_ref_open_root(const struct mount_ref *ref);

/* Detaches the recorded mount, lazily (MNT_DETACH), wherever it is now in this namespace: on
 * the covered directory, or where a rename in another namespace moved it (found through
 * /proc/self/mountinfo and checked once opened). Through umount2 on /proc/self/fd/N of its
 * root; without the capability to, through fusermount3 -u -z on the path the root has now,
 * which only unmounts a FUSE mount of the same user. Returns 0, -ENOENT (not mounted any more),
 * -errno. */
int mount_ref_unmount(const struct mount_ref *ref);

/* Closes the descriptors; ref may be NULL and may be closed twice. */
void mount_ref_close(struct mount_ref *ref);
