/* mount_ref: a mount known by the directory it covers, not by its path. Another user who owns
 * a directory on the path can rename it away and put anything at the old path; the covered
 * directory itself cannot be renamed or removed while it is mounted on, so its parent and its
 * name there stay what they were at mount time, and a lookup of that name in that parent
 * crosses into the topmost mount on it, wherever the two now are. The mount made there is
 * recorded by its id and device, which every later use checks. */
#pragma once
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

struct mount_ref {
    int covered_fd;          /* O_PATH descriptor of the covered directory; -1 when closed */
    int parent_fd;           /* O_PATH descriptor of its parent, -1 until mount_ref_note */
    char name[NAME_MAX + 1]; /* the covered directory's name in its parent */
    uint64_t mnt_id;         /* the mount's id, 0 until mount_ref_note */
    unsigned id_kind;        /* which id mnt_id is (statx's STATX_MNT_ID or STATX_MNT_ID_UNIQUE) */
    dev_t dev;               /* the mount's device */
};

/* Opens the directory at path (absolute and resolved) and checks that path leads to it once
 * opened: -ENOTDIR (also a symlink), -ESTALE (it moved meanwhile), -errno. ret is untouched on
 * failure. */
int mount_ref_open(struct mount_ref *ret, const char *path);

/* The path to mount on to cover exactly the opened directory ("/proc/self/fd/N"); size >= 32. */
const char *mount_ref_covered_path(const struct mount_ref *ref, char *buf, size_t size);

/* Records the mount now on top of the covered directory as the one to use, and the way to it;
 * right after mounting (nobody but root can mount on a FUSE root that gives no one write
 * access). Sends nothing to the filesystem, so it works before the session answers INIT.
 * Returns 0, -ENOENT (nothing is mounted there), -errno. */
int mount_ref_note(struct mount_ref *ref);

/* Opens (O_PATH) the root of the recorded mount if it is still the topmost mount on the covered
 * directory. Async-signal-safe (the materializer's caller process uses it). Returns the
 * descriptor, -ESTALE (another mount, or none, is there now), -errno. */
int mount_ref_open_root(const struct mount_ref *ref);

/* Closes the descriptors; the struct may be closed twice. */
void mount_ref_close(struct mount_ref *ref);
