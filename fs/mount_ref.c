/* mount_ref: see mount_ref.h. */
#include "mount_ref.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Linux 6.8's 64-bit mount id, never reused; older kernels answer STATX_MNT_ID instead. */
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

/* The ids asked for: the unique one where the kernel has it, else the plain one. Nothing of
 * the basic stats: a FUSE inode then needs no GETATTR, which the session could not answer
 * before INIT (or after its loop ended). */
#define ID_MASK (STATX_MNT_ID | STATX_MNT_ID_UNIQUE)

/* Writes "/proc/self/fd/<fd>" into buf (>= 32 bytes); async-signal-safe, unlike snprintf. */
static const char *fd_path(int fd, char *buf)
{
    static const char prefix[] = "/proc/self/fd/";
    char digits[12];
    size_t n = 0;
    unsigned v = (unsigned)fd;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof(digits));
    memcpy(buf, prefix, sizeof(prefix) - 1);
    for (size_t i = 0; i < n; i++)
        buf[sizeof(prefix) - 1 + i] = digits[n - 1 - i];
    buf[sizeof(prefix) - 1 + n] = '\0';
    return buf;
}

static unsigned id_kind_of(const struct statx *st)
{
    if (st->stx_mask & STATX_MNT_ID_UNIQUE)
        return STATX_MNT_ID_UNIQUE;
    return st->stx_mask & STATX_MNT_ID ? STATX_MNT_ID : 0;
}

int mount_ref_open(struct mount_ref *ret, const char *path)
{
    char link[32], now[PATH_MAX];
    int fd, r;

    /* O_DIRECTORY with O_NOFOLLOW: a symlink in the last component is ENOTDIR, not followed. */
    fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* The path was resolved before; if a directory on it was swapped since, the mount would
     * cover another directory than the one asked for. */
    ssize_t n = readlink(fd_path(fd, link), now, sizeof(now) - 1);
    if (n < 0) {
        r = -errno;
        goto fail;
    }
    now[n] = '\0';
    if (strcmp(now, path) != 0) {
        r = -ESTALE;
        goto fail;
    }
    ret->covered_fd = fd;
    ret->parent_fd = -1;
    ret->name[0] = '\0';
    ret->mnt_id = 0;
    ret->id_kind = 0;
    ret->dev = 0;
    return 0;

fail:
    close(fd);
    return r;
}

const char *mount_ref_covered_path(const struct mount_ref *ref, char *buf, size_t size)
{
    if (size < 32)
        return NULL;
    return fd_path(ref->covered_fd, buf);
}

/* Sets ref's parent_fd and name from the covered directory: its path now (a name on it
 * cannot change while it is mounted on) and "..". */
static int find_parent(struct mount_ref *ref)
{
    char link[32], now[PATH_MAX];

    ssize_t n = readlink(fd_path(ref->covered_fd, link), now, sizeof(now) - 1);
    if (n < 0)
        return -errno;
    now[n] = '\0';
    const char *name = strrchr(now, '/');
    if (!name || !name[1] || strlen(name + 1) > NAME_MAX)
        return -EINVAL; /* "/", or not a path: no parent to look the mount up in */
    int fd = openat(ref->covered_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    memcpy(ref->name, name + 1, strlen(name + 1) + 1);
    ref->parent_fd = fd;
    return 0;
}

int mount_ref_note(struct mount_ref *ref)
{
    struct statx under, top;
    int fd, r;

    if (statx(ref->covered_fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC,
              ID_MASK, &under) < 0)
        return -errno;
    if (ref->parent_fd < 0) {
        r = find_parent(ref);
        if (r < 0)
            return r;
    }
    fd = openat(ref->parent_fd, ref->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    r = 0;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, ID_MASK, &top) < 0) {
        r = -errno;
    } else if (!id_kind_of(&top) || !(top.stx_attributes & STATX_ATTR_MOUNT_ROOT) ||
               top.stx_mnt_id == under.stx_mnt_id) {
        r = -ENOENT;
    } else {
        ref->mnt_id = top.stx_mnt_id;
        ref->id_kind = id_kind_of(&top);
        ref->dev = makedev(top.stx_dev_major, top.stx_dev_minor);
    }
    close(fd);
    return r;
}

int mount_ref_open_root(const struct mount_ref *ref)
{
    struct statx st;
    int fd;

    if (ref->parent_fd < 0 || !ref->id_kind)
        return -ESTALE;
    fd = openat(ref->parent_fd, ref->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, ref->id_kind, &st) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    if (!(st.stx_mask & ref->id_kind) || st.stx_mnt_id != ref->mnt_id ||
        makedev(st.stx_dev_major, st.stx_dev_minor) != ref->dev ||
        !(st.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
        close(fd);
        return -ESTALE;
    }
    return fd;
}

void mount_ref_close(struct mount_ref *ref)
{
    if (ref->covered_fd >= 0)
        close(ref->covered_fd);
    if (ref->parent_fd >= 0)
        close(ref->parent_fd);
    ref->covered_fd = -1;
    ref->parent_fd = -1;
}
