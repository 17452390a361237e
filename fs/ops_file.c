/* ops_file: opening and reading event and status files, and the unlink that acks an event
 * through either of its names (T2 files: t2_files.c). */
#include "ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <inttypes.h>
#include <syslog.h>

/* An open status file: a snapshot taken at open, read whole by every read of this open. */
struct status_handle {
    struct open_handle link; /* first: a status_handle is an open_handle */
    char *text;
    size_t len;
};

static void status_handle_destroy(struct open_handle *oh)
{
    struct status_handle *h = (struct status_handle *)oh;
    free(h->text);
    free(h);
}

/* Where an unlink becomes an ack: of either name of an event. The other name goes through the
 * mount afterwards (the materializer), so that its directory's watchers see IN_DELETE too. */
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct twinfs *fs = ops_fs(req);
    uint64_t seq = 0, offset = 0, ino = 0;
    unsigned link = NODE_LINK_MAIN;
    char *asset = NULL;
    int err = 0;

    ops_count_request(fs, FS_OP_UNLINK);
    if (ops_from_materializer(fs, req)) {
        ops_unlink_materialized(fs, req, parent, name);
        return;
    }
    if (fs->opt.read_only) {
        fuse_reply_err(req, EROFS); /* -o ro: browsing, never acking */
        return;
    }
    /* With allow_other, other users may read, but an ack is the owner's (or root's): the
     * directories say r-x, and without default_permissions the kernel leaves that to us. */
    uid_t caller = fuse_req_ctx(req)->uid;
    if (caller != fs->uid && caller != 0) {
        fuse_reply_err(req, EACCES);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *p = tree_get(&fs->tree, parent);
    if (!p || (p->kind != NODE_EVENTS && p->kind != NODE_ALL_EVENTS)) {
        err = EPERM; /* only events are removable: removing one is its ack */
    } else {
        link = p->kind == NODE_ALL_EVENTS ? NODE_LINK_FLAT : NODE_LINK_MAIN;
        struct node *n = tree_event_find(&fs->tree, p, name);
        bool seen = node_seen(n, link, false);
        asset = seen ? strdup(n->parent->parent->asset.id) : NULL;
        if (!seen) {
            err = ENOENT; /* never shown, already acked, or another unlink is acking it */
        } else if (!asset) {
            err = ENOMEM;
        } else {
            /* Out of sight under the lock: of racing unlinks exactly one gets here. */
            tree_ack_begin(&fs->tree, n);
            seq = n->event.seq;
            offset = n->event.offset;
            ino = n->ino;
        }
    }
    pthread_mutex_unlock(&fs->tree.lock);
    if (err) {
        fuse_reply_err(req, err);
        return;
    }

    int r = follower_ack(fs->follower, seq, asset, offset);
    if (r == -EALREADY)
        r = 0;

    pthread_mutex_lock(&fs->tree.lock);
    /* The kernel holds a lookup on the node while it unlinks one of its names. */
    struct node *n = tree_get(&fs->tree, ino);
    if (n && tree_ack_end(&fs->tree, n, link, r == 0) != 0 && r == 0)
        materializer_enqueue(fs->mat, n); /* its other name */
    pthread_mutex_unlock(&fs->tree.lock);
    if (r < 0)
        fs_log(fs->log, LOG_ERR, "ack %s/%" PRIu64 ": %s", asset, offset, strerror(-r));
    free(asset);
    fuse_reply_err(req, r < 0 ? EIO : 0);
}

/* A write open: the materializer's caller opens an event's new name to close it, which fires
 * IN_CLOSE_WRITE; nothing is written. A user's gets EROFS. */
static void open_for_close_write(struct twinfs *fs, fuse_req_t req, enum node_kind kind,
                                 struct fuse_file_info *fi)
{
    if (!ops_from_materializer(fs, req) || (fi->flags & O_TRUNC) || kind != NODE_EVENT) {
        fuse_reply_err(req, EROFS);
        return;
    }
    fi->keep_cache = 1;
    fi->noflush = 1;
    fuse_reply_open(req, fi);
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct twinfs *fs = ops_fs(req);
    enum node_kind kind;
    int err = 0;

