/* t2_files: the files under assets/A/t2/TYPE/: a read-only open sends the Type 2 request (the
 * open's errno is the request's failure), reads stream its answer in order, release closes the
 * stream. A read-write open gathers the bytes written before its first read as the request
 * data; that read sends the request (its errno is then the request's failure). */
#include "fs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "twin/t2_stream.h"
#include "twin/text.h"

/* The longest user.twin.mime: a media type is short (RFC 6838 caps its names at 127 bytes). */
#define T2_MIME_MAX 255

/* The T2 files one uid other than the owner has open (or is opening). */
struct t2_uid_slots {
    uid_t uid;
    unsigned n;
};

int t2_files_init(struct twinfs *fs)
{
    pthread_mutex_init(&fs->t2_slots_lock, NULL);
    fs->t2_others = calloc(fs->opt.max_t2_open, sizeof(*fs->t2_others));
    if (!fs->t2_others) {
        pthread_mutex_destroy(&fs->t2_slots_lock);
        return -ENOMEM;
    }
    return 0;
}

void t2_files_free(struct twinfs *fs)
{
    free(fs->t2_others);
    fs->t2_others = NULL;
    pthread_mutex_destroy(&fs->t2_slots_lock);
}

/* The most T2 files one other uid may hold, which is also what the others leave the owner. */
static unsigned t2_share(unsigned max)
{
    return max / 4 ? max / 4 : 1;
}

/* Takes one of fs's T2 open slots for uid. Returns 0, or -EMFILE when there is none for it:
 * all max_t2_open are taken, or uid is not the owner and has its share, or the other uids
 * hold all but the owner's share. */
static int t2_slot_take(struct twinfs *fs, uid_t uid)
{
    unsigned max = fs->opt.max_t2_open, share = t2_share(max);
    struct t2_uid_slots *e = NULL;
    int r = -EMFILE;

    pthread_mutex_lock(&fs->t2_slots_lock);
    if (atomic_load(&fs->t2_open) >= max)
        goto out;
    if (uid != fs->uid) {
        if (max > share && fs->t2_others_open >= max - share)
            goto out;
        /* The others hold fewer than max slots, so an entry is free if uid has none. */
        for (unsigned i = 0; i < max; i++) {
            if (fs->t2_others[i].n > 0 && fs->t2_others[i].uid == uid) {
                e = &fs->t2_others[i];
                break;
            }
            if (!e && fs->t2_others[i].n == 0)
                e = &fs->t2_others[i];
        }
        if (!e || e->n >= share)
            goto out;
        e->uid = uid;
        e->n++;
        fs->t2_others_open++;
    }
    atomic_fetch_add(&fs->t2_open, 1);
    r = 0;
out:
    pthread_mutex_unlock(&fs->t2_slots_lock);
    return r;
}

static void t2_slot_give(struct twinfs *fs, uid_t uid)
{
    pthread_mutex_lock(&fs->t2_slots_lock);
    if (uid != fs->uid) {
        for (unsigned i = 0; i < fs->opt.max_t2_open; i++) {
            if (fs->t2_others[i].n > 0 && fs->t2_others[i].uid == uid) {
                fs->t2_others[i].n--;
                fs->t2_others_open--;
                break;
            }
        }
    }
    atomic_fetch_sub(&fs->t2_open, 1);
    pthread_mutex_unlock(&fs->t2_slots_lock);
}

/* A read-write open's request before its first read: where it goes and the data written. */
struct t2_pending {
    char *asset, *type, *name;
    char *data; /* the bytes written, in order; the name is the data when none were */
    size_t len, cap;
    bool append; /* O_APPEND: every write appends, whatever its offset */
    int err;     /* a refused write's errno: the request is never sent, reads get it */
};

static void t2_pending_free(struct t2_pending *p)
{
    if (!p)
        return;
    free(p->asset);
    free(p->type);
    free(p->name);
    free(p->data);
    free(p);
}

/* An open T2 file: one stream, read sequentially. */
struct t2_handle {
    struct open_handle link; /* first: a t2_handle is an open_handle */
    struct twinfs *fs;
    struct node *node;          /* pinned while the file is open */
    uid_t uid;                  /* whose slot it holds */
    struct t2_stream *stream;   /* NULL while pending, and after a request that failed */
    struct t2_pending *pending; /* a read-write open's, until its first read; then NULL */
    pthread_mutex_t lock;       /* one reader or writer at a time; the kernel may use any thread */
    uint64_t pos;
    int err; /* the failure of the request the first read sent: every read gets it */
    /* Where a read's bytes wait for the reply: one buffer per stream, kept from its first read
     * to its close. A stream's reads come to whichever worker the kernel wakes, and a buffer
     * of the stream's own stays in the CPU caches from one read to the next, where one per
     * worker thread would not (docs/performance.md). */
    char *reply;
    size_t reply_cap;
};

