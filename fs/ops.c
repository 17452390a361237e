/* ops: the FUSE low-level operations (see docs/filesystem.md for the behaviour and the errno
 * table). Handlers hold the tree lock only for tree work, never across a call into the
 * follower or the twin (acks and T2 requests block). */
#include "fs_internal.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "twin/name.h"

const char *const fs_op_names[FS_OP_COUNT] = {
    [FS_OP_INIT] = "init",
    [FS_OP_LOOKUP] = "lookup",
    [FS_OP_FORGET] = "forget",
    [FS_OP_GETATTR] = "getattr",
    [FS_OP_SETATTR] = "setattr",
    [FS_OP_MKNOD] = "mknod",
    [FS_OP_MKDIR] = "mkdir",
    [FS_OP_UNLINK] = "unlink",
    [FS_OP_RMDIR] = "rmdir",
    [FS_OP_SYMLINK] = "symlink",
    [FS_OP_RENAME] = "rename",
    [FS_OP_LINK] = "link",
    [FS_OP_OPEN] = "open",
    [FS_OP_READ] = "read",
    [FS_OP_WRITE] = "write",
    [FS_OP_FLUSH] = "flush",
    [FS_OP_RELEASE] = "release",
    [FS_OP_FSYNC] = "fsync",
    [FS_OP_OPENDIR] = "opendir",
    [FS_OP_READDIR] = "readdir",
    [FS_OP_READDIRPLUS] = "readdirplus",
    [FS_OP_RELEASEDIR] = "releasedir",
    [FS_OP_STATFS] = "statfs",
    [FS_OP_SETXATTR] = "setxattr",
    [FS_OP_GETXATTR] = "getxattr",
    [FS_OP_LISTXATTR] = "listxattr",
    [FS_OP_REMOVEXATTR] = "removexattr",
    [FS_OP_ACCESS] = "access",
    [FS_OP_CREATE] = "create",
    [FS_OP_FALLOCATE] = "fallocate",
    [FS_OP_READLINK] = "readlink",
    [FS_OP_IOCTL] = "ioctl",
};

/* An open status file: a snapshot taken at open. */
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

