/* tracker: the durable ack journal (see tracker.h).
 *
 * Journal format, one record a line:
 *     twinfs-tracker 1        header (magic and format version)
 *     w <seq>                 the watermark moved up to seq
 *     a <seq>                 seq was acked
 * Lines are only ever appended with one write(2) each (O_APPEND, no stdio buffer), so after a
 * kill -9 the file holds every line whose write returned. A power loss can leave a torn or
 * garbled tail; everything from the first line that does not parse (or lacks its "\n") is
 * dropped on open, which at worst forgets some acks: those events are shown again. */
#include "tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER             "twinfs-tracker 1\n"
#define HEADER_LEN         (sizeof(HEADER) - 1)
#define COMPACT_MIN_BYTES  ((off_t)1024 * 1024)
#define LIVE_BYTES_PER_ACK 22 /* "a " + up to 20 digits ... an estimate, not a bound */

struct tracker {
    int fd;
    char *path;
    uint64_t wm;         /* the watermark */
    uint64_t wm_on_disk; /* the last watermark the journal holds */
    /* Acked seqs above the watermark: open addressing, linear probing, 0 = empty slot
     * (seq 0 is never acked: it is always <= the watermark). */
    uint64_t *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
    bool stale;             /* slots may still hold seqs <= wm (purged lazily) */
    size_t ops_since_purge; /* pays for the next purge */
    off_t size;             /* bytes in the journal */
    off_t compact_at;       /* do not try to compact again below this size */
    bool broken;            /* a failed write could not be undone: refuse further writes */
};

/* ---- the hash set ---- */

static size_t hash_seq(uint64_t x)
{
    /* splitmix64 finalizer: consecutive seqs spread over the table */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (size_t)x;
}

static bool set_contains(const struct tracker *t, uint64_t seq)
{
    if (t->cap == 0)
        return false;
    for (size_t i = hash_seq(seq) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i] == seq)
            return true;
        if (t->slots[i] == 0)
            return false;
    }
}

/* Inserts into a table known to have room. */
static void slots_insert(uint64_t *slots, size_t cap, uint64_t seq)
{
    size_t i = hash_seq(seq) & (cap - 1);

    while (slots[i] != 0 && slots[i] != seq)
        i = (i + 1) & (cap - 1);
    slots[i] = seq;
}

/* Rebuilds the table with room for want entries, keeping only seqs above the watermark. */
static int set_rebuild(struct tracker *t, size_t want)
{
    size_t cap = 16;
    uint64_t *slots;
    size_t count = 0;

    while (cap < want * 2) {
        if (cap > SIZE_MAX / 4 / sizeof(uint64_t))
            return -ENOMEM;
        cap *= 2;
    }
    slots = calloc(cap, sizeof(uint64_t));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] > t->wm) {
            slots_insert(slots, cap, t->slots[i]);
            count++;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    t->count = count;
    t->stale = false;
    t->ops_since_purge = 0;
    return 0;
}

/* Makes room for one more entry (load factor <= 1/2) before anything irreversible. */
static int set_reserve_one(struct tracker *t)
{
    if ((t->count + 1) * 2 <= t->cap)
        return 0;
    return set_rebuild(t, t->count + 1 > 8 ? (t->count + 1) * 2 : 8);
}

static int set_add(struct tracker *t, uint64_t seq)
{
    int r = set_reserve_one(t);

    if (r < 0)
        return r;
    if (!set_contains(t, seq)) {
        slots_insert(t->slots, t->cap, seq);
        t->count++;
    }
    return 0;
}

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

static int fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, r = 0;

    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return -ENOMEM;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        r = -errno;
    close(fd);
    return r;
}

/* mkdir -p of every parent of path, mode 0700 (the journal is private state). */
static int make_parents(const char *path)
{
    char *copy = strdup(path);
    int r = 0;

    if (!copy)
        return -ENOMEM;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
            r = -errno;
            break;
        }
        *p = '/';
    }
    free(copy);
    return r;
}