static void t2_handle_destroy(struct open_handle *oh)
{
    struct t2_handle *h = (struct t2_handle *)oh;
    /* The release comes once the last read's reply is with the kernel, but that read's worker
     * may still be on its way out of the reply and the unlock: wait for it. */
    pthread_mutex_lock(&h->lock);
    pthread_mutex_unlock(&h->lock);
    t2_stream_close(h->stream);
    free(h->reply);
    t2_pending_free(h->pending); /* closed before any read: no request is sent */
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_lock(&h->fs->tree.lock);
    tree_t2_unpin(&h->fs->tree, h->node);
    pthread_mutex_unlock(&h->fs->tree.lock);
    t2_slot_give(h->fs, h->uid);
    free(h);
}

/* Keeps the twin's Content-Type of stream as n's mime, escaped (control characters, bytes past
 * ASCII) and cut: tools print this xattr. */
static void t2_keep_mime(struct twinfs *fs, struct node *n, const struct t2_stream *stream)
{
    const char *ct = t2_stream_mime(stream);
    char escaped[T2_MIME_MAX + 1];
    text_escape(ct, strlen(ct), escaped, sizeof(escaped), TEXT_ESCAPE_ASCII);
    char *mime = strdup(escaped);
    pthread_mutex_lock(&fs->tree.lock);
    if (mime)
        tree_set_mime(&fs->tree, n, mime);
    pthread_mutex_unlock(&fs->tree.lock);
}

/* The request an open of ino is for: its node, pinned until the release, and where it goes.
 * Returns 0, -ENOENT (gone or not shown) or -ENOMEM (nothing pinned then). */
static int t2_target(struct twinfs *fs, fuse_ino_t ino, struct t2_pending *p, struct node **ret)
{
    int r = 0;

    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    struct node *a = n ? tree_asset_of(n) : NULL;
    if (n && a && node_shown(a)) {
        p->asset = strdup(a->asset.id);
        p->type = strdup(n->parent->name);
        p->name = strdup(n->name);
        if (p->asset && p->type && p->name)
            tree_t2_pin(&fs->tree, n); /* the open's: kept until its release */
        else
            r = -ENOMEM;
    } else {
        r = -ENOENT;
    }
    pthread_mutex_unlock(&fs->tree.lock);
    if (!r)
        *ret = n;
    return r;
}

/* Sends the request of p (the data written, else the name) on h's behalf. Returns 0 or the
 * request's failure as a negative errno. */
static int t2_send(struct twinfs *fs, struct t2_handle *h, const struct t2_pending *p)
{
    enum twin_error te = TWIN_OK;
    const char *data = p->len ? p->data : p->name;
    size_t len = p->len ? p->len : strlen(p->name);

    atomic_fetch_add(&fs->t2_requests, 1);
    /* Blocks this worker until the answer's status is known; the loop has other threads. */
    int r = follower_t2_request(fs->follower, p->asset, p->type, data, len, 0, &h->stream, &te);
    if (r == 0)
        t2_keep_mime(fs, h->node, h->stream);
    return r;
}

void t2_file_open(struct twinfs *fs, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    uid_t uid = fuse_req_ctx(req)->uid;
    bool rw = (fi->flags & O_ACCMODE) == O_RDWR;
    struct t2_pending *p = NULL;
    struct t2_handle *h = NULL;
    struct node *n = NULL;
    int r = t2_slot_take(fs, uid);

    if (r != 0) {
        fuse_reply_err(req, -r);
        return;
    }
    p = calloc(1, sizeof(*p));
    h = calloc(1, sizeof(*h));
    r = p && h ? t2_target(fs, ino, p, &n) : -ENOMEM;
    if (r == 0) {
        h->fs = fs;
        h->node = n;
        if (rw) {
            p->append = (fi->flags & O_APPEND) != 0;
            h->pending = p; /* the first read sends it */
            p = NULL;
        } else {
            r = t2_send(fs, h, p);
        }
    }
    t2_pending_free(p);
    if (r < 0) {
        t2_pending_free(h ? h->pending : NULL);
        free(h);
        if (n) {
            pthread_mutex_lock(&fs->tree.lock);
            tree_t2_unpin(&fs->tree, n);
            pthread_mutex_unlock(&fs->tree.lock);
        }
        t2_slot_give(fs, uid);
        fuse_reply_err(req, -r);
        return;
    }
    pthread_mutex_init(&h->lock, NULL);
    h->uid = uid;
    handles_track(fs, &h->link, t2_handle_destroy);
    fi->fh = (uintptr_t)h;
    fi->direct_io = 1;   /* the size is unknown until the end; writes come straight here */
    fi->nonseekable = 1; /* a stream: reads and writes go forward only */
    fi->noflush = 1;
    if (fuse_reply_open(req, fi) < 0)
        handles_release(fs, &h->link); /* the opener is gone (interrupted): no release comes */
}

