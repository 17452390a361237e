/* ops_dir: directories: opendir and readdir. */
#include "ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    ops_count_request(ops_fs(req), FS_OP_OPENDIR);
    /* Answered, not ENOSYS (which lets the kernel cache listings): a listing started after an
     * ack returned never shows the acked event. */
    fi->cache_readdir = 0;
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    ops_count_request(ops_fs(req), FS_OP_RELEASEDIR);
    fuse_reply_err(req, 0);
}

/* Adds one entry; returns false when the buffer is full. Caller holds the lock. */
static bool add_entry(struct twinfs *fs, fuse_req_t req, char *buf, size_t size, size_t *used,
                      bool plus, const char *name, struct node *n, bool dot, off_t cookie)
{
    size_t need;

    if (plus) {
        struct fuse_entry_param e;
        ops_fill_entry(fs, n, &e);
        if (dot)
            e.ino = 0; /* the kernel takes no lookup on "." and ".." */
        need = fuse_add_direntry_plus(req, buf + *used, size - *used, name, &e, cookie);
        if (need > size - *used)
            return false;
        if (!dot)
            tree_lookup_ref(&fs->tree, n);
    } else {
        struct stat st;
        ops_fill_attr(fs, n, &st);
        need = fuse_add_direntry(req, buf + *used, size - *used, name, &st, cookie);
        if (need > size - *used)
            return false;
    }
    *used += need;
    return true;
}

/* The entries of a directory with fixed children, from index from on. Caller holds the lock. */
static void add_fixed(struct twinfs *fs, fuse_req_t req, char *buf, size_t size, size_t *used,
                      bool plus, struct node *d, uint64_t from)
{
    struct tree *t = &fs->tree;
    struct node *fixed[3] = {NULL, NULL, NULL};

    if (d->kind == NODE_ROOT) {
        fixed[0] = t->assets_dir;
        fixed[1] = t->all_events_dir;
        fixed[2] = t->meta_dir;
    } else if (d->kind == NODE_META) {
        fixed[0] = t->status;
    } else if (d->kind == NODE_ASSET) {
        fixed[0] = d->asset.events_dir;
        fixed[1] = d->asset.t2_dir;
    }
    for (uint64_t i = from; i < 3; i++) {
        if (node_shown(fixed[i]) && !add_entry(fs, req, buf, size, used, plus, fixed[i]->name,
                                               fixed[i], false, (off_t)(i + 3)))
            break;
    }
}

/* Entries carry the cookie key + 3 (1 and 2 are "." and ".."); listing from cookie c resumes
 * at the first key >= c - 2, so entries removed meanwhile neither shift nor repeat others.
 * Keys are offsets, at most 2^53 - 1 (core refuses larger ones as bad records), or arrival
 * serials, so key + 3 fits off_t; a key beyond that would wrap the cookie negative and
 * restart the listing forever, so it ends the listing instead. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
    struct twinfs *fs = ops_fs(req);
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
    if (!ops_is_dir(d->kind)) {
        err = ENOTDIR;
        goto out;
    }
    if (off < 1 && !add_entry(fs, req, buf, size, &used, plus, ".", d, true, 1))
        goto out;
    if (off < 2 &&
        !add_entry(fs, req, buf, size, &used, plus, "..", d->parent ? d->parent : d, true, 2))
        goto out;
    uint64_t from = off >= 2 ? (uint64_t)off - 2 : 0;
    if (d->kind == NODE_ASSETS || d->kind == NODE_EVENTS || d->kind == NODE_ALL_EVENTS) {
        unsigned link = d->kind == NODE_ALL_EVENTS ? NODE_LINK_FLAT : NODE_LINK_MAIN;
        uint64_t key;
        for (struct node *n = tree_dir_next(t, d, from, &key); n;
             n = tree_dir_next(t, d, key + 1, &key)) {
            if (key > (uint64_t)INT64_MAX - 3)
                break;
            const char *name = n->kind == NODE_EVENT ? tree_event_name_in(n, d) : n->name;
            if (node_seen(n, link, false) &&
                !add_entry(fs, req, buf, size, &used, plus, name, n, false, (off_t)(key + 3)))
                break;
        }
    } else {
        add_fixed(fs, req, buf, size, &used, plus, d, from);
    }
out:
    pthread_mutex_unlock(&fs->tree.lock);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_buf(req, buf, used);
    free(buf);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    ops_count_request(ops_fs(req), FS_OP_READDIR);
    do_readdir(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    ops_count_request(ops_fs(req), FS_OP_READDIRPLUS);
    do_readdir(req, ino, size, off, true);
}
