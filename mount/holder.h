/* holder: what the twinfs that holds a tracker tells about itself, and whether that twinfs
 * still serves its mount.
 *
 * Once mounted, a twinfs records in its tracker's note (twin/tracker_holder.h) its pid, its
 * mount's id and device, and its mount point. A twinfs that finds the tracker in use reads the
 * note: while that mount is still there the holder is live; once it is gone (fusermount3 -u
 * returns before the daemon has stopped and closed its tracker) the holder is exiting. The
 * lock on the journal alone decides who holds the tracker: a note only says whether waiting
 * for it is worthwhile. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mount_ref.h"

/* How long a twinfs waits for the twinfs that holds its tracker to exit (docs/twinfs.1,
 * tracker=), and how often it tries the tracker meanwhile. */
#define HOLDER_WAIT_S  10
#define HOLDER_POLL_MS 50

struct holder {
    pid_t pid;       /* 0: no note (the holder recorded nothing yet, or is not a twinfs) */
    uint64_t mnt_id; /* its mount's id, as /proc/self/mountinfo shows it */
    unsigned dev_major, dev_minor;
    char mountpoint[PATH_MAX];
};

/* Records this process, with the mount mref made on mountpoint, as the holder of tracker (which
 * it holds). Returns 0 or -errno. */
int holder_record(const char *tracker, const struct mount_ref *mref, const char *mountpoint);

/* Reads what the holder of tracker recorded into ret. Returns 0, or -errno (no note, or one
 * that is not a twinfs's; then ret->pid is 0). */
int holder_read(const char *tracker, struct holder *ret);

/* Whether the mount the holder recorded is still mounted here. */
bool holder_is_mounted(const struct holder *h);

/* Whether the holder's process is still running. */
bool holder_is_running(const struct holder *h);

/* Calls attempt(arg) (which opens tracker) until it answers anything but -EBUSY, while the
 * holder does not serve its mount: fusermount3 -u returns once the mount is gone, before the
 * daemon that served it has stopped and closed its tracker, so a remount right after it finds
 * the tracker held by a twinfs that is exiting. A holder whose recorded mount is still there
 * is live: -EBUSY at once. Any other (its mount gone, not mounted yet, or one that recorded
 * nothing) is waited for, up to HOLDER_WAIT_S; then -EBUSY. Returns attempt's last answer;
 * h gets the holder last seen (pid 0 if none), for the message. */
int holder_wait(const char *tracker, int (*attempt)(void *), void *arg, struct holder *h);
