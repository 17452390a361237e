/* mount_ref: see mount_ref.h. */
#include "mount_ref.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Linux 6.8's 64-bit mount id, never reused; older kernels answer STATX_MNT_ID instead. */
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

/* The ids asked for: the unique one where the kernel has it, else the plain one. Nothing of
 * the basic stats: a FUSE inode then needs no GETATTR, which the session could not answer
 * before INIT (or after its loop ended). */
#define ID_MASK     (STATX_MNT_ID | STATX_MNT_ID_UNIQUE)
#define STATX_FLAGS (AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC)

/* What /proc appends to the path of a removed directory. */
static const char deleted_suffix[] = " (deleted)";

/* Where libfuse's own build looks for fusermount3 first (its FUSERMOUNT_DIR); then PATH. */
static const char fusermount_path[] = "/usr/bin/fusermount3";

/* One line of /proc/self/mountinfo: ids, device, mount point, fs type, super options. */
enum { MOUNTINFO_LINE_MAX = 3 * PATH_MAX };

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

/* The path fd has now, NUL-terminated in buf; -ENAMETOOLONG when it may not fit. */
static int fd_readlink(int fd, char *buf, size_t size)
{
    char link[32];
    ssize_t n = readlink(fd_path(fd, link), buf, size);

    if (n < 0)
        return -errno;
    if ((size_t)n >= size - 1)
        return -ENAMETOOLONG; /* a full buffer: possibly cut */
    buf[n] = '\0';
    return 0;
}

static unsigned id_kind_of(const struct statx *st)
{
    if (st->stx_mask & STATX_MNT_ID_UNIQUE)
        return STATX_MNT_ID_UNIQUE;
    return st->stx_mask & STATX_MNT_ID ? STATX_MNT_ID : 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Sets ref's parent_fd and name from path, the covered directory's checked path, and checks
 * that the name in the parent leads back to the covered directory. */
static int open_parent(struct mount_ref *ref, const char *path)
{
    struct stat covered, found;
    const char *name = strrchr(path, '/');
    int fd, r = -ESTALE;

    if (!name || !name[1] || ends_with(name, deleted_suffix))
        return -EINVAL;
    if (strlen(name + 1) > NAME_MAX)
        return -ENAMETOOLONG;
    int parent = openat(ref->covered_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0)
        return -errno;
    fd = openat(parent, name + 1, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &found) < 0 || fstat(ref->covered_fd, &covered) < 0)
        r = fd < 0 && errno != ENOENT ? -errno : -ESTALE;
    else if (found.st_dev == covered.st_dev && found.st_ino == covered.st_ino)
        r = 0;
    if (fd >= 0)
        close(fd);
    if (r < 0) {
        close(parent);
        return r;
    }
    memcpy(ref->name, name + 1, strlen(name + 1) + 1);
    ref->parent_fd = parent;
    return 0;
}

/* Whether the kernel tells mounts apart as mount_ref needs: -ENOSYS before Linux 5.8. */
static int check_kernel(int fd)
{
    struct statx st;

    if (statx(fd, "", STATX_FLAGS, ID_MASK, &st) < 0)
        return -errno;
    if (!id_kind_of(&st) || !(st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
        return -ENOSYS;
    return 0;
}

int mount_ref_open(struct mount_ref *ret, const char *path)
{
    struct mount_ref ref = {.covered_fd = -1, .parent_fd = -1};
    char now[PATH_MAX];
    int r;

    /* O_DIRECTORY with O_NOFOLLOW: a symlink in the last component is ENOTDIR, not followed. */
    ref.covered_fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (ref.covered_fd < 0)
        return -errno;
    r = check_kernel(ref.covered_fd);
    if (r < 0)
        goto fail;
    /* The path was resolved before; if a directory on it was swapped since, the mount would
     * cover another directory than the one asked for. */
    r = fd_readlink(ref.covered_fd, now, sizeof(now));
    if (r < 0)
        goto fail;
    if (strcmp(now, path) != 0) {
        r = -ESTALE;
        goto fail;
    }
    r = open_parent(&ref, path);
    if (r < 0)
        goto fail;
    *ret = ref;
    return 0;

fail:
    close(ref.covered_fd);
    return r;
}

const char *mount_ref_covered_path(const struct mount_ref *ref, char *buf, size_t size)
{
    if (size < 32)
        return NULL;
    return fd_path(ref->covered_fd, buf);
}

/* Reads /proc/self/mountinfo line by line until want(line) says yes; the line (up to
 * size - 1 bytes, longer ones skipped) is left in line. Async-signal-safe. Returns 0 or
 * -ENOENT. */
static int mountinfo_find(bool (*want)(const char *line, const struct mount_ref *ref),
                          const struct mount_ref *ref, char *line, size_t size)
{
    char chunk[4096];
    size_t len = 0;
    bool too_long = false;
    ssize_t n;
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] != '\n') {
                too_long = too_long || len + 1 >= size;
                if (!too_long)
                    line[len++] = chunk[i];
                continue;
            }
            line[len] = '\0';
            if (!too_long && want(line, ref)) {
                close(fd);
                return 0;
            }
            len = 0;
            too_long = false;
        }
    }
    close(fd);
    return -ENOENT;
}

