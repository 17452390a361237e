/* ops: the FUSE low-level operations, by concern: ops.c (the table, names and attributes, the
 * refusals of a read-only tree), ops_dir.c (directories), ops_file.c (event and status files,
 * the ack), ops_xattr.c (attributes), t2_files.c (T2 files). Handlers hold the tree lock only
 * for tree work, never across a call into the follower or the twin (acks and T2 requests
 * block). Not part of the fs/ API. */
#pragma once
#include <stdbool.h>
#include <sys/stat.h>
#include "fs_internal.h"

/* The filesystem a request is for. */
struct twinfs *ops_fs(fuse_req_t req);

/* Counts one request of kind op (status's "requests"). */
void ops_count_request(struct twinfs *fs, enum fs_op op);

/* Whether nodes of kind k are directories. */
bool ops_is_dir(enum node_kind k);

/* A node's attributes, and its entry with the timeouts the kernel may cache it for. Caller
 * holds the tree lock. */
void ops_fill_attr(const struct twinfs *fs, const struct node *n, struct stat *st);
void ops_fill_entry(struct twinfs *fs, const struct node *n, struct fuse_entry_param *e);

/* Whether req comes from the materializer's caller process: its mkdir, create, link, unlink
 * and rmdir make and remove the names of entries (ops_materialize.c) instead of creating. */
bool ops_from_materializer(struct twinfs *fs, fuse_req_t req);

/* ops_materialize.c: the caller's requests. */
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
               struct fuse_file_info *fi);
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
/* The caller's unlink of a removed event's remaining name (op_unlink passes it on). */
void ops_unlink_materialized(struct twinfs *fs, fuse_req_t req, fuse_ino_t parent,
                             const char *name);

/* ops_dir.c */
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi);

/* ops_file.c */
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* ops_xattr.c */
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                 int flags);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