/* Adds size bytes of buf, written at off, to p's data: 0, or a negative errno. */
static int t2_pending_add(struct t2_pending *p, size_t max, const char *buf, size_t size, off_t off)
{
    if (!p->append && (off < 0 || (uint64_t)off != p->len))
        return -ESPIPE; /* the data is written in order, from offset 0 */
    if (size > max - p->len)
        return -EFBIG;
    if (size == 0)
        return 0;
    if (p->len + size > p->cap) {
        size_t cap = p->cap ? p->cap : (max < 4096 ? max : 4096);
        while (cap < p->len + size)
            cap = cap > max / 2 ? max : cap * 2;
        char *d = realloc(p->data, cap);
        if (!d)
            return -ENOMEM;
        p->data = d;
        p->cap = cap;
    }
    memcpy(p->data + p->len, buf, size);
    p->len += size;
    return 0;
}

void t2_file_write(struct twinfs *fs, fuse_req_t req, struct open_handle *oh, const char *buf,
                   size_t size, off_t off)
{
    struct t2_handle *h = (struct t2_handle *)oh;
    struct t2_pending *p;
    int r;

    pthread_mutex_lock(&h->lock);
    p = h->pending;
    if (!p) {
        r = -EBADF; /* the first read sent the request: its data is final */
    } else if (p->err) {
        r = -p->err;
    } else {
        r = t2_pending_add(p, fs->opt.t2_max_data, buf, size, off);
        if (r < 0) {
            /* The data is not what the writer meant: never send it. */
            p->err = -r;
            free(p->data);
            p->data = NULL;
            p->len = p->cap = 0;
        }
    }
    pthread_mutex_unlock(&h->lock);
    if (r < 0)
        fuse_reply_err(req, -r);
    else
        fuse_reply_write(req, size);
}

/* The first read of a read-write open, at off: sends its request; a failure is the errno of
 * this read and of every later one. Caller holds h->lock. */
static void t2_send_pending(struct twinfs *fs, struct t2_handle *h, off_t off)
{
    struct t2_pending *p = h->pending;
    int r = p->err ? -p->err : t2_send(fs, h, p);

    h->pending = NULL;
    t2_pending_free(p);     /* the data's memory is core's copy's from now */
    h->pos = (uint64_t)off; /* the writes moved the file position: the answer starts here */
    if (r < 0)
        h->err = -r;
}

/* h's reply buffer with room for size bytes, or NULL without memory. */
static char *reply_buffer(struct t2_handle *h, size_t size)
{
    if (size <= h->reply_cap)
        return h->reply;
    char *p = malloc(size);
    if (!p)
        return NULL;
    free(h->reply);
    h->reply = p;
    h->reply_cap = size;
    return p;
}

/* How long a T2 read waits to fill its request once it has bytes, and how often a read that has
 * none looks for an interrupt or a shutdown. */
#define T2_FILL_WAIT_MS  20
#define T2_IDLE_CHECK_MS 200

void t2_file_read(struct twinfs *fs, fuse_req_t req, struct open_handle *oh, size_t size, off_t off)
{
    struct t2_handle *h = (struct t2_handle *)oh;
    size_t got = 0;
    int err = 0;
    char *buf = NULL;

    /* A stream has no size to honour: a bigger request (pages larger than 4 KiB) gets a short
     * read, which keeps the reply buffer at 1 MiB. */
    if (size > T2_READ_BLKSIZE)
        size = T2_READ_BLKSIZE;
    pthread_mutex_lock(&h->lock);
    if (h->pending)
        t2_send_pending(fs, h, off);
    if ((uint64_t)off != h->pos) {
        err = ESPIPE; /* a stream: only the next byte can be read */
    } else if (h->err) {
        err = h->err;
    } else if (!(buf = reply_buffer(h, size ? size : 1))) {
        err = ENOMEM;
    } else {
        /* Fill the request when the bytes come fast (fewer, larger replies are cheaper), but
         * hold back a byte that arrived for T2_FILL_WAIT_MS at most, however slowly the rest
         * trickles in; and while nothing comes, look up now and then for an interrupt (Ctrl-C
         * of the reader) or the end of the session, so neither waits for a silent provider.
         * A failure after some bytes comes with the next read, and every later one. */
        for (;;) {
            ssize_t r =
                t2_stream_read_fill(h->stream, buf, size, T2_IDLE_CHECK_MS, T2_FILL_WAIT_MS);
            if (r == -EAGAIN) {
                if (fuse_req_interrupted(req) || fuse_session_exited(fs->se)) {
                    err = EINTR;
                    break;
                }
                continue;
            }
            if (r < 0)
                err = r == -ESHUTDOWN ? EIO : (int)-r;
            else
                got = (size_t)r;
            break;
        }
        h->pos += got;
    }
    /* Under the lock, which the release waits for: the buffer lives until the reply is out. */
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_buf(req, buf, got);
    pthread_mutex_unlock(&h->lock);
}
