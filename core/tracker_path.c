/* tracker_path: where the journal lives (tracker_path.h).
 *
 * The journal decides which events are shown again, and compaction writes a file next to it,
 * so no other user may be able to plant, replace or redirect anything on the way to it. The
 * rules are ssh's StrictModes: every directory from / to the journal's own is owned by this
 * process's user or root and is not writable by group or others, except that such a directory
 * may be sticky (like /tmp: others cannot rename or remove what is not theirs in it); the
 * journal's own directory is not writable by group or others even when sticky (anyone could
 * create names in it). A symlink on the way is followed only if it is owned by the user or
 * root (the directory holding it is checked already); the directories it leads to are checked
 * in turn. The journal is a regular file owned by the user, not writable by group or others,
 * and never a symlink. The holder's note (twin/tracker_holder.h) is an extended attribute of
 * the journal's directory, reached through the same walk. */
#include "tracker_path.h"
#include "tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/limits.h>

#include "twin/hash.h"
#include "twin/tracker_holder.h"

#define MAX_LINKS 40

/* Where a refusal's reason goes: "PATH: reason". */
struct why {
    char *buf;
    size_t size;
};

/* Writes "dir/name: reason" (name may be NULL) into w. */
static void explain(struct why *w, const char *dir, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* explain(w, ...), then err, a negative errno (taken before: explaining leaves errno alone only
 * by chance). */
#define REFUSE(w, err, ...)                                                                        \
    ({                                                                                             \
        int err_ = (err);                                                                          \
        explain((w), __VA_ARGS__);                                                                 \
        err_ < 0 ? err_ : -EIO;                                                                    \
    })

static void explain(struct why *w, const char *dir, const char *name, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    if (w->buf && w->size > 0) {
        if (!name)
            n = snprintf(w->buf, w->size, "%s: ", dir);
        else
            n = snprintf(w->buf, w->size, "%s%s%s: ", dir,
                         dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
        if (n >= 0 && (size_t)n < w->size) {
            char *at = w->buf + n;
            size_t room = w->size - (size_t)n;
            /* clang 14's analyzer misses the va_start above. */
            vsnprintf(at, room, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
        }
    }
    va_end(ap);
}

/* -errno of the call that just failed (never 0). */
static int neg_errno(void)
{
    return errno > 0 ? -errno : -EIO;
}

static bool owner_trusted(uid_t uid)
{
    return uid == geteuid() || uid == 0;
}

static int check_dir(const struct stat *st, bool journal_dir, const char *shown, struct why *w)
{
    if (!S_ISDIR(st->st_mode))
        return REFUSE(w, -ENOTDIR, shown, NULL, "not a directory");
    if (!owner_trusted(st->st_uid))
        return REFUSE(w, -EPERM, shown, NULL,
                      "directory owned by uid %u, not by uid %u or root: another user could "
                      "replace the tracker",
                      (unsigned)st->st_uid, (unsigned)geteuid());
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && (journal_dir || !(st->st_mode & S_ISVTX)))
        return REFUSE(w, -EPERM, shown, NULL,
                      "directory writable by group or others (mode %04o): another user could "
                      "plant files in it (chmod go-w, or choose another tracker=)",
                      (unsigned)(st->st_mode & 07777));
    return 0;
}

static int check_journal(const struct stat *st, const char *dir, const char *base, struct why *w)
{
    if (S_ISLNK(st->st_mode))
        return REFUSE(w, -EPERM, dir, base, "a symbolic link, not the tracker's own file");
    if (!S_ISREG(st->st_mode))
        return REFUSE(w, -EPERM, dir, base, "not a regular file");
    if (st->st_uid != geteuid())
        return REFUSE(w, -EPERM, dir, base, "owned by uid %u, not by uid %u: not this user's acks",
                      (unsigned)st->st_uid, (unsigned)geteuid());
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return REFUSE(w, -EPERM, dir, base,
                      "writable by group or others (mode %04o): chmod go-w if the acks in it are "
                      "yours",
                      (unsigned)(st->st_mode & 07777));
    return 0;
}

/* Splits path into the directory to resolve (absolute, ends with '/') and the journal's name. */
static int split_path(const char *path, char **ret_dir, char **ret_base, struct why *w)
{
    char *full, *slash, *dir, *base;

    if (path[0] == '/') {
        full = strdup(path);
    } else {
        char *cwd = getcwd(NULL, 0);
        if (!cwd)
            return REFUSE(w, neg_errno(), path, NULL, "cannot tell the current directory");
        size_t len = strlen(cwd) + 1 + strlen(path) + 1;
        full = malloc(len);
        if (full)
            snprintf(full, len, "%s/%s", cwd, path);
        free(cwd);
    }
    if (!full)
        return -ENOMEM;
    slash = strrchr(full, '/');
    if (!slash[1] || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0) {
        free(full);
        return REFUSE(w, -EISDIR, path, NULL, "not a file name");
    }
    dir = strndup(full, (size_t)(slash - full) + 1);
    base = strdup(slash + 1);
    free(full);
    if (!dir || !base) {
        free(dir);
        free(base);
        return -ENOMEM;
    }
    *ret_dir = dir;
    *ret_base = base;
    return 0;
}

/* Opens "/" into *cur and checks it. */
static int open_root(int *cur, char *shown, size_t shown_size, struct why *w)
{
    struct stat st;
    int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return REFUSE(w, neg_errno(), "/", NULL, "%s", strerror(errno));
    if (*cur >= 0)
        close(*cur);
    *cur = fd;
    snprintf(shown, shown_size, "/");
    if (fstat(fd, &st) < 0)
        return REFUSE(w, neg_errno(), "/", NULL, "%s", strerror(errno));
    return check_dir(&st, false, shown, w);
}

/* Replaces the unresolved rest of *todo (from pos) by "target/rest". */
static int splice_link(char **todo, size_t pos, const char *target)
{
    size_t len = strlen(target) + 1 + strlen(*todo + pos) + 1;
    char *next = malloc(len);

    if (!next)
        return -ENOMEM;
    snprintf(next, len, "%s/%s", target, *todo + pos);
    free(*todo);
    *todo = next;
    return 0;
}

/* Resolves the directory dir (absolute) from / one component at a time, checking every
 * directory and symlink on the way (see above), and opens it into *ret_dirfd. Missing
 * directories are made (mode 0700) when create is set; otherwise the walk stops at the first
 * missing one with *ret_dirfd = -1 (what would be made needs no check). shown gets the
 * resolved path, for messages. */
static int open_dir(const char *dir, bool create, int *ret_dirfd, char *shown, size_t shown_size,
                    struct why *w)
{
    char *todo = strdup(dir);
    size_t pos = 0;
    int cur = -1, links = 0, r;
    struct stat st = {0};

    if (!todo)
        return -ENOMEM;
    r = open_root(&cur, shown, shown_size, w);
    while (r == 0) {
        char comp[NAME_MAX + 1];
        size_t n;
        int fd;

        while (todo[pos] == '/')
            pos++;
        if (!todo[pos])
            break;
        n = strcspn(todo + pos, "/");
        if (n > NAME_MAX) {
            r = REFUSE(w, -ENAMETOOLONG, shown, NULL, "a name on the way is too long");
            break;
        }
        memcpy(comp, todo + pos, n);
        comp[n] = '\0';
        pos += n;
        if (strcmp(comp, ".") == 0)
            continue;
        bool up = strcmp(comp, "..") == 0; /* to the parent, checked already */
        if (!up && fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) {
                r = REFUSE(w, neg_errno(), shown, comp, "%s", strerror(errno));
                break;
            }
            if (!create) {
                close(cur);
                cur = -1;
                break;
            }
            if (mkdirat(cur, comp, 0700) < 0 && errno != EEXIST) {
                r = REFUSE(w, neg_errno(), shown, comp, "cannot create the directory: %s",
                           strerror(errno));
                break;
            }
            pos -= n; /* look at what is there now */
            continue;
        }
        if (!up && S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t k;

            if (!owner_trusted(st.st_uid)) {
                r = REFUSE(w, -EPERM, shown, comp,
                           "symbolic link owned by uid %u, not by uid %u or root",
                           (unsigned)st.st_uid, (unsigned)geteuid());
                break;
            }
            if (++links > MAX_LINKS) {
                r = REFUSE(w, -ELOOP, shown, comp, "too many symbolic links");
                break;
            }
            k = readlinkat(cur, comp, target, sizeof(target));
            if (k < 0 || (size_t)k >= sizeof(target)) {
                r = REFUSE(w, k < 0 ? neg_errno() : -ENAMETOOLONG, shown, comp,
                           "cannot read the symbolic link");
                break;
            }
            target[k] = '\0';
            r = splice_link(&todo, pos, target);
            pos = 0;
            if (r == 0 && target[0] == '/')
                r = open_root(&cur, shown, shown_size, w);
            continue;
        }
        fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            r = REFUSE(w, neg_errno(), shown, comp, "%s", strerror(errno));
            break;
        }
        close(cur);
        cur = fd;
        if (up) {
            char *last = strrchr(shown, '/');
            if (last)
                last[last == shown ? 1 : 0] = '\0';
        } else {
            size_t used = strlen(shown);
            int m = snprintf(shown + used, shown_size - used, "%s%s",
                             shown[used - 1] == '/' ? "" : "/", comp);
            if (m < 0 || (size_t)m >= shown_size - used) {
                r = REFUSE(w, -ENAMETOOLONG, dir, NULL, "path too long");
                break;
            }
        }
        if (fstat(cur, &st) < 0)
            r = REFUSE(w, neg_errno(), shown, NULL, "%s", strerror(errno));
        else
            r = check_dir(&st, false, shown, w);
    }
    if (r == 0 && cur >= 0) {
        if (fstat(cur, &st) < 0)
            r = REFUSE(w, neg_errno(), shown, NULL, "%s", strerror(errno));
        else
            r = check_dir(&st, true, shown, w);
    }
    free(todo);
    if (r < 0) {
        if (cur >= 0)
            close(cur);
        return r;
    }
    *ret_dirfd = cur;
    return 0;
}

