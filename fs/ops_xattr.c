/* ops_xattr: the user.twin.* attributes of event, asset and T2 files; the tree is read-only. */
#include "ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <stdio.h>

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
        xattr_put(w, "user.twin.asset", a ? a->asset.id : NULL);
        snprintf(num, sizeof(num), "%" PRIu64, n->event.offset);
        xattr_put(w, "user.twin.offset", num);
        xattr_put(w, "user.twin.name", n->event.type_name);
        snprintf(num, sizeof(num), "%d", n->event.version);
        xattr_put(w, "user.twin.version", num);
        xattr_put(w, "user.twin.time", n->event.time);
        xattr_put(w, "user.twin.source", n->event.source);
        snprintf(num, sizeof(num), "%" PRIu64, n->event.seq);
        xattr_put(w, "user.twin.seq", num);
    } else if (n->kind == NODE_ASSET) {
        xattr_put(w, "user.twin.asset", n->asset.id);
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

/* Walks the attributes of the node ino into w. Returns false if there is no such node. */
static bool walk_ino(struct twinfs *fs, fuse_ino_t ino, struct xattr_walk *w)
{
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n)
        xattr_walk_node(n, w);
    pthread_mutex_unlock(&fs->tree.lock);
    return n != NULL;
}

/* Replies with the len bytes found: their size when the caller asks for it (size 0), ERANGE
 * when they do not fit in size. */
static void reply_found(fuse_req_t req, const char *data, size_t len, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, data, len);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct twinfs *fs = ops_fs(req);
    struct xattr_walk w = {.want = name};

    ops_count_request(fs, FS_OP_GETXATTR);
    if (!xattr_namespace_supported(name))
        fuse_reply_err(req, EOPNOTSUPP);
    else if (!walk_ino(fs, ino, &w))
        fuse_reply_err(req, ENOENT);
    else if (!w.value)
        fuse_reply_err(req, ENODATA);
    else
        reply_found(req, w.value, w.value_len, size);
    free(w.value);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct twinfs *fs = ops_fs(req);
    struct xattr_walk w = {0};

    ops_count_request(fs, FS_OP_LISTXATTR);
    if (!walk_ino(fs, ino, &w))
        fuse_reply_err(req, ENOENT);
    else
        reply_found(req, w.list, w.list_len, size);
    free(w.list);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                 int flags)
{
    ops_count_request(ops_fs(req), FS_OP_SETXATTR);
    fuse_reply_err(req, EROFS);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    ops_count_request(ops_fs(req), FS_OP_REMOVEXATTR);
    fuse_reply_err(req, EROFS);
}
