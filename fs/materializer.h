/* materializer: makes pending assets and events visible through the mount, so that the kernel
 * fires IN_CREATE for inotify watchers; it fires nothing for a change a FUSE daemon only
 * notifies. Its thread takes entries off a queue in order and has its caller process (caller.h)
 * mkdir or mknod them on the mount; the handlers recognize the caller's requests
 * (materializer_is_caller) and answer them by showing the pending entry. The thread holds no
 * lock while a call is under way: the call comes back to a handler that takes the tree lock.
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
    uint64_t errors; /* entries shown without their inotify event */
};

/* A materializer of tree's pending entries, not started; log may be NULL, mountpoint is for
 * messages (borrowed), delay_ms is the wait after a new asset directory before its events are
 * made, so that `inotifywait -r` can add its watch. Returns 0 or -ENOMEM. */
int materializer_new(struct tree *tree, twinfs_log_fn log, const char *mountpoint,
                     unsigned delay_ms, struct materializer **ret);

/* Stops (waiting as long as it takes) and frees. Accepts NULL. */
void materializer_free(struct materializer *m);

/* Queues n (make it when PENDING, tell the kernel when a shown asset is REMOVED); a queued
 * node is not freed until the thread lets it go. Caller holds the tree lock. */
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

/* Whether pid is the caller process's: its mkdir and mknod show pending entries. */
bool materializer_is_caller(const struct materializer *m, pid_t pid);

/* The counters for status. Caller holds the tree lock. */
void materializer_get_stats(const struct materializer *m, struct materializer_stats *ret);
