/* t2_files: the files under assets/A/t2/TYPE/: open sends the Type 2 request (the open's errno
 * is the request's failure), reads stream its answer in order, release closes the stream. */
#include "fs_internal.h"

#include <errno.h>
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

/* An open T2 file: one stream, read sequentially. */
struct t2_handle {
    struct open_handle link; /* first: a t2_handle is an open_handle */
    struct twinfs *fs;
    struct node *node; /* pinned while the file is open */
    uid_t uid;         /* whose slot it holds */
    struct t2_stream *stream;
    pthread_mutex_t lock; /* one reader at a time; the kernel may send reads on any thread */
    uint64_t pos;
    int err; /* a failure seen after some bytes were returned: the next read gets it */
};

static void t2_handle_destroy(struct open_handle *oh)
{
    struct t2_handle *h = (struct t2_handle *)oh;
    t2_stream_close(h->stream);
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_lock(&h->fs->tree.lock);
    tree_t2_unpin(&h->fs->tree, h->node);
    pthread_mutex_unlock(&h->fs->tree.lock);
    t2_slot_give(h->fs, h->uid);
    free(h);
}

void t2_file_open(struct twinfs *fs, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    uid_t uid = fuse_req_ctx(req)->uid;
    char *asset = NULL, *type = NULL, *name = NULL;
    struct t2_handle *h = NULL;
    enum twin_error te = TWIN_OK;
    int r = t2_slot_take(fs, uid);

    if (r != 0) {
        fuse_reply_err(req, -r);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    struct node *a = n ? tree_asset_of(n) : NULL;
    if (n && a && node_shown(a)) {
        asset = strdup(a->asset.id);
        type = strdup(n->parent->name);
        name = strdup(n->name);
        tree_t2_pin(&fs->tree, n); /* the open's: kept until its release */
    } else {
        n = NULL;
        r = -ENOENT;
    }
    pthread_mutex_unlock(&fs->tree.lock);
    if (!r && (!asset || !type || !name))
        r = -ENOMEM;
    if (!r) {
        h = calloc(1, sizeof(*h));
        if (!h)
            r = -ENOMEM;
    }
    if (!r) {
        atomic_fetch_add(&fs->t2_requests, 1);
        /* Blocks this worker until the answer's status is known; the loop has other threads. */
        r = follower_t2_request(fs->follower, asset, type, name, strlen(name), 0, &h->stream, &te);
    }
    if (r < 0) {
        free(h);
        if (n) {
            pthread_mutex_lock(&fs->tree.lock);
            tree_t2_unpin(&fs->tree, n);
            pthread_mutex_unlock(&fs->tree.lock);
        }
        t2_slot_give(fs, uid);
        fuse_reply_err(req, -r);
        goto out;
    }
    pthread_mutex_init(&h->lock, NULL);
    h->fs = fs;
    h->node = n;
    h->uid = uid;
    handles_track(fs, &h->link, t2_handle_destroy);
    /* The twin's Content-Type, escaped (control characters, bytes past ASCII) and cut:
     * tools print this xattr. */
    const char *ct = t2_stream_mime(h->stream);
    char escaped[T2_MIME_MAX + 1];
    text_escape(ct, strlen(ct), escaped, sizeof(escaped), TEXT_ESCAPE_ASCII);
    char *mime = strdup(escaped);
    pthread_mutex_lock(&fs->tree.lock);
    if (mime)
        tree_set_mime(&fs->tree, n, mime);
    pthread_mutex_unlock(&fs->tree.lock);
    fi->fh = (uintptr_t)h;
    fi->direct_io = 1;   /* the size is unknown until the end */
    fi->nonseekable = 1; /* a stream: reads go forward only */
    fi->noflush = 1;
    if (fuse_reply_open(req, fi) < 0)
        handles_release(fs, &h->link); /* the opener is gone (interrupted): no release comes */
out:
    free(asset);
    free(type);
    free(name);
}

/* How long a T2 read waits to fill its request once it has bytes, and how often a read that has
 * none looks for an interrupt or a shutdown. */
#define T2_FILL_WAIT_MS  20
#define T2_IDLE_CHECK_MS 200

void t2_file_read(struct twinfs *fs, fuse_req_t req, struct open_handle *oh, size_t size, off_t off)
{
    struct t2_handle *h = (struct t2_handle *)oh;
    char *buf = malloc(size ? size : 1);
    size_t got = 0;
    int err = 0;

    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_lock(&h->lock);
    if ((uint64_t)off != h->pos) {
        err = ESPIPE; /* a stream: only the next byte can be read */
    } else if (h->err) {
        err = h->err;
    } else {
        /* Fill the request when the bytes come fast (fewer, larger replies are cheaper), but
         * never hold back bytes that arrived from a slow provider for more than a moment; and
         * while nothing comes, look up now and then for an interrupt (Ctrl-C of the reader)
         * or the end of the session, so neither waits for a silent provider. */
        while (got < size) {
            ssize_t r = t2_stream_read_timed(h->stream, buf + got, size - got,
                                             got ? T2_FILL_WAIT_MS : T2_IDLE_CHECK_MS);
            if (r == -EAGAIN) {
                if (got)
                    break;
                if (fuse_req_interrupted(req) || fuse_session_exited(fs->se)) {
                    err = EINTR;
                    break;
                }
                continue;
            }
            if (r == 0)
                break;
            if (r < 0) {
                if (got == 0)
                    err = r == -ESHUTDOWN ? EIO : (int)-r;
                else
                    h->err = r == -ESHUTDOWN ? EIO : (int)-r;
                break;
            }
            got += (size_t)r;
        }
        h->pos += got;
    }
    pthread_mutex_unlock(&h->lock);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_buf(req, buf, got);
    free(buf);
}
