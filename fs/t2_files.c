/* t2_files: the files under assets/A/t2/TYPE/: open sends the Type 2 request (the open's errno
 * is the request's failure), reads stream its answer in order, release closes the stream. */
#include "fs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "t2_stream.h"
#include "text.h"

/* The longest user.twin.mime: a media type is short (RFC 6838 caps its names at 127 bytes). */
#define T2_MIME_MAX 255

/* An open T2 file: one stream, read sequentially. */
struct t2_handle {
    struct open_handle link; /* first: a t2_handle is an open_handle */
    struct twinfs *fs;
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
    atomic_fetch_sub(&h->fs->t2_open, 1);
    free(h);
}

void t2_file_open(struct twinfs *fs, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    unsigned max = fs->opt.max_t2_open ? fs->opt.max_t2_open : 64;
    char *asset = NULL, *type = NULL, *name = NULL;
    struct t2_handle *h = NULL;
    enum twin_error te = TWIN_OK;
    int r = 0;

    if (atomic_fetch_add(&fs->t2_open, 1) >= max) {
        atomic_fetch_sub(&fs->t2_open, 1);
        fuse_reply_err(req, EMFILE);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    struct node *a = n ? tree_asset_of(n) : NULL;
    if (n && a && node_shown(a)) {
        asset = strdup(a->name);
        type = strdup(n->parent->name);
        name = strdup(n->name);
    } else {
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
        atomic_fetch_sub(&fs->t2_open, 1);
        fuse_reply_err(req, -r);
        goto out;
    }
    pthread_mutex_init(&h->lock, NULL);
    h->fs = fs;
    handles_track(fs, &h->link, t2_handle_destroy);
    /* The twin's Content-Type, escaped (control characters, bytes past ASCII) and cut:
     * tools print this xattr. */
    const char *ct = t2_stream_mime(h->stream);
    char escaped[T2_MIME_MAX + 1];
    text_escape(ct, strlen(ct), escaped, sizeof(escaped), TEXT_ESCAPE_ASCII);
    char *mime = strdup(escaped);
    pthread_mutex_lock(&fs->tree.lock);
    n = tree_get(&fs->tree, ino);
    if (n && mime) {
        free(n->mime);
        n->mime = mime;
        mime = NULL;
    }
    pthread_mutex_unlock(&fs->tree.lock);
    free(mime);
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
