/* tracker: the durable ack journal (see tracker.h).
 *
 * Journal format, one record a line:
 *     twinfs-tracker 2        header (magic and format version; version 1 files are read too)
 *     w <seq>                 the watermark moved up to seq
 *     a <seq>                 seq was acked
 *     r <lo> <hi>             every seq in lo..hi was acked (version 2; written by compaction)
 * Lines are only ever appended with one write(2) each (O_APPEND, no stdio buffer), so after a
 * kill -9 the file holds every line whose write returned. A power loss can leave a torn or
 * garbled tail; everything from the first line that does not parse (or lacks its "\n") is
 * dropped on open, which at worst forgets some acks: those events are shown again.
 *
 * The acks above the watermark are held as sorted ranges of consecutive seqs, not one entry
 * per seq: when one event is never acked, the watermark stays below it while every later ack
 * lands above it, and a set of single seqs (memory and journal) would grow with every ack for
 * as long as that event stays. Consumers ack mostly in order, so later acks extend one range;
 * seqs that need no ack (tracker_note_handled) close the gaps between events. */
#include "tracker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "seq_set.h"

#define HEADER               "twinfs-tracker 2\n"
#define HEADER_V1            "twinfs-tracker 1\n"
#define HEADER_LEN           (sizeof(HEADER) - 1)
#define COMPACT_MIN_BYTES    ((off_t)1024 * 1024)
#define LIVE_BYTES_PER_RANGE 44 /* "r " + two numbers of up to 20 digits: an estimate */

struct tracker {
    int fd;
    int dirfd;            /* the journal's directory, checked by open_dir */
    char *base;           /* the journal's name in it */
    uint64_t wm;          /* the watermark */
    uint64_t wm_on_disk;  /* the last watermark the journal holds */
    struct seq_set *acks; /* acked seqs above the watermark */
    off_t size;           /* bytes in the journal */
    off_t compact_at;     /* do not try to compact again below this size */
    bool broken;          /* a failed write could not be undone: refuse further writes */
};

/* ---- files ---- */

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Appends len bytes as one write(2). A short write (disk full) leaves a torn line: cut it
 * off again, or a later line would follow garbage and be lost on the next open. */
static int journal_append(struct tracker *t, const char *buf, size_t len)
{
    ssize_t n;

    if (t->broken)
        return -EIO;
    do {
        n = write(t->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)len) {
        t->size += (off_t)len;
        return 0;
    }
    int err = n < 0 ? -errno : -ENOSPC;
    if (n > 0 && ftruncate(t->fd, t->size) < 0)
        t->broken = true;
    return err;
}