static struct twinfs *req_fs(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static void count(struct twinfs *fs, enum fs_op op)
{
    atomic_fetch_add_explicit(&fs->ops[op], 1, memory_order_relaxed);
}

static bool is_dir_kind(enum node_kind k)
{
    return k == NODE_ROOT || k == NODE_ASSETS || k == NODE_META || k == NODE_ASSET ||
           k == NODE_EVENTS || k == NODE_T2 || k == NODE_T2_TYPE;
}

static void fill_attr(const struct twinfs *fs, const struct node *n, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = n->ino;
    st->st_uid = fs->uid; /* read once: two syscalls per answer otherwise */
    st->st_gid = fs->gid;
    st->st_blksize = 4096;
    st->st_atime = st->st_mtime = st->st_ctime = n->mtime;
    if (is_dir_kind(n->kind)) {
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return;
    }
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = n->state == NODE_REMOVED ? 0 : 1;
    if (n->kind == NODE_T2_FILE) /* cat and cp read that much at a time */
        st->st_blksize = T2_READ_BLKSIZE;
    if (n->kind == NODE_EVENT) {
        st->st_size = (off_t)n->u.ev.content_len;
        st->st_blocks = (blkcnt_t)((n->u.ev.content_len + 511) / 512);
    }
}

/* Names and attributes of everything but T2 files never change: cache them long. T2 files
 * are asked again at each open; the status file's size is unknown (direct_io). T2 types and
 * names may be dropped by the daemon (tree.h): a later path walk must look them up again. */
static double node_timeout(const struct twinfs *fs, const struct node *n)
{
    if (n->kind == NODE_T2_FILE || n->kind == NODE_T2_TYPE)
        return 0;
    return fs->entry_timeout;
}

static void fill_entry(struct twinfs *fs, const struct node *n, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = n->ino;
    e->generation = 1;
    fill_attr(fs, n, &e->attr);
    e->attr_timeout = node_timeout(fs, n);
    e->entry_timeout = node_timeout(fs, n);
}

static struct node *event_child(struct node *events_dir, const char *name)
{
    uint64_t offset;
    struct node *asset = events_dir->parent;

    if (tree_parse_event_filename(name, &offset) < 0)
        return NULL;
    struct node *n = seqlist_get(&asset->u.as.events, offset);
    if (n && strcmp(n->name, name) == 0)
        return n;
    return NULL;
}

/* The visible child of parent called name, made on demand under t2/; caller holds the lock. */
static struct node *find_child(struct twinfs *fs, struct node *parent, const char *name,
                               int *ret_err)
{
    struct tree *t = &fs->tree;
    struct node *n = NULL;

    *ret_err = ENOENT;
    if (!node_shown(parent))
        return NULL;
    switch (parent->kind) {
    case NODE_ROOT:
        if (strcmp(name, "assets") == 0)
            n = t->assets_dir;
        else if (strcmp(name, ".twinfs") == 0)
            n = t->meta_dir;
        break;
    case NODE_META:
        if (strcmp(name, "status") == 0)
            n = t->status;
        break;
    case NODE_ASSETS:
        n = tree_find_child(t, parent, name);
        break;
    case NODE_ASSET:
        if (strcmp(name, "events") == 0)
            n = parent->u.as.events_dir;
        else if (strcmp(name, "t2") == 0)
            n = parent->u.as.t2_dir;
        break;
    case NODE_EVENTS:
        n = event_child(parent, name);
        break;
    case NODE_T2:
    case NODE_T2_TYPE:
        if (!twin_name_is_safe(name)) {
            *ret_err = EINVAL;
            return NULL;
        }
        n = tree_t2_child(t, parent, name);
        if (!n) {
            *ret_err = ENOMEM;
            return NULL;
        }
        break;
    default:
        *ret_err = ENOTDIR;
        return NULL;
    }
    return node_shown(n) ? n : NULL;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct twinfs *fs = userdata;

    count(fs, FS_OP_INIT);
    /* Always readdirplus: a listing then brings every entry's attributes at once. */
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    /* T2 reads must come in order: no parallel pieces of one direct read. */
    conn->want &= ~FUSE_CAP_ASYNC_DIO;
    materializer_init_done(fs);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct twinfs *fs = req_fs(req);
    struct fuse_entry_param e;
    int err;

    count(fs, FS_OP_LOOKUP);
    /* The kernel hands FUSE names longer than NAME_MAX; no name here has more than 255 bytes
     * (statfs says so), and every other name operation is preceded by this lookup. */
    if (strlen(name) > NAME_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *p = tree_get(&fs->tree, parent);
    struct node *n = p ? find_child(fs, p, name, &err) : NULL;
    if (!p)
        err = ENOENT;
    if (n) {
        n->nlookup++;
        fill_entry(fs, n, &e);
    }
    pthread_mutex_unlock(&fs->tree.lock);
    /* A pending entry answers ENOENT without negative caching, so that the materializer's
     * mknod reaches us. */
    if (!n)
        fuse_reply_err(req, err);
    else
        fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct twinfs *fs = req_fs(req);

    count(fs, FS_OP_FORGET);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n && ino > TREE_INO_STATUS)
        tree_forget(&fs->tree, n, nlookup);
    pthread_mutex_unlock(&fs->tree.lock);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count_, struct fuse_forget_data *forgets)
{
    struct twinfs *fs = req_fs(req);

    count(fs, FS_OP_FORGET);
    pthread_mutex_lock(&fs->tree.lock);
    for (size_t i = 0; i < count_; i++) {
        struct node *n = tree_get(&fs->tree, forgets[i].ino);
        if (n && forgets[i].ino > TREE_INO_STATUS)
            tree_forget(&fs->tree, n, forgets[i].nlookup);
    }
    pthread_mutex_unlock(&fs->tree.lock);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct twinfs *fs = req_fs(req);
    struct stat st;
    double timeout = 0;

    count(fs, FS_OP_GETATTR);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n) {
        fill_attr(fs, n, &st);
        timeout = node_timeout(fs, n);
    }
    pthread_mutex_unlock(&fs->tree.lock);
    if (!n)
        fuse_reply_err(req, ENOENT);
    else
        fuse_reply_attr(req, &st, timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_SETATTR);
    fuse_reply_err(req, EROFS);
}