    ops_count_request(fs, FS_OP_OPEN);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (!n || (n->kind == NODE_EVENT && !n->event.content))
        err = ENOENT; /* gone, or acked: its bytes are gone */
    kind = n ? n->kind : NODE_ROOT;
    pthread_mutex_unlock(&fs->tree.lock);
    if (kind == NODE_T2_FILE && (fi->flags & O_ACCMODE) != O_RDONLY) {
        /* Read-write: the writes are the request data (O_TRUNC, O_CREAT change nothing);
         * write-only could never read the answer. */
        if ((fi->flags & O_ACCMODE) == O_RDWR)
            t2_file_open(fs, req, ino, fi);
        else
            fuse_reply_err(req, EINVAL);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        open_for_close_write(fs, req, kind, fi);
        return;
    }
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    switch (kind) {
    case NODE_EVENT:
        /* The bytes never change and were pushed into the page cache: keep them. */
        fi->keep_cache = 1;
        fi->noflush = 1;
        fuse_reply_open(req, fi);
        return;
    case NODE_STATUS: {
        struct status_handle *h = calloc(1, sizeof(*h));
        if (h)
            h->text = status_render(fs, &h->len);
        if (!h || !h->text) {
            free(h);
            fuse_reply_err(req, ENOMEM);
            return;
        }
        handles_track(fs, &h->link, status_handle_destroy);
        fi->fh = (uintptr_t)h;
        /* Reads come here, to this open's snapshot, never to another open's cached pages;
         * splice and sendfile still work (the kernel copies through a buffer). All snapshots
         * have the size stat shows. */
        fi->direct_io = 1;
        fi->noflush = 1;
        if (fuse_reply_open(req, fi) < 0)
            handles_release(fs, &h->link);
        return;
    }
    case NODE_T2_FILE:
        t2_file_open(fs, req, ino, fi);
        return;
    default:
        fuse_reply_err(req, EISDIR);
        return;
    }
}

/* Replies from a copy of the slice, not from buf: once the reply is written the reader may
 * close and another worker free buf (the release) while this thread is still inside writev's
 * return path; ASan's writev interceptor checks the buffer then and reports it. */
static void reply_slice(fuse_req_t req, const char *buf, size_t len, size_t size, off_t off)
{
    if (off < 0 || (size_t)off >= len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t want = len - (size_t)off < size ? len - (size_t)off : size;
    char *copy = malloc(want);
    if (!copy) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    memcpy(copy, buf + off, want);
    fuse_reply_buf(req, copy, want);
    free(copy);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct twinfs *fs = ops_fs(req);

    ops_count_request(fs, FS_OP_READ);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n && n->kind == NODE_EVENT) {
        /* Normally served from the page cache; here when it was dropped. */
        char *copy = NULL;
        size_t len = n->event.content_len;
        if (n->event.content && off >= 0 && (size_t)off < len) {
            size_t want = len - (size_t)off < size ? len - (size_t)off : size;
            copy = malloc(want);
            if (copy)
                memcpy(copy, n->event.content + off, want);
            len = want;
        } else {
            len = 0;
        }
        pthread_mutex_unlock(&fs->tree.lock);
        fuse_reply_buf(req, copy, copy ? len : 0);
        free(copy);
        return;
    }
    enum node_kind kind = n ? n->kind : NODE_ROOT;
    pthread_mutex_unlock(&fs->tree.lock);
    if (kind == NODE_STATUS && fi->fh) {
        struct status_handle *h = (struct status_handle *)(uintptr_t)fi->fh;
        reply_slice(req, h->text, h->len, size, off);
    } else if (kind == NODE_T2_FILE && fi->fh) {
        t2_file_read(fs, req, (struct open_handle *)(uintptr_t)fi->fh, size, off);
    } else {
        fuse_reply_err(req, EBADF);
    }
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct twinfs *fs = ops_fs(req);

    ops_count_request(fs, FS_OP_RELEASE);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    enum node_kind kind = n ? n->kind : NODE_ROOT;
    pthread_mutex_unlock(&fs->tree.lock);
    if ((kind == NODE_STATUS || kind == NODE_T2_FILE) && fi->fh)
        handles_release(fs, (struct open_handle *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}