/* The n-th (from 0) space-separated field of line, and its length in *ret_len. */
static const char *field(const char *line, unsigned n, size_t *ret_len)
{
    const char *p = line;

    for (unsigned i = 0; i < n && p; i++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p)
        return NULL;
    const char *end = strchr(p, ' ');
    *ret_len = end ? (size_t)(end - p) : strlen(p);
    return p;
}

static uint64_t parse_u64(const char *p, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    return v;
}

/* The line of the recorded mount: its short id and its device. */
static bool is_recorded_line(const char *line, const struct mount_ref *ref)
{
    size_t len, dlen;
    const char *id = field(line, 0, &len), *dev = field(line, 2, &dlen);
    const char *colon = dev ? memchr(dev, ':', dlen) : NULL;

    if (!id || !colon || parse_u64(id, len) != ref->short_id)
        return false;
    return makedev(parse_u64(dev, (size_t)(colon - dev)),
                   parse_u64(colon + 1, dlen - (size_t)(colon - dev) - 1)) == ref->dev;
}

/* Whether the recorded mount is a FUSE mount of this user: on kernels whose ids are reused
 * (before 6.8), another mount that got the id and the device of one gone must not pass. */
static bool is_ours(const char *line, const struct mount_ref *ref)
{
    const char *sep = strstr(line, " - ");
    char want[32] = "user_id=";
    char digits[12];
    size_t len, n = 0;
    unsigned uid = (unsigned)geteuid();

    if (!is_recorded_line(line, ref) || !sep || strncmp(sep + 3, "fuse", 4) != 0)
        return false;
    const char *opts = field(sep + 3, 2, &len);
    if (!opts)
        return false;
    do {
        digits[n++] = (char)('0' + uid % 10);
        uid /= 10;
    } while (uid);
    for (size_t i = 0; i < n; i++)
        want[8 + i] = digits[n - 1 - i];
    want[8 + n] = '\0';
    for (const char *p = opts; p && p < opts + len; p = memchr(p, ',', (size_t)(opts + len - p))) {
        p += *p == ',';
        size_t k = strlen(want);
        if (strncmp(p, want, k) == 0 && (p[k] == ',' || p[k] == ' ' || p[k] == '\0'))
            return true;
    }
    return false;
}

/* Whether fd is the root of the recorded mount. */
static bool is_recorded_root(int fd, const struct mount_ref *ref)
{
    struct statx st;

    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, ref->id_kind, &st) < 0)
        return false;
    if (!(st.stx_mask & ref->id_kind) || st.stx_mnt_id != ref->mnt_id ||
        makedev(st.stx_dev_major, st.stx_dev_minor) != ref->dev ||
        !(st.stx_attributes & STATX_ATTR_MOUNT_ROOT))
        return false;
    if (ref->id_kind == STATX_MNT_ID_UNIQUE)
        return true;
    char line[MOUNTINFO_LINE_MAX];
    return mountinfo_find(is_ours, ref, line, sizeof(line)) == 0;
}

