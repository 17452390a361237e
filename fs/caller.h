/* caller: the process that makes the materializer's calls on the mount, and the batch
 * protocol that carries them.
 *
 * The calls come from a child process that holds none of the daemon's files, not from a
 * thread: the daemon's death then closes /dev/fuse, the kernel aborts the mount's requests and
 * the caller's call fails, where a daemon thread blocked on its own mount would keep it hung.
 * Forked from a threaded process, the caller runs async-signal-safe code only.
 *
 * The caller never uses the mount point's path (another user may swap a directory on it for a
 * symlink): it reaches the mount through the directory the mount covers (mount_ref.h), checks
 * that the mount found there is the one made at mount time, and walks from its root one
 * component at a time, refusing symlinks.
 *
 * Calls go in batches of up to CALLER_BATCH_MAX: one message holds each call's operation byte
 * then its path (relative to the mount's root) and its NUL, and for a link the new name's path
 * and its NUL; the answer is one int per call, 0 or an errno. A round trip costs two context
 * switches, so the materializer sends a batch as soon as its queue runs dry and a live event still
 * goes alone and at once.
 *
 * One thread (the materializer's) uses a caller; caller_pid may be called from any thread. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "mount_ref.h"

#define CALLER_BATCH_MAX 64

/* What the caller does; each is what makes the kernel tell inotify watchers. */
enum caller_op {
    CALLER_MKDIR = 'd', /* mkdir: IN_CREATE,IN_ISDIR */
    CALLER_CREATE =
        'c',           /* open(O_CREAT | O_EXCL | O_WRONLY) and close: IN_CREATE, IN_CLOSE_WRITE */
    CALLER_LINK = 'l', /* link to a second path, open that for writing and close: IN_CREATE,
                        * IN_CLOSE_WRITE in the second path's directory */
    CALLER_UNLINK = 'u', /* IN_DELETE */
    CALLER_RMDIR = 'r',  /* IN_DELETE,IN_ISDIR */
};

struct caller;

/* A caller with no process yet and an empty batch, or NULL on ENOMEM. */
struct caller *caller_new(void);

/* Starts the process, which makes its calls on mount (borrowed until caller_free) and is named
 * twinfs-caller once this returns. Returns 0 or -errno. */
int caller_start(struct caller *c, const struct mount_ref *mount);

/* A new process for one that died on its own (a kill, the OOM killer). At most one restart a
 * second, so that a caller that cannot live does not turn into a fork loop. Returns 0, -EAGAIN
 * (too soon), -errno. */
int caller_restart(struct caller *c);

/* Ends the process once nothing more is asked of it; caller_pid is 0 from then on. */
void caller_stop(struct caller *c);

/* Ends the process and frees. Accepts NULL. */
void caller_free(struct caller *c);

/* The process's pid, 0 when there is none: how the handlers know its calls. */
pid_t caller_pid(const struct caller *c);

/* Adds a call to the batch: op on path, for a link to path2 (NULL otherwise); ino and tag are
 * the materializer's, given back by caller_call_ino and caller_call_tag. False if the batch is
 * full. An empty batch has room for any two paths shorter than PATH_MAX. */
bool caller_add(struct caller *c, enum caller_op op, uint64_t ino, unsigned tag, const char *path,
                const char *path2);

/* The batch's calls, in the order added: how many, and each one's op, ino, tag and path. */
size_t caller_count(const struct caller *c);
enum caller_op caller_call_op(const struct caller *c, size_t i);
uint64_t caller_call_ino(const struct caller *c, size_t i);
unsigned caller_call_tag(const struct caller *c, size_t i);
const char *caller_call_path(const struct caller *c, size_t i);

/* Has the process make the batch's calls and fills errs (CALLER_BATCH_MAX entries), one per
 * call: 0 or an errno. The batch stays as it was. Returns 0, or the error of the exchange
 * itself (errno; then the calls it did not answer carry it). */
int caller_send(struct caller *c, int *errs);

/* Empties the batch. */
void caller_clear(struct caller *c);