int tracker_check(const char *path, char *why, size_t why_size)
{
    struct why w = {why, why_size};
    char shown[PATH_MAX];
    char *dir = NULL, *base = NULL;
    struct stat st;
    int dirfd = -1, r;

    if (why && why_size)
        why[0] = '\0';
    if (!path || !*path)
        return -EINVAL;
    r = split_path(path, &dir, &base, &w);
    if (r == 0)
        r = open_dir(dir, false, &dirfd, shown, sizeof(shown), &w);
    if (r == 0 && dirfd >= 0) {
        if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0)
            r = check_journal(&st, shown, base, &w);
        else if (errno != ENOENT)
            r = REFUSE(&w, neg_errno(), shown, base, "%s", strerror(errno));
        close(dirfd);
    }
    free(dir);
    free(base);
    return r;
}

int tracker_path_open(const char *path, bool create, int *ret_dirfd, char **ret_base, char *shown,
                      size_t shown_size, char *why, size_t why_size)
{
    struct why w = {why, why_size};
    char *dir = NULL;
    int r;

    *ret_dirfd = -1;
    r = split_path(path, &dir, ret_base, &w);
    if (r < 0)
        return r;
    r = open_dir(dir, create, ret_dirfd, shown, shown_size, &w);
    free(dir);
    if (r < 0) {
        free(*ret_base);
        *ret_base = NULL;
    }
    return r;
}