int mount_ref_note(struct mount_ref *ref)
{
    struct statx under, top, plain;
    int fd, r = 0;

    if (!ref || ref->parent_fd < 0)
        return -EBADF;
    if (statx(ref->covered_fd, "", STATX_FLAGS, ID_MASK, &under) < 0)
        return -errno;
    fd = openat(ref->parent_fd, ref->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, ID_MASK, &top) < 0 ||
        statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &plain) < 0) {
        r = -errno;
    } else if (!id_kind_of(&top) || !(top.stx_attributes & STATX_ATTR_MOUNT_ROOT) ||
               top.stx_mnt_id == under.stx_mnt_id || !(plain.stx_mask & STATX_MNT_ID)) {
        r = -ENOENT;
    } else {
        ref->mnt_id = top.stx_mnt_id;
        ref->id_kind = id_kind_of(&top);
        ref->short_id = plain.stx_mnt_id;
        ref->dev = makedev(top.stx_dev_major, top.stx_dev_minor);
        if (!is_recorded_root(fd, ref)) {
            ref->id_kind = 0;
            r = -ENOENT;
        }
    }
    close(fd);
    return r;
}

int mount_ref_open_root(const struct mount_ref *ref)
{
    int fd;

    if (!ref || ref->parent_fd < 0 || !ref->id_kind)
        return -ESTALE;
    fd = openat(ref->parent_fd, ref->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESTALE : -errno;
    if (!is_recorded_root(fd, ref)) {
        close(fd);
        return -ESTALE;
    }
    return fd;
}

/* Copies the mount point field of a mountinfo line into buf, undoing its octal escapes. */
static int mount_point_of(const char *line, char *buf, size_t size)
{
    size_t len, out = 0;
    const char *p = field(line, 4, &len);

    if (!p)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (out + 1 >= size)
            return -ENAMETOOLONG;
        if (p[i] == '\\' && i + 3 < len) {
            buf[out++] = (char)((p[i + 1] - '0') * 64 + (p[i + 2] - '0') * 8 + (p[i + 3] - '0'));
            i += 3;
        } else {
            buf[out++] = p[i];
        }
    }
    buf[out] = '\0';
    return 0;
}

/* Opens the root of the recorded mount where mountinfo says it is now: a rename made in
 * another mount namespace moves it away from the covered directory. The path is only a hint:
 * what it opens is checked. Returns the descriptor, -ENOENT, -errno. */
static int open_moved_root(const struct mount_ref *ref)
{
    char line[MOUNTINFO_LINE_MAX], path[PATH_MAX];
    int r = mountinfo_find(is_recorded_line, ref, line, sizeof(line));

    if (r < 0)
        return r;
    r = mount_point_of(line, path, sizeof(path));
    if (r < 0)
        return r;
    int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    if (!is_recorded_root(fd, ref)) {
        close(fd);
        return -ENOENT;
    }
    return fd;
}

/* fusermount3 -u -z on the path the mount's root has now. fusermount3 finds that path in
 * /proc/self/mountinfo and unmounts by name (with UMOUNT_NOFOLLOW), and only a FUSE mount of
 * the same user: between the readlink here and its umount another user who owns a directory on
 * the path can swap in another mount at the name, so the one it detaches may be another FUSE
 * mount of this user, never anyone else's. */
static int fusermount_unmount(int root)
{
    char now[PATH_MAX];
    const char *prog = fusermount_path;
    pid_t pid;
    int status, r = fd_readlink(root, now, sizeof(now));

    if (r < 0)
        return r;
    char *const argv[] = {"fusermount3", "-u", "-q", "-z", "--", now, NULL};
    if (access(prog, X_OK) == 0)
        r = posix_spawn(&pid, prog, NULL, NULL, argv, environ);
    else
        r = posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ);
    if (r)
        return -r;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPERM;
}

int mount_ref_unmount(const struct mount_ref *ref)
{
    char path[32];
    int r, root = mount_ref_open_root(ref);

    if (root == -ESTALE && ref && ref->id_kind)
        root = open_moved_root(ref);
    if (root < 0)
        return root == -ESTALE ? -ENOENT : root;
    /* umount2 on the root's /proc/self/fd/N is that mount, wherever it is; without
     * CAP_SYS_ADMIN (EPERM) only fusermount3 can unmount it. */
    r = umount2(fd_path(root, path), MNT_DETACH) < 0 ? -errno : 0;
    if (r == -EPERM)
        r = fusermount_unmount(root);
    close(root);
    return r;
}

void mount_ref_close(struct mount_ref *ref)
{
    if (!ref)
        return;
    if (ref->covered_fd >= 0)
        close(ref->covered_fd);
    if (ref->parent_fd >= 0)
        close(ref->parent_fd);
    ref->covered_fd = -1;
    ref->parent_fd = -1;
}