/* Parses a decimal number at *p up to a ' ' or the end; advances *p. Returns false if garbled. */
static bool parse_number(const char **p, const char *end, uint64_t *ret)
{
    uint64_t v = 0;
    const char *q = *p;

    if (q == end || *q == ' ')
        return false;
    for (; q < end && *q != ' '; q++) {
        unsigned d = (unsigned char)*q - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *p = q;
    *ret = v;
    return true;
}

/* Parses "a <seq>", "w <seq>" or "r <lo> <hi>" (line without its "\n") into *lo, *hi (both
 * the seq for a and w). Returns 'a', 'w', 'r', or 0 if garbled. */
static char parse_line(const char *line, size_t len, uint64_t *lo, uint64_t *hi)
{
    const char *p = line + 2, *end = line + len;
    char c = len > 2 ? line[0] : 0;

    if ((c != 'a' && c != 'w' && c != 'r') || line[1] != ' ' || len > 44)
        return 0;
    if (!parse_number(&p, end, lo))
        return 0;
    *hi = *lo;
    if (c == 'r' && (p == end || !(p++, parse_number(&p, end, hi)) || *hi < *lo))
        return 0;
    if (p != end || (c != 'w' && *lo == 0))
        return 0;
    return c;
}

static int read_file(int fd, char **ret, size_t *ret_len)
{
    struct stat st;
    size_t len, got = 0;
    char *buf;

    if (fstat(fd, &st) < 0)
        return -errno;
    len = (size_t)st.st_size;
    buf = malloc(len + 1);
    if (!buf)
        return -ENOMEM;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = -errno;
            free(buf);
            return err;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *ret = buf;
    *ret_len = got;
    return 0;
}

/* Replays the journal into t; cuts a torn tail off. */
static int load(struct tracker *t)
{
    char *buf = NULL;
    size_t len = 0, pos, valid_end;
    int r = read_file(t->fd, &buf, &len);

    if (r < 0 || !buf)
        return r < 0 ? r : -EIO;
    if (len < HEADER_LEN ||
        (memcmp(buf, HEADER, HEADER_LEN) != 0 && memcmp(buf, HEADER_V1, HEADER_LEN) != 0)) {
        /* A new journal, or one whose header write was torn: start afresh. Anything else is
         * not ours, and is left alone. */
        if (memcmp(buf, HEADER, len < HEADER_LEN ? len : HEADER_LEN) != 0 || len > HEADER_LEN) {
            free(buf);
            return -EINVAL;
        }
        free(buf);
        if (ftruncate(t->fd, 0) < 0)
            return -errno;
        t->size = 0;
        r = journal_append(t, HEADER, HEADER_LEN);
        if (r == 0 && fsync(t->fd) < 0)
            r = -errno;
        if (r == 0 && fsync(t->dirfd) < 0)
            r = -errno;
        return r;
    }

    pos = valid_end = HEADER_LEN;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        uint64_t lo, hi;
        char c;

        if (!nl)
            break; /* torn: the write of this line did not finish */
        c = parse_line(buf + pos, (size_t)(nl - (buf + pos)), &lo, &hi);
        if (c == 0)
            break; /* garbled: trust nothing after it */
        if (c == 'w') {
            if (lo > t->wm)
                t->wm = lo;
        } else {
            r = seq_set_add(t->acks, lo, hi);
            if (r < 0) {
                free(buf);
                return r;
            }
        }
        pos = valid_end = (size_t)(nl - buf) + 1;
    }
    free(buf);
    t->size = (off_t)valid_end;
    if (valid_end < len) {
        if (ftruncate(t->fd, (off_t)valid_end) < 0 || fsync(t->fd) < 0)
            return -errno;
    }
    t->wm_on_disk = t->wm;
    seq_set_drop_through(t->acks, t->wm); /* acks below the final watermark */
    return 0;
}

/* ---- where the journal lives ----
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
 * and never a symlink. */

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

/* The name of a compaction's temporary file: "<journal>.tmp-" and 16 hex digits. */
#define TMP_SUFFIX     ".tmp-"
#define TMP_SUFFIX_LEN (sizeof(TMP_SUFFIX) - 1)
#define TMP_HEX        16

/* How much of the journal's name starts a temporary file's name (it has to fit NAME_MAX). */
static int tmp_prefix_len(const char *base)
{
    size_t len = strlen(base), max = NAME_MAX - TMP_SUFFIX_LEN - TMP_HEX;
    return (int)(len < max ? len : max);
}

static bool is_tmp_name(const char *base, const char *name)
{
    size_t len = (size_t)tmp_prefix_len(base);

    if (strncmp(name, base, len) != 0 || strncmp(name + len, TMP_SUFFIX, TMP_SUFFIX_LEN) != 0)
        return false;
    name += len + TMP_SUFFIX_LEN;
    return strlen(name) == TMP_HEX && strspn(name, "0123456789abcdef") == TMP_HEX;
}

/* Removes the temporary files a compaction cut short (a crash) left. The journal's lock is
 * held, so no compaction of it is running. */
static void remove_stale_tmp(struct tracker *t)
{
    int fd = openat(t->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;

    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_type != DT_DIR && is_tmp_name(t->base, e->d_name))
            (void)unlinkat(t->dirfd, e->d_name, 0);
    }
    closedir(d);
}

/* Creates a new temporary file next to the journal: a fresh random name, O_EXCL, never
 * through a symlink. */
