/* materializer: makes pending assets and events visible, and removes deleted assets and the
 * other name of acked events, through the mount, so that the kernel tells inotify watchers; it
 * tells them nothing of a change a FUSE daemon only notifies. Its thread takes entries off a
 * queue in order and has its caller process (caller.h) make the calls on the mount: mkdir for
 * an asset; for an event, a create and close in its asset's events/ (IN_CREATE, IN_CLOSE_WRITE)
 * then a link into /events, opened and closed there too; unlink for each name a removed event
 * still has; unlinks and rmdirs for a deleted asset. The handlers recognize the caller's
 * requests (materializer_is_caller, ops_materialize.c) and answer them by changing the tree
 * only. The thread holds no lock while a call is under way: the call comes back to a handler
 * that takes the tree lock.
 *
 * The queue lives under the tree's lock. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <fuse_lowlevel.h>
#include "fs_log.h"
#include "mount_ref.h"
#include "tree.h"

struct materializer;

struct materializer_stats {
    size_t queued; /* entries queued or being made: 0 when everything delivered is shown */
    uint64_t materialized;
    uint64_t errors; /* names made or removed without their inotify event */
};

/* A materializer of tree's pending entries, not started; log may be NULL, mountpoint is for
 * messages (borrowed), delay_ms is the wait after a new asset directory before its events are
 * made, so that `inotifywait -r` can add its watch. Returns 0 or -ENOMEM. */
int materializer_new(struct tree *tree, twinfs_log_fn log, const char *mountpoint,
                     unsigned delay_ms, struct materializer **ret);

/* Stops (waiting as long as it takes) and frees. Accepts NULL. */
void materializer_free(struct materializer *m);

/* Queues n: make its names when PENDING, remove those it still has when REMOVED (tree.h,
 * links); a queued node is not freed until the thread lets it go. Caller holds the tree lock. */
void materializer_enqueue(struct materializer *m, struct node *n);

/* Starts the caller process and the thread on the mounted session se; the calls go to mount,
 * noted (mount_ref_note), and nowhere else (its descriptors are borrowed). Nothing is made
 * before materializer_init_done. Returns 0 or -errno. */
int materializer_start(struct materializer *m, struct fuse_session *se,
                       const struct mount_ref *mount);

/* Tells the materializer that INIT was answered: the mount can be used. */
void materializer_init_done(struct materializer *m);

/* Asks the thread to stop and waits up to timeout_ms for it (0: forever), then ends the caller.
 * Returns 0 or -ETIMEDOUT (it is blocked in a call on the mount; call again once the session
 * is closed). */
int materializer_stop(struct materializer *m, unsigned timeout_ms);

/* Whether pid is the caller process's: its requests make and remove names (ops_materialize.c). */
bool materializer_is_caller(const struct materializer *m, pid_t pid);

/* The counters for status. Caller holds the tree lock. */
void materializer_get_stats(const struct materializer *m, struct materializer_stats *ret);