int tracker_path_check_journal(const struct stat *st, const char *dir, const char *base, char *why,
                               size_t why_size)
{
    struct why w = {why, why_size};

    return check_journal(st, dir, base, &w);
}

/* ---- the holder's note (twin/tracker_holder.h) ---- */

/* The attribute's name: HOLDER_XATTR and the journal's name, or "#" and 16 hex digits of its
 * FNV-1a when that does not fit XATTR_NAME_MAX. */
#define HOLDER_XATTR "user.twinfs.holder."

static void holder_name(const char *base, char ret[XATTR_NAME_MAX + 1])
{
    size_t len = strlen(base);

    if (sizeof(HOLDER_XATTR) - 1 + len <= XATTR_NAME_MAX)
        snprintf(ret, XATTR_NAME_MAX + 1, HOLDER_XATTR "%s", base);
    else
        snprintf(ret, XATTR_NAME_MAX + 1, HOLDER_XATTR "#%016" PRIx64,
                 twin_fnv1a(TWIN_FNV1A_INIT, base, len));
}

/* Opens the directory of the tracker at path through the checked walk into *ret_dirfd, and
 * names the note's attribute. */
static int holder_dir(const char *path, int *ret_dirfd, char name[XATTR_NAME_MAX + 1])
{
    char shown[PATH_MAX];
    char *base = NULL;
    int r;

    if (!path || !*path)
        return -EINVAL;
    r = tracker_path_open(path, false, ret_dirfd, &base, shown, sizeof(shown), NULL, 0);
    if (r < 0)
        return r;
    if (*ret_dirfd < 0)
        r = -ENOENT;
    else
        holder_name(base, name);
    free(base);
    return r;
}

int tracker_holder_write(const char *tracker_path, const char *text)
{
    char name[XATTR_NAME_MAX + 1];
    size_t len = text ? strlen(text) : 0;
    int dirfd = -1, r;

    if (!text)
        return -EINVAL;
    if (len > TRACKER_HOLDER_MAX)
        return -EMSGSIZE;
    r = holder_dir(tracker_path, &dirfd, name);
    if (r < 0)
        return r;
    if (fsetxattr(dirfd, name, text, len, 0) < 0)
        r = neg_errno(); /* ENOTSUP is EOPNOTSUPP */
    close(dirfd);
    return r;
}

ssize_t tracker_holder_read(const char *tracker_path, char *buf, size_t size)
{
    char name[XATTR_NAME_MAX + 1];
    char *note;
    ssize_t n;
    int dirfd = -1, r;

    if (!buf || size == 0)
        return -EINVAL;
    note = malloc(TRACKER_HOLDER_MAX);
    if (!note)
        return -ENOMEM;
    r = holder_dir(tracker_path, &dirfd, name);
    if (r < 0) {
        free(note);
        return r;
    }
    n = fgetxattr(dirfd, name, note, TRACKER_HOLDER_MAX);
    if (n < 0)
        n = errno == ENODATA ? -ENOENT : neg_errno();
    close(dirfd);
    if (n >= 0) {
        if ((size_t)n >= size)
            n = (ssize_t)size - 1;
        memcpy(buf, note, (size_t)n);
        buf[n] = '\0';
    }
    free(note);
    return n;
}
