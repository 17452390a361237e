/* ops_materialize: the requests of the materializer's caller process (materializer.h), where a
 * pending entry becomes a name in the kernel and a removed one's names go. Each is answered as
 * the kernel expects of a real create, link, unlink or rmdir, so that the kernel tells inotify
 * watchers; each changes only the tree, never the twin. A user's same request is refused. */
#include "ops.h"

#include <errno.h>
#include <string.h>

/* The entry of n after the caller made a name of it: the kernel now holds a lookup. Lock held. */
static void materialized_entry(struct twinfs *fs, struct node *n, struct fuse_entry_param *e)
{
    tree_lookup_ref(&fs->tree, n);
    ops_fill_entry(fs, n, e);
}

/* Shows pending n (found under the tree lock, released here) and answers with its entry: the
 * caller's mkdir of an asset. EEXIST if it is shown already, ENOENT if there is no such node
 * (its asset was deleted meanwhile). */
static void reply_shown(struct twinfs *fs, fuse_req_t req, struct node *n)
{
    struct fuse_entry_param e;
    int err = 0;

    if (n && tree_show(&fs->tree, n) == 0)
        materialized_entry(fs, n, &e);
    else
        err = n ? EEXIST : ENOENT;
    pthread_mutex_unlock(&fs->tree.lock);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_entry(req, &e);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct twinfs *fs = ops_fs(req);

    ops_count_request(fs, FS_OP_MKDIR);
    if (!ops_from_materializer(fs, req)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = parent == TREE_INO_ASSETS ? tree_asset_find_pending(&fs->tree, name) : NULL;
    reply_shown(fs, req, n);
}

/* The caller's create of a pending event's name in its asset's events/: shown, and opened for
 * the close that fires IN_CLOSE_WRITE. */
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
               struct fuse_file_info *fi)
{
    struct twinfs *fs = ops_fs(req);
    struct fuse_entry_param e;
    int err = 0;

    ops_count_request(fs, FS_OP_CREATE);
    if (!ops_from_materializer(fs, req)) {
        fuse_reply_err(req, EROFS); /* a user's create */
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *p = tree_get(&fs->tree, parent);
    struct node *n =
        p && p->kind == NODE_EVENTS && node_shown(p) ? tree_event_find(&fs->tree, p, name) : NULL;
    if (n && tree_show(&fs->tree, n) == 0)
        materialized_entry(fs, n, &e);
    else
        err = n ? EEXIST : ENOENT;
    pthread_mutex_unlock(&fs->tree.lock);
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    fi->keep_cache = 1; /* the bytes go into the page cache next (materializer) */
    fi->noflush = 1;
    fuse_reply_create(req, &e, fi);
}

/* The caller's link of a shown event to its name in /events. */
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct twinfs *fs = ops_fs(req);
    struct fuse_entry_param e;
    int err = 0;

    ops_count_request(fs, FS_OP_LINK);
    if (!ops_from_materializer(fs, req)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (!n || newparent != TREE_INO_ALL_EVENTS || n->kind != NODE_EVENT ||
        strcmp(tree_event_name_in(n, fs->tree.all_events_dir), newname) != 0 ||
        tree_link_flat(&fs->tree, n) < 0)
        err = ENOENT; /* acked meanwhile, or not a name the caller makes */
    else
        materialized_entry(fs, n, &e);
    pthread_mutex_unlock(&fs->tree.lock);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_entry(req, &e);
}

void ops_unlink_materialized(struct twinfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name)
{
    int err = 0;

    pthread_mutex_lock(&fs->tree.lock);
    struct node *p = tree_get(&fs->tree, parent);
    unsigned link = p && p->kind == NODE_ALL_EVENTS ? NODE_LINK_FLAT : NODE_LINK_MAIN;
    struct node *n = p ? tree_event_find(&fs->tree, p, name) : NULL;
    if (!node_seen(n, link, true))
        err = ENOENT;
    else if (n->state != NODE_REMOVED)
        err = EBUSY; /* a pending event's names go only with its ack */
    else
        tree_name_gone(&fs->tree, n, link);
    pthread_mutex_unlock(&fs->tree.lock);
    fuse_reply_err(req, err);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct twinfs *fs = ops_fs(req);
    int err = 0;

    ops_count_request(fs, FS_OP_RMDIR);
    if (!ops_from_materializer(fs, req)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *p = tree_get(&fs->tree, parent), *n = NULL;
    if (p && p->kind == NODE_ASSETS)
        n = tree_asset_find_linked(&fs->tree, name);
    else if (p && p->kind == NODE_ASSET && strcmp(name, "events") == 0)
        n = p->asset.events_dir;
    else if (p && p->kind == NODE_ASSET && strcmp(name, "t2") == 0)
        n = p->asset.t2_dir;
    if (!node_seen(n, NODE_LINK_MAIN, true))
        err = ENOENT;
    else if (n->state != NODE_REMOVED)
        err = EBUSY; /* only a deleted asset's directories go */
    else
        tree_name_gone(&fs->tree, n, NODE_LINK_MAIN);
    pthread_mutex_unlock(&fs->tree.lock);
    fuse_reply_err(req, err);
}