/* Parses "a <seq>" or "w <seq>" (line without its "\n"). Returns 'a', 'w' or 0 if garbled. */
static char parse_line(const char *line, size_t len, uint64_t *ret)
{
    uint64_t v = 0;

    if (len < 3 || len > 22 || (line[0] != 'a' && line[0] != 'w') || line[1] != ' ')
        return 0;
    for (size_t i = 2; i < len; i++) {
        unsigned d = (unsigned char)line[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (line[0] == 'a' && v == 0)
        return 0;
    *ret = v;
    return line[0];
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
    if (len < HEADER_LEN || memcmp(buf, HEADER, HEADER_LEN) != 0) {
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
        if (r == 0)
            r = fsync_parent_dir(t->path);
        return r;
    }

    pos = valid_end = HEADER_LEN;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        uint64_t v;
        char c;

        if (!nl)
            break; /* torn: the write of this line did not finish */
        c = parse_line(buf + pos, (size_t)(nl - (buf + pos)), &v);
        if (c == 0)
            break; /* garbled: trust nothing after it */
        if (c == 'w') {
            if (v > t->wm)
                t->wm = v;
        } else {
            r = set_add(t, v);
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
    return set_rebuild(t, t->count); /* drops acks below the final watermark */
}

/* ---- public ---- */

int tracker_open(const char *path, struct tracker **ret)
{
    struct tracker *t;
    int r;

    if (!path || !*path)
        return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->fd = -1;
    t->path = strdup(path);
    if (!t->path) {
        r = -ENOMEM;
        goto fail;
    }
    r = make_parents(path);
    if (r < 0)
        goto fail;
    /* Compaction renames a new file over the path: if we locked the old inode just as it was
     * replaced, the lock protects nothing, so check that we hold the file now at path. */
    for (int attempt = 0;; attempt++) {
        struct stat a, b;

        t->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (t->fd < 0) {
            r = -errno;
            goto fail;
        }
        if (flock(t->fd, LOCK_EX | LOCK_NB) < 0) {
            r = errno == EWOULDBLOCK ? -EBUSY : -errno;
            goto fail;
        }
        if (fstat(t->fd, &a) < 0) {
            r = -errno;
            goto fail;
        }
        if (stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            break;
        close(t->fd);
        t->fd = -1;
        if (attempt >= 10) {
            r = -EBUSY;
            goto fail;
        }
    }
    r = load(t);
    if (r < 0)
        goto fail;
    t->compact_at = COMPACT_MIN_BYTES;
    *ret = t;
    return 0;

fail:
    if (t->fd >= 0)
        close(t->fd);
    free(t->path);
    free(t->slots);
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
    free(t->path);
    free(t->slots);
    free(t);
}

uint64_t tracker_watermark(const struct tracker *t)
{
    return t->wm;
}

bool tracker_is_acked(const struct tracker *t, uint64_t seq)
{
    return seq <= t->wm || set_contains(t, seq);
}

size_t tracker_acked_above(const struct tracker *t)
{
    size_t n = 0;

    if (!t->stale)
        return t->count;
    for (size_t i = 0; i < t->cap; i++)
        n += t->slots[i] > t->wm;
    return n;
}

int tracker_compact(struct tracker *t)
{
    char *tmp;
    size_t tmp_len = strlen(t->path) + 5;
    char buf[65536];
    size_t used = 0;
    off_t size = 0;
    int fd, r;

    if (t->broken)
        return -EIO;
    r = set_rebuild(t, t->count);
    if (r < 0)
        return r;
    tmp = malloc(tmp_len);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, tmp_len, "%s.tmp", t->path);
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        goto fail_open;
    }
    /* Lock before the rename, so the file is never visible at path unlocked. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        r = -errno;
        goto fail;
    }
    memcpy(buf, HEADER, HEADER_LEN);
    used = HEADER_LEN;
    used += (size_t)snprintf(buf + used, sizeof(buf) - used, "w %" PRIu64 "\n", t->wm);
    for (size_t i = 0; i <= t->cap; i++) {
        if (used > sizeof(buf) - 32 || i == t->cap) {
            r = write_all(fd, buf, used);
            if (r < 0)
                goto fail;
            size += (off_t)used;
            used = 0;
        }
        if (i < t->cap && t->slots[i] > t->wm)
            used +=
                (size_t)snprintf(buf + used, sizeof(buf) - used, "a %" PRIu64 "\n", t->slots[i]);
    }
    if (fsync(fd) < 0) {
        r = -errno;
        goto fail;
    }
    if (rename(tmp, t->path) < 0) {
        r = -errno;
        goto fail;
    }
    free(tmp);
    close(t->fd);
    t->fd = fd;
    t->size = size;
    t->wm_on_disk = t->wm;
    /* The rename is durable only once the directory is; until then a crash leaves the old
     * journal, which is still correct. */
    (void)fsync_parent_dir(t->path);
    return 0;

fail:
    close(fd);
    unlink(tmp);
fail_open:
    free(tmp);
    return r;
}

static void maybe_compact(struct tracker *t)
{
    off_t live = (off_t)(HEADER_LEN + 24 + t->count * LIVE_BYTES_PER_ACK);

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

    if (seq <= t->wm || set_contains(t, seq))
        return -EALREADY;
    r = set_reserve_one(t); /* the only step that can fail after the write is this one */
    if (r < 0)
        return r;
    if (t->wm != t->wm_on_disk)
        n = snprintf(line, sizeof(line), "w %" PRIu64 "\n", t->wm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, "a %" PRIu64 "\n", seq);
    r = journal_append(t, line, (size_t)n);
    if (r < 0)
        return r;
    t->wm_on_disk = t->wm;
    slots_insert(t->slots, t->cap, seq);
    t->count++;
    t->ops_since_purge++;
    maybe_compact(t);
    return 0;
}

int tracker_advance(struct tracker *t, uint64_t w)
{
    if (w <= t->wm)
        return 0;
    t->wm = w;
    t->stale = t->count > 0;
    t->ops_since_purge++;
    /* Purging costs O(table); do it once enough operations have paid for it. */
    if (t->stale && (t->count <= 64 || t->ops_since_purge >= t->count)) {
        int r = set_rebuild(t, t->count);
        if (r < 0)
            return r;
    }
    return 0;
}
