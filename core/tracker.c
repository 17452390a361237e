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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "seq_set.h"
#include "tracker_path.h"

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

/* Opens (or creates) the journal in t->dirfd and takes its lock into t->fd. Compaction renames
 * a new file over the journal: if the lock was taken on the old inode just as it was replaced,
 * it protects nothing, so the file locked must still be the one at the name. */
static int open_locked(struct tracker *t, const char *shown)
{
    for (int attempt = 0;; attempt++) {
        struct stat a, b;
        int r;

        if (fstatat(t->dirfd, t->base, &a, AT_SYMLINK_NOFOLLOW) == 0) {
            r = tracker_path_check_journal(&a, shown, t->base, NULL, 0);
            if (r < 0)
                return r;
        }
        t->fd =
            openat(t->dirfd, t->base, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (t->fd < 0)
            return errno == ELOOP ? -EPERM : -errno;
        if (fstat(t->fd, &a) < 0)
            return -errno;
        r = tracker_path_check_journal(&a, shown, t->base, NULL, 0);
        if (r < 0)
            return r;
        if (flock(t->fd, LOCK_EX | LOCK_NB) < 0)
            return errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (fstatat(t->dirfd, t->base, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino)
            return 0;
        close(t->fd);
        t->fd = -1;
        if (attempt >= 10)
            return -EBUSY;
    }
}

int tracker_open(const char *path, struct tracker **ret)
{
    char shown[PATH_MAX];
    struct tracker *t;
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
    r = tracker_path_open(path, true, &t->dirfd, &t->base, shown, sizeof(shown), NULL, 0);
    if (r < 0)
        goto fail;
    r = open_locked(t, shown);
    if (r < 0)
        goto fail;
    remove_stale_tmp(t);
    r = load(t);
    if (r < 0)
        goto fail;
    t->compact_at = COMPACT_MIN_BYTES;
    *ret = t;
    return 0;

fail:
    if (t->fd >= 0)
        close(t->fd);
    if (t->dirfd >= 0)
        close(t->dirfd);
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