static bool is_materializer(struct twinfs *fs, fuse_req_t req)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    int pid = atomic_load(&fs->mat_pid);

    return pid > 0 && ctx->pid == pid;
}

static void show_event(struct twinfs *fs, struct node *n)
{
    n->state = NODE_VISIBLE;
    fs->tree.visible_events++;
}

static void show_asset(struct twinfs *fs, struct node *n)
{
    n->state = NODE_VISIBLE;
    n->u.as.events_dir->state = NODE_VISIBLE;
    n->u.as.t2_dir->state = NODE_VISIBLE;
    n->u.as.was_visible = true;
    clock_gettime(CLOCK_MONOTONIC, &n->u.as.visible_at);
    fs->tree.visible_assets++;
}

/* Answers the materializer's mknod or mkdir of n, found under the tree lock (released here):
 * a pending node is shown and its entry returned; EEXIST if it is shown already, ENOENT if
 * there is no such node. */
static void reply_materialized(struct twinfs *fs, fuse_req_t req, struct node *n,
                               void (*show)(struct twinfs *fs, struct node *n))
{
    struct fuse_entry_param e;
    int err = 0;

    if (n && n->state == NODE_PENDING) {
        show(fs, n);
        n->nlookup++;
        fill_entry(fs, n, &e);
    } else {
        err = n ? EEXIST : ENOENT;
    }
    pthread_mutex_unlock(&fs->tree.lock);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    struct twinfs *fs = req_fs(req);

    count(fs, FS_OP_MKNOD);
    if (!is_materializer(fs, req)) {
        fuse_reply_err(req, EROFS); /* a user's create */
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *p = tree_get(&fs->tree, parent);
    struct node *n = p && p->kind == NODE_EVENTS && node_shown(p) ? event_child(p, name) : NULL;
    reply_materialized(fs, req, n, show_event);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct twinfs *fs = req_fs(req);

    count(fs, FS_OP_MKDIR);
    if (!is_materializer(fs, req)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n =
        parent == TREE_INO_ASSETS ? tree_find_child(&fs->tree, fs->tree.assets_dir, name) : NULL;
    reply_materialized(fs, req, n, show_asset);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct twinfs *fs = req_fs(req);
    uint64_t seq = 0, offset = 0;
    char *asset = NULL;
    int err = 0;

    count(fs, FS_OP_UNLINK);
    /* With allow_other, other users may read, but an ack is the owner's (or root's): the
     * directories say r-x, and without default_permissions the kernel leaves that to us. */
    uid_t caller = fuse_req_ctx(req)->uid;
    if (caller != fs->uid && caller != 0) {
        fuse_reply_err(req, EACCES);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *p = tree_get(&fs->tree, parent);
    if (!p || p->kind != NODE_EVENTS) {
        err = EPERM; /* only events are removable: removing one is its ack */
    } else {
        struct node *n = node_shown(p) ? event_child(p, name) : NULL;
        if (!node_shown(n)) {
            err = ENOENT; /* never shown, already acked, or another unlink is acking it */
        } else {
            asset = strdup(p->parent->name);
            if (!asset) {
                err = ENOMEM;
            } else {
                /* Out of sight under the lock: of racing unlinks exactly one gets here. */
                n->state = NODE_ACKING;
                fs->tree.visible_events--;
                seq = n->u.ev.seq;
                offset = n->u.ev.offset;
            }
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
    struct node *asset_node = tree_find_child(&fs->tree, fs->tree.assets_dir, asset);
    struct node *n = asset_node ? seqlist_get(&asset_node->u.as.events, offset) : NULL;
    if (n && n->state == NODE_ACKING) {
        if (r == 0) {
            seqlist_remove(&asset_node->u.as.events, offset);
            tree_unlink_node(&fs->tree, n);
        } else {
            n->state = NODE_VISIBLE; /* the ack is not on disk: the event stays */
            fs->tree.visible_events++;
        }
    }
    /* else the asset was deleted meanwhile: the event went with it. */
    pthread_mutex_unlock(&fs->tree.lock);
    if (r < 0)
        fs_log(fs, LOG_ERR, "ack %s/%" PRIu64 ": %s", asset, offset, strerror(-r));
    free(asset);
    fuse_reply_err(req, r < 0 ? EIO : 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    count(req_fs(req), FS_OP_RMDIR);
    fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    count(req_fs(req), FS_OP_SYMLINK);
    fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    count(req_fs(req), FS_OP_RENAME);
    fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    count(req_fs(req), FS_OP_LINK);
    fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_CREATE);
    fuse_reply_err(req, EROFS);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    count(req_fs(req), FS_OP_READLINK);
    fuse_reply_err(req, EINVAL); /* there are no symlinks */
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct twinfs *fs = req_fs(req);
    enum node_kind kind;
    int err = 0;

    count(fs, FS_OP_OPEN);
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (!n || (n->kind == NODE_EVENT && !n->u.ev.content))
        err = ENOENT; /* gone, or acked: its bytes are gone */
    kind = n ? n->kind : NODE_ROOT;
    pthread_mutex_unlock(&fs->tree.lock);
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

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct twinfs *fs = req_fs(req);

    count(fs, FS_OP_READ);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n && n->kind == NODE_EVENT) {
        /* Normally served from the page cache; here when it was dropped. */
        char *copy = NULL;
        size_t len = n->u.ev.content_len;
        if (n->u.ev.content && off >= 0 && (size_t)off < len) {
            size_t want = len - (size_t)off < size ? len - (size_t)off : size;
            copy = malloc(want);
            if (copy)
                memcpy(copy, n->u.ev.content + off, want);
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

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_WRITE);
    fuse_reply_err(req, EROFS);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_FLUSH);
    fuse_reply_err(req, ENOSYS); /* nothing to flush: the kernel stops sending it */
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_FSYNC);
    fuse_reply_err(req, ENOSYS);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct twinfs *fs = req_fs(req);

    count(fs, FS_OP_RELEASE);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    enum node_kind kind = n ? n->kind : NODE_ROOT;
    pthread_mutex_unlock(&fs->tree.lock);
    if ((kind == NODE_STATUS || kind == NODE_T2_FILE) && fi->fh)
        handles_release(fs, (struct open_handle *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_OPENDIR);
    /* Directories need no state (readdir cookies are keys), but answering ENOSYS would let the
     * kernel cache listings (FOPEN_CACHE_DIR), and the long soak saw a listing started after an
     * ack returned still show the acked event. One request per listing buys listings that are
     * always the daemon's own. */
    fi->cache_readdir = 0;
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_RELEASEDIR);
    fuse_reply_err(req, 0);
}

/* Adds one entry; returns false when the buffer is full. Caller holds the lock. */
static bool add_entry(struct twinfs *fs, fuse_req_t req, char *buf, size_t size, size_t *used,
                      bool plus, const char *name, struct node *n, bool dot, off_t cookie)
{
    size_t need;

    if (plus) {
        struct fuse_entry_param e;
        fill_entry(fs, n, &e);
        if (dot)
            e.ino = 0; /* the kernel takes no lookup on "." and ".." */
        need = fuse_add_direntry_plus(req, buf + *used, size - *used, name, &e, cookie);
        if (need > size - *used)
            return false;
        if (!dot)
            n->nlookup++;
    } else {
        struct stat st;
        fill_attr(fs, n, &st);
        need = fuse_add_direntry(req, buf + *used, size - *used, name, &st, cookie);
        if (need > size - *used)
            return false;
    }
    *used += need;
    return true;
}

/* Entries carry the cookie key + 3 (1 and 2 are "." and ".."); listing from cookie c resumes
 * at the first key >= c - 2, so entries removed meanwhile neither shift nor repeat others.
 * Keys are offsets, at most 2^53 - 1 (core refuses larger ones as bad records), or arrival
 * serials, so key + 3 fits off_t; a key beyond that would wrap the cookie negative and
 * restart the listing forever, so it ends the listing instead. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
    struct twinfs *fs = req_fs(req);
    char *buf = malloc(size);
    size_t used = 0;
    int err = 0;

    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct tree *t = &fs->tree;
    struct node *d = tree_get(t, ino);
    if (!d || !node_shown(d)) {
        err = ENOENT;
        goto out;
    }
    if (!is_dir_kind(d->kind)) {
        err = ENOTDIR;
        goto out;
    }
    if (off < 1 && !add_entry(fs, req, buf, size, &used, plus, ".", d, true, 1))
        goto out;
    if (off < 2 &&
        !add_entry(fs, req, buf, size, &used, plus, "..", d->parent ? d->parent : d, true, 2))
        goto out;
    uint64_t from = off >= 2 ? (uint64_t)off - 2 : 0;
    struct node *asset = d->kind == NODE_EVENTS ? tree_asset_of(d) : NULL;
    if (d->kind == NODE_ASSETS || asset) {
        struct seqlist *l = asset ? &asset->u.as.events : &t->assets;
        for (size_t i = seqlist_next_live(l, seqlist_lower_bound(l, from)); i < l->len;
             i = seqlist_next_live(l, i + 1)) {
            struct node *n = l->v[i].ptr;
            if (l->v[i].key > (uint64_t)INT64_MAX - 3)
                break;
            if (!node_shown(n))
                continue;
            if (!add_entry(fs, req, buf, size, &used, plus, n->name, n, false,
                           (off_t)(l->v[i].key + 3)))
                break;
        }
    } else {
        struct node *fixed[2] = {NULL, NULL};
        if (d->kind == NODE_ROOT) {
            fixed[0] = t->assets_dir;
            fixed[1] = t->meta_dir;
        } else if (d->kind == NODE_META) {
            fixed[0] = t->status;
        } else if (d->kind == NODE_ASSET) {
            fixed[0] = d->u.as.events_dir;
            fixed[1] = d->u.as.t2_dir;
        }
        for (uint64_t i = from; i < 2; i++) {
            if (fixed[i] && !add_entry(fs, req, buf, size, &used, plus, fixed[i]->name, fixed[i],
                                       false, (off_t)(i + 3)))
                break;
        }
    }
out:
    pthread_mutex_unlock(&fs->tree.lock);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_READDIR);
    do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_READDIRPLUS);
    do_readdir(req, ino, size, off, true);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct twinfs *fs = req_fs(req);
    struct statvfs st;

    count(fs, FS_OP_STATFS);
    memset(&st, 0, sizeof(st));
    st.f_bsize = 4096;
    st.f_frsize = 4096;
    st.f_namemax = 255;
    pthread_mutex_lock(&fs->tree.lock);
    st.f_files = fs->tree.ino_count;
    pthread_mutex_unlock(&fs->tree.lock);
    st.f_flag = ST_RDONLY;
    fuse_reply_statfs(req, &st);
}

/* Appends "key\0" to a listxattr list or, for getxattr, writes the value of the wanted key.
 * The attributes of node n, one at a time; caller holds the lock. */
struct xattr_walk {
    const char *want; /* getxattr: the key; listxattr: NULL */
    char *list;       /* listxattr output */
    size_t list_len;
    size_t list_cap;
    char *value; /* getxattr: the value found (malloc'd) */
    size_t value_len;
};

static void xattr_put(struct xattr_walk *w, const char *key, const char *value)
{
    if (!value)
        return;
    if (w->want) {
        if (!w->value && strcmp(w->want, key) == 0) {
            w->value = strdup(value);
            w->value_len = w->value ? strlen(value) : 0;
        }
        return;
    }
    size_t klen = strlen(key) + 1;
    if (w->list_len + klen > w->list_cap) {
        size_t ncap = (w->list_cap + klen) * 2;
        char *nl = realloc(w->list, ncap);
        if (!nl)
            return;
        w->list = nl;
        w->list_cap = ncap;
    }
    memcpy(w->list + w->list_len, key, klen);
    w->list_len += klen;
}

static void xattr_walk_node(struct node *n, struct xattr_walk *w)
{
    char num[32];

    if (n->kind == NODE_EVENT) {
        struct node *a = tree_asset_of(n);
        xattr_put(w, "user.twin.asset", a ? a->name : NULL);
        snprintf(num, sizeof(num), "%" PRIu64, n->u.ev.offset);
        xattr_put(w, "user.twin.offset", num);
        xattr_put(w, "user.twin.name", n->u.ev.type_name);
        snprintf(num, sizeof(num), "%d", n->u.ev.version);
        xattr_put(w, "user.twin.version", num);
        xattr_put(w, "user.twin.time", n->u.ev.time);
        xattr_put(w, "user.twin.source", n->u.ev.source);
        snprintf(num, sizeof(num), "%" PRIu64, n->u.ev.seq);
        xattr_put(w, "user.twin.seq", num);
    } else if (n->kind == NODE_ASSET) {
        xattr_put(w, "user.twin.asset", n->name);
    } else if (n->kind == NODE_T2_FILE) {
        xattr_put(w, T2_XATTR_MIME, n->mime);
    }
}

/* twinfs keeps attributes in the user namespace only. Any other namespace (security.selinux,
 * system.posix_acl_access, trusted.*) is "not supported here", EOPNOTSUPP, not "absent",
 * ENODATA: `ls -l` asks for the SELinux label and the ACL of every file, and on EOPNOTSUPP
 * it stops asking for the rest of the device (coreutils' per-device cache), where ENODATA
 * costs two or three round trips per file. */
static bool xattr_namespace_supported(const char *name)
{
    return strncmp(name, "user.", 5) == 0;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct twinfs *fs = req_fs(req);
    struct xattr_walk w = {.want = name};

    count(fs, FS_OP_GETXATTR);
    if (!xattr_namespace_supported(name)) {
        fuse_reply_err(req, EOPNOTSUPP);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n)
        xattr_walk_node(n, &w);
    pthread_mutex_unlock(&fs->tree.lock);
    if (!n)
        fuse_reply_err(req, ENOENT);
    else if (!w.value)
        fuse_reply_err(req, ENODATA);
    else if (size == 0)
        fuse_reply_xattr(req, w.value_len);
    else if (size < w.value_len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, w.value, w.value_len);
    free(w.value);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct twinfs *fs = req_fs(req);
    struct xattr_walk w = {0};

    count(fs, FS_OP_LISTXATTR);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n)
        xattr_walk_node(n, &w);
    pthread_mutex_unlock(&fs->tree.lock);
    if (!n)
        fuse_reply_err(req, ENOENT);
    else if (size == 0)
        fuse_reply_xattr(req, w.list_len);
    else if (size < w.list_len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, w.list, w.list_len);
    free(w.list);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    count(req_fs(req), FS_OP_SETXATTR);
    fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    count(req_fs(req), FS_OP_REMOVEXATTR);
    fuse_reply_err(req, EROFS);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    count(req_fs(req), FS_OP_ACCESS);
    fuse_reply_err(req, (mask & W_OK) ? EROFS : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
    count(req_fs(req), FS_OP_FALLOCATE);
    fuse_reply_err(req, EROFS);
}

/* No file here takes an ioctl. Answered here rather than by libfuse so that it is counted:
 * Python's open() asks isatty() (TCGETS) of every file, one request per open. ENOTTY is what
 * the kernel made of libfuse's ENOSYS, so callers see no change. */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
                     struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
                     size_t out_bufsz)
{
    count(req_fs(req), FS_OP_IOCTL);
    fuse_reply_err(req, ENOTTY);
}

static const struct fuse_lowlevel_ops twinfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .access = op_access,
    .create = op_create,
    .fallocate = op_fallocate,
    .ioctl = op_ioctl,
};

const struct fuse_lowlevel_ops *twinfs_lowlevel_ops(void)
{
    return &twinfs_ops;
}
