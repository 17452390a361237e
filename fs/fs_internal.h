/* The state shared by the fs/ modules: struct twinfs and the helpers between them. Not part
 * of the fs/ API (that is twinfs.h). */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include "fs_log.h"
#include "materializer.h"
#include "mount_ref.h"
#include "session.h"
#include "tree.h"

/* The FUSE requests counted for status (and the benchmark). */
enum fs_op {
    FS_OP_INIT,
    FS_OP_LOOKUP,
    FS_OP_FORGET,
    FS_OP_GETATTR,
    FS_OP_SETATTR,
    FS_OP_MKNOD,
    FS_OP_MKDIR,
    FS_OP_UNLINK,
    FS_OP_RMDIR,
    FS_OP_SYMLINK,
    FS_OP_RENAME,
    FS_OP_LINK,
    FS_OP_OPEN,
    FS_OP_READ,
    FS_OP_WRITE,
    FS_OP_FLUSH,
    FS_OP_RELEASE,
    FS_OP_FSYNC,
    FS_OP_OPENDIR,
    FS_OP_READDIR,
    FS_OP_READDIRPLUS,
    FS_OP_RELEASEDIR,
    FS_OP_STATFS,
    FS_OP_SETXATTR,
    FS_OP_GETXATTR,
    FS_OP_LISTXATTR,
    FS_OP_REMOVEXATTR,
    FS_OP_ACCESS,
    FS_OP_CREATE,
    FS_OP_FALLOCATE,
    FS_OP_READLINK,
    FS_OP_IOCTL,
    FS_OP_COUNT,
};

extern const char *const fs_op_names[FS_OP_COUNT];

/* Every open T2 or status file, so that those still open when the session ends (the kernel
 * sends no release after an unmount) are closed by twinfs_free rather than leaked. */
struct open_handle {
    struct open_handle *prev, *next;
    void (*destroy)(struct open_handle *h);
};

struct twinfs {
    struct twinfs_options opt;
    char *mountpoint;
    twinfs_log_fn log;
    struct follower *follower;
    struct fuse_session *se;
    struct tree tree;
    struct materializer *mat; /* makes the pending entries of tree visible */
    struct status *status;    /* the status file's size and time (status.c) */
    double entry_timeout;
    uid_t uid; /* the daemon's, shown as every node's owner */
    gid_t gid;

    atomic_uint t2_open; /* T2 files open or being opened; changed under t2_slots_lock */
    atomic_ullong t2_requests;
    /* T2 open slots of the uids other than the owner (t2_files.c): max_t2_open entries, an
     * entry with n == 0 is free. */
    pthread_mutex_t t2_slots_lock;
    struct t2_uid_slots *t2_others;
    unsigned t2_others_open;
    pthread_mutex_t handles_lock;
    struct open_handle handles; /* list head of the open files */
    atomic_ullong ops[FS_OP_COUNT];
};

/* The follower's callbacks (follow.c), with fs as their userdata: assets and events enter the
 * tree as pending entries, queued for the materializer. */
void follow_callbacks(struct twinfs *fs, struct follower_callbacks *ret);

/* Adds h, an open file, to fs's list; destroy frees it. */
void handles_track(struct twinfs *fs, struct open_handle *h,
                   void (*destroy)(struct open_handle *h));

/* Takes h off the list and destroys it (the release). */
void handles_release(struct twinfs *fs, struct open_handle *h);

/* Closes and frees the files still open; only once the session loop has ended. */
void handles_close_all(struct twinfs *fs);

/* T2 files (t2_files.c). Their mime is also an xattr; cat and cp read them in blocks of
 * st_blksize, 1 MiB: one FUSE request each (the kernel's max_pages is 256), 8x fewer than the
 * 128 KiB default. */
#define T2_XATTR_MIME   "user.twin.mime"
#define T2_READ_BLKSIZE (1024L * 1024L)

/* Sets up and frees the per-uid T2 open slots (for opt.max_t2_open). Returns 0 or -ENOMEM. */
int t2_files_init(struct twinfs *fs);
void t2_files_free(struct twinfs *fs);

/* The open of a T2 file, read-only or read-write (fi->flags). Read-only, it sends the request
 * (the name is the data) and replies with the open or its failure's errno; read-write, it
 * replies at once and the first read sends the request. Either holds a slot from the start of
 * the open to the release: the mount's owner may have all max_t2_open files open; any other
 * uid (allow_other) at most a quarter of them, and the other uids together leave the owner a
 * quarter: EMFILE past that. */
void t2_file_open(struct twinfs *fs, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* A read of an open T2 file (oh is its fi->fh): the next bytes of the stream, in order. The
 * first read of a read-write open sends the request first: its failure is this read's errno. */
void t2_file_read(struct twinfs *fs, fuse_req_t req, struct open_handle *oh, size_t size,
                  off_t off);

/* A write to a read-write open T2 file before its first read: appends to the request data,
 * in order, at most opt.t2_max_data bytes (EFBIG past it); EBADF after the first read. A
 * refused write leaves the request unsendable: the first read gets its errno. */
void t2_file_write(struct twinfs *fs, fuse_req_t req, struct open_handle *oh, const char *buf,
                   size_t size, off_t off);

/* The status file (status.c). Every snapshot has one size, the longest this mount can render
 * (padded with spaces), so that stat and the reads of any open agree; its mtime is the time of
 * the latest snapshot. Its attributes are cached STATUS_ATTR_TIMEOUT_S seconds. */
#define STATUS_ATTR_TIMEOUT_S 1.0

/* Sizes the status of fs, whose follower exists. Returns 0 or -ENOMEM. */
int status_new(struct twinfs *fs, struct status **ret);
void status_free(struct status *s);

/* A fresh snapshot: a malloc'd JSON text of the status's size, or NULL on ENOMEM. Takes the
 * tree lock: the caller does not hold it. */
char *status_render(struct twinfs *fs, size_t *ret_len);

/* The status file's size, blocks and times (its ctime stays the node's: the tree's). Takes
 * only the status's own lock: callable under the tree lock. */
void status_fill_attr(struct status *s, struct stat *st);
