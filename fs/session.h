/* session: the filesystem over a follower (twinfs_*: the FUSE low-level operations, the inode
 * table, the materializer) and its life cycle. mount/ parses options and wires this to a FUSE
 * session; nothing in here parses command lines or daemonizes.
 *
 * Life cycle, in this order (mount/ does it):
 *   twinfs_new            opens the tracker (through follower_new)
 *   twinfs_start          snapshot of the twin (this checks the twin), stream thread started;
 *                         assets and events gather, invisible until materialized
 *   fuse_session_new(args, twinfs_lowlevel_ops(), sizeof, fs) and fuse_session_mount on
 *                         the directory a mount_ref holds, then mount_ref_note
 *   twinfs_attach         the materializer thread and its caller process, ready before the
 *                         program reports the mount (a daemon's parent returns then)
 *   twinfs_run            runs the session loop (multi-threaded unless single_thread);
 *                         returns when unmounted or signalled
 *   twinfs_free           stops the follower (every ack is on disk), frees
 */
#pragma once
#include <stdbool.h>
#include <fuse_lowlevel.h>
#include "twin/follower.h"
#include "mount_ref.h"

struct twinfs;

struct twinfs_options {
    struct follower_config follower; /* the twin, tracker, T2 and flow-control settings */
    const char *mountpoint;          /* absolute path, for messages: the materializer works
                                      * through the mount_ref given to twinfs_attach */
    double entry_timeout_s;          /* kernel cache of names and attributes; 0 means 86400 */
    unsigned materialize_delay_ms;   /* wait after a new asset directory before making its
                                      * events visible, so `inotifywait -r` can add its watch */
    unsigned max_t2_open;            /* concurrent T2 files open; 0 means 64 */
    size_t t2_max_data;              /* request data written to a T2 file before its first
                                      * read, at most (bytes); 0: none may be written */
    bool events_dir;                 /* MOUNTPOINT/events: every asset's events, by seq */
    bool read_only;                  /* unlink (the ack) is EROFS; the materializer still works */
};

/* Logging hook for the daemon (syslog or stderr); prio is a syslog priority. May be NULL. */
typedef void (*twinfs_log_fn)(int prio, const char *message);

/* Copies opt. Returns 0, -EINVAL, -EBUSY (tracker in use), -errno. */
int twinfs_new(const struct twinfs_options *opt, twinfs_log_fn log, struct twinfs **ret);

/* Starts following the twin. Returns 0, or follower_start's error (-EHOSTUNREACH, -EPERM,
 * -ETIMEDOUT, -EPROTO). */
int twinfs_start(struct twinfs *fs);

/* The operations to pass to fuse_session_new, with fs as userdata. */
const struct fuse_lowlevel_ops *twinfs_lowlevel_ops(void);

/* Starts the materializer on the mounted session se: its thread, and its caller process
 * (fs/caller.c), which is named twinfs-caller once this returns. mount is the mount made
 * for se, noted (mount_ref_note); its calls go there and nowhere else. Borrows mount's
 * descriptors until twinfs_free. Returns 0 or -errno. */
int twinfs_attach(struct twinfs *fs, struct fuse_session *se, const struct mount_ref *mount);

/* Runs the session given to twinfs_attach until it exits (unmount, or a signal through
 * fuse_set_signal_handlers). Returns 0 (also when a signal ended it) or -errno. */
int twinfs_run(struct twinfs *fs, bool single_thread);

/* Stops the follower (acks flushed) and frees everything. Accepts NULL. */
void twinfs_free(struct twinfs *fs);
