/* ops: the table of FUSE low-level operations (ops.h says where each lives), names and
 * attributes (lookup, forget, getattr, statfs, access), the requests a read-only tree refuses
 * and the writes of read-write T2 files. docs/filesystem.md has the behaviour and the errno table.
 */
#include "ops.h"

#include "twin/name.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

struct twinfs *ops_fs(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

void ops_count_request(struct twinfs *fs, enum fs_op op)
{
    atomic_fetch_add_explicit(&fs->ops[op], 1, memory_order_relaxed);
}

bool ops_is_dir(enum node_kind k)
{
    return k == NODE_ROOT || k == NODE_ASSETS || k == NODE_META || k == NODE_ASSET ||
           k == NODE_EVENTS || k == NODE_ALL_EVENTS || k == NODE_T2 || k == NODE_T2_TYPE;
}

void ops_fill_attr(const struct twinfs *fs, const struct node *n, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = n->ino;
    st->st_uid = fs->uid; /* read once: two syscalls per answer otherwise */
    st->st_gid = fs->gid;
    st->st_blksize = 4096;
    st->st_atim = st->st_mtim = st->st_ctim = n->mtime;
    if (ops_is_dir(n->kind)) {
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return;
    }
    st->st_mode = S_IFREG | 0444;
    if (n->kind == NODE_EVENT) /* one per name: its asset's events/ and /events */
        st->st_nlink = (nlink_t)__builtin_popcount(n->links);
    else
        st->st_nlink = n->state == NODE_REMOVED ? 0 : 1;
    if (n->kind == NODE_T2_FILE) /* cat and cp read that much at a time */
        st->st_blksize = T2_READ_BLKSIZE;
    if (n->kind == NODE_EVENT) {
        st->st_size = (off_t)n->event.content_len;
        st->st_blocks = (blkcnt_t)((n->event.content_len + 511) / 512);
    }
    if (n->kind == NODE_STATUS)
        status_fill_attr(fs->status, st);
}

/* Names and attributes of everything but T2 files and the status file never change: cache
 * them long. T2 files are asked again at each open; the status file's mtime follows its
 * snapshots. T2 types and names may be dropped by the daemon (tree.h): a later path walk must
 * look them up again. */
static double node_timeout(const struct twinfs *fs, const struct node *n)
{
    if (n->kind == NODE_T2_FILE || n->kind == NODE_T2_TYPE)
        return 0;
    if (n->kind == NODE_STATUS && STATUS_ATTR_TIMEOUT_S < fs->entry_timeout)
        return STATUS_ATTR_TIMEOUT_S;
    return fs->entry_timeout;
}

void ops_fill_entry(struct twinfs *fs, const struct node *n, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = n->ino;
    e->generation = 1;
    ops_fill_attr(fs, n, &e->attr);
    e->attr_timeout = node_timeout(fs, n);
    e->entry_timeout = node_timeout(fs, n);
}

/* The child of parent called name that the requester may see (node_seen; the materializer's
 * caller also sees the names of removed nodes until it removes them), made on demand under
 * t2/; caller holds the lock. */
static struct node *find_child(struct twinfs *fs, struct node *parent, const char *name,
                               bool caller, int *ret_err)
{
    struct tree *t = &fs->tree;
    struct node *n = NULL;
    unsigned link = NODE_LINK_MAIN;

    *ret_err = ENOENT;
    if (!node_seen(parent, NODE_LINK_MAIN, caller))
        return NULL;
    switch (parent->kind) {
    case NODE_ROOT:
        if (strcmp(name, "assets") == 0)
            n = t->assets_dir;
        else if (strcmp(name, "events") == 0)
            n = t->all_events_dir;
        else if (strcmp(name, ".twinfs") == 0)
            n = t->meta_dir;
        break;
    case NODE_META:
        if (strcmp(name, "status") == 0)
            n = t->status;
        break;
    case NODE_ASSETS:
        n = tree_asset_find_linked(t, name);
        break;
    case NODE_ASSET:
        if (strcmp(name, "events") == 0)
            n = parent->asset.events_dir;
        else if (strcmp(name, "t2") == 0)
            n = parent->asset.t2_dir;
        break;
    case NODE_EVENTS:
        n = tree_event_find(t, parent, name);
        break;
    case NODE_ALL_EVENTS:
        n = tree_event_find(t, parent, name);
        link = NODE_LINK_FLAT;
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
    return node_seen(n, link, caller) ? n : NULL;
}

bool ops_from_materializer(struct twinfs *fs, fuse_req_t req)
{
    return materializer_is_caller(fs->mat, fuse_req_ctx(req)->pid);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct twinfs *fs = userdata;

    ops_count_request(fs, FS_OP_INIT);
    /* Always readdirplus: a listing then brings every entry's attributes at once. */
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    /* T2 reads must come in order: no parallel pieces of one direct read. */
    conn->want &= ~FUSE_CAP_ASYNC_DIO;
    materializer_init_done(fs->mat);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct twinfs *fs = ops_fs(req);
    struct fuse_entry_param e;
    int err;

    ops_count_request(fs, FS_OP_LOOKUP);
    /* The kernel hands FUSE names longer than NAME_MAX; no name here has more than 255 bytes
     * (statfs says so), and every other name operation is preceded by this lookup. */
    if (strlen(name) > NAME_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *p = tree_get(&fs->tree, parent);
    struct node *n = p ? find_child(fs, p, name, ops_from_materializer(fs, req), &err) : NULL;
    if (!p)
        err = ENOENT;
    if (n) {
        tree_lookup_ref(&fs->tree, n);
        ops_fill_entry(fs, n, &e);
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
    struct twinfs *fs = ops_fs(req);

    ops_count_request(fs, FS_OP_FORGET);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n && ino > TREE_INO_FIXED_MAX)
        tree_forget(&fs->tree, n, nlookup);
    pthread_mutex_unlock(&fs->tree.lock);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count_, struct fuse_forget_data *forgets)
{
    struct twinfs *fs = ops_fs(req);

    ops_count_request(fs, FS_OP_FORGET);
    pthread_mutex_lock(&fs->tree.lock);
    for (size_t i = 0; i < count_; i++) {
        struct node *n = tree_get(&fs->tree, forgets[i].ino);
        if (n && forgets[i].ino > TREE_INO_FIXED_MAX)
            tree_forget(&fs->tree, n, forgets[i].nlookup);
    }
    pthread_mutex_unlock(&fs->tree.lock);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct twinfs *fs = ops_fs(req);
    struct stat st;
    double timeout = 0;

    ops_count_request(fs, FS_OP_GETATTR);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n) {
        ops_fill_attr(fs, n, &st);
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
    ops_count_request(ops_fs(req), FS_OP_SETATTR);
    fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    ops_count_request(ops_fs(req), FS_OP_SYMLINK);
    fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    ops_count_request(ops_fs(req), FS_OP_RENAME);
    fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    ops_count_request(ops_fs(req), FS_OP_MKNOD);
    fuse_reply_err(req, EROFS);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    ops_count_request(ops_fs(req), FS_OP_READLINK);
    fuse_reply_err(req, EINVAL); /* there are no symlinks */
}

/* Writes go to read-write T2 files (their request data); everything else is read-only. */
static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct twinfs *fs = ops_fs(req);

    ops_count_request(fs, FS_OP_WRITE);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    enum node_kind kind = n ? n->kind : NODE_ROOT;
    pthread_mutex_unlock(&fs->tree.lock);
    if (kind == NODE_T2_FILE && fi->fh)
        t2_file_write(fs, req, (struct open_handle *)(uintptr_t)fi->fh, buf, size, off);
    else
        fuse_reply_err(req, EROFS);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    ops_count_request(ops_fs(req), FS_OP_FLUSH);
    fuse_reply_err(req, ENOSYS); /* nothing to flush: the kernel stops sending it */
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    ops_count_request(ops_fs(req), FS_OP_FSYNC);
    fuse_reply_err(req, ENOSYS);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct twinfs *fs = ops_fs(req);
    struct statvfs st;

    ops_count_request(fs, FS_OP_STATFS);
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

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    ops_count_request(ops_fs(req), FS_OP_ACCESS);
    fuse_reply_err(req, (mask & W_OK) ? EROFS : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
    ops_count_request(ops_fs(req), FS_OP_FALLOCATE);
    fuse_reply_err(req, EROFS);
}

/* No file here takes an ioctl. Answered here rather than by libfuse so that it is counted:
 * Python's open() asks isatty() (TCGETS) of every file, one request per open. ENOTTY is what
 * the kernel made of libfuse's ENOSYS, so callers see no change. */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
                     struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
                     size_t out_bufsz)
{
    ops_count_request(ops_fs(req), FS_OP_IOCTL);
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