static int create_tmp(struct tracker *t, char *ret_name, size_t name_size)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t rnd = 0;
        int n, fd;

        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            rnd = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16) ^
                  (uint64_t)attempt;
        }
        n = snprintf(ret_name, name_size, "%.*s" TMP_SUFFIX "%016" PRIx64, tmp_prefix_len(t->base),
                     t->base, rnd);
        if (n < 0 || (size_t)n >= name_size)
            return -ENAMETOOLONG;
        fd = openat(t->dirfd, ret_name,
                    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* ---- public ---- */

int tracker_open(const char *path, struct tracker **ret)
{
    char shown[PATH_MAX];
    struct why w = {NULL, 0};
    struct tracker *t;
    char *dir = NULL;
    int r;

    if (!path || !*path)
        return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->fd = -1;
    t->dirfd = -1;
    t->acks = seq_set_new();
    if (!t->acks) {
        r = -ENOMEM;
        goto fail;
    }
    r = split_path(path, &dir, &t->base, &w);
    if (r < 0)
        goto fail;
    r = open_dir(dir, true, &t->dirfd, shown, sizeof(shown), &w);
    if (r < 0)
        goto fail;
    /* Compaction renames a new file over the journal: if we locked the old inode just as it was
     * replaced, the lock protects nothing, so check that we hold the file now at its name. */
    for (int attempt = 0;; attempt++) {
        struct stat a, b;

        if (fstatat(t->dirfd, t->base, &a, AT_SYMLINK_NOFOLLOW) == 0) {
            r = check_journal(&a, shown, t->base, &w);
            if (r < 0)
                goto fail;
        }
        t->fd =
            openat(t->dirfd, t->base, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (t->fd < 0) {
            r = errno == ELOOP ? -EPERM : -errno;
            goto fail;
        }
        if (fstat(t->fd, &a) < 0) {
            r = -errno;
            goto fail;
        }
        r = check_journal(&a, shown, t->base, &w);
        if (r < 0)
            goto fail;
        if (flock(t->fd, LOCK_EX | LOCK_NB) < 0) {
            r = errno == EWOULDBLOCK ? -EBUSY : -errno;
            goto fail;
        }
        if (fstatat(t->dirfd, t->base, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino)
            break;
        close(t->fd);
        t->fd = -1;
        if (attempt >= 10) {
            r = -EBUSY;
            goto fail;
        }
    }
    remove_stale_tmp(t);
    r = load(t);
    if (r < 0)
        goto fail;
    t->compact_at = COMPACT_MIN_BYTES;
    free(dir);
    *ret = t;
    return 0;

fail:
    if (t->fd >= 0)
        close(t->fd);
    if (t->dirfd >= 0)
        close(t->dirfd);
    free(dir);
    free(t->base);
    seq_set_free(t->acks);
    free(t);
    return r;
}

int tracker_flush(struct tracker *t)
{
    if (t->wm != t->wm_on_disk) {
        char line[32];
        int n = snprintf(line, sizeof(line), "w %" PRIu64 "\n", t->wm);
        int r = journal_append(t, line, (size_t)n);
        if (r < 0)
            return r;
        t->wm_on_disk = t->wm;
    }
    if (fsync(t->fd) < 0)
        return -errno;
    return 0;
}

void tracker_close(struct tracker *t)
{
    if (!t)
        return;
    (void)tracker_flush(t); /* nothing left to report to; a lost "w" only replays more */
    close(t->fd);
    close(t->dirfd);
    free(t->base);
    seq_set_free(t->acks);
    free(t);
}

uint64_t tracker_watermark(const struct tracker *t)
{
    return t->wm;
}

bool tracker_is_acked(const struct tracker *t, uint64_t seq)
{
    return seq <= t->wm || seq_set_contains(t->acks, seq);
}

size_t tracker_acked_above(const struct tracker *t)
{
    uint64_t n = seq_set_count(t->acks);
    return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

/* Compaction's writer: lines into a buffer flushed to fd when nearly full. */
struct compact_out {
    int fd;
    char buf[65536];
    size_t used;
    off_t size;
};

static int compact_flush(struct compact_out *o)
{
    int r = write_all(o->fd, o->buf, o->used);
    if (r == 0)
        o->size += (off_t)o->used;
    o->used = 0;
    return r;
}

static int compact_range(void *userdata, uint64_t lo, uint64_t hi)
{
    struct compact_out *o = userdata;
    size_t room = sizeof(o->buf) - o->used;

    if (lo == hi)
        o->used += (size_t)snprintf(o->buf + o->used, room, "a %" PRIu64 "\n", lo);
    else
        o->used += (size_t)snprintf(o->buf + o->used, room, "r %" PRIu64 " %" PRIu64 "\n", lo, hi);
    return o->used > sizeof(o->buf) - 64 ? compact_flush(o) : 0;
}

int tracker_compact(struct tracker *t)
{
    char tmp[NAME_MAX + 1];
    struct compact_out *o;
    int r;

    if (t->broken)
        return -EIO;
    seq_set_drop_through(t->acks, t->wm);
    o = malloc(sizeof(*o));
    if (!o)
        return -ENOMEM;
    o->used = 0;
    o->size = 0;
    o->fd = create_tmp(t, tmp, sizeof(tmp));
    if (o->fd < 0) {
        r = o->fd;
        goto fail_open;
    }
    /* Lock before the rename, so the file is never visible at the journal's name unlocked. */
    if (flock(o->fd, LOCK_EX | LOCK_NB) < 0) {
        r = -errno;
        goto fail;
    }
    memcpy(o->buf, HEADER, HEADER_LEN);
    o->used = HEADER_LEN;
    o->used +=
        (size_t)snprintf(o->buf + o->used, sizeof(o->buf) - o->used, "w %" PRIu64 "\n", t->wm);
    r = seq_set_each(t->acks, compact_range, o);
    if (r == 0)
        r = compact_flush(o);
    if (r < 0)
        goto fail;
    if (fsync(o->fd) < 0) {
        r = -errno;
        goto fail;
    }
    if (renameat(t->dirfd, tmp, t->dirfd, t->base) < 0) {
        r = -errno;
        goto fail;
    }
    close(t->fd);
    t->fd = o->fd;
    t->size = o->size;
    t->wm_on_disk = t->wm;
    free(o);
    /* The rename is durable only once the directory is; until then a crash leaves the old
     * journal, which is still correct. */
    (void)fsync(t->dirfd);
    return 0;

fail:
    close(o->fd);
    (void)unlinkat(t->dirfd, tmp, 0);
fail_open:
    free(o);
    return r;
}

static void maybe_compact(struct tracker *t)
{
    off_t live = (off_t)(HEADER_LEN + 24 + seq_set_ranges(t->acks) * LIVE_BYTES_PER_RANGE);

    if (t->size < t->compact_at || t->size < 4 * live)
        return;
    if (tracker_compact(t) < 0) {
        /* Still correct, only larger: try again once it has doubled. */
        t->compact_at = t->size * 2;
        return;
    }
    t->compact_at = COMPACT_MIN_BYTES;
}

int tracker_ack(struct tracker *t, uint64_t seq)
{
    char line[64];
    int n = 0, r;

    if (seq <= t->wm || seq_set_contains(t->acks, seq))
        return -EALREADY;
    r = seq_set_reserve(t->acks); /* the only step that could fail after the write */
    if (r < 0)
        return r;
    if (t->wm != t->wm_on_disk)
        n = snprintf(line, sizeof(line), "w %" PRIu64 "\n", t->wm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, "a %" PRIu64 "\n", seq);
    r = journal_append(t, line, (size_t)n);
    if (r < 0)
        return r;
    t->wm_on_disk = t->wm;
    (void)seq_set_add(t->acks, seq, seq); /* cannot fail: reserved */
    maybe_compact(t);
    return 0;
}

int tracker_note_handled(struct tracker *t, uint64_t seq)
{
    if (seq <= t->wm)
        return 0;
    return seq_set_add(t->acks, seq, seq);
}

int tracker_advance(struct tracker *t, uint64_t w)
{
    if (w <= t->wm)
        return 0;
    t->wm = w;
    seq_set_drop_through(t->acks, w);
    return 0;
}
