/* watch: what the mount has pending, level-triggered.
 *
 * One inotify descriptor watches MNT/events (new, moved-in and removed event files),
 * MNT/assets (asset directories made and removed) and the handlers directory (a new handler may
 * take parked events). watch_start puts the watches in place; watch_scan then lists MNT/assets
 * and MNT/events into the queue; watch_read feeds what inotify reports since. A scan after an
 * overflow finds what the lost notifications would have said. Events and asset callbacks of
 * assets that match none of the globs (when there are globs) are left alone. */
#pragma once
#include <stdbool.h>

#include "queue.h"

struct watch;

/* mnt and handlers are absolute; globs (n of them) are kept by reference. NULL on ENOMEM. */
struct watch *watch_new(const char *mnt, const char *handlers, char *const *globs, int n);
void watch_free(struct watch *w);

/* The inotify descriptor (non-blocking), for poll. */
int watch_fd(const struct watch *w);

/* (Re)places the watches on MNT/events, MNT/assets and the handlers directory. It keeps no
 * descriptor in the mount open (that would keep it from being unmounted). 0, or -errno: -ENOENT or
 * -ENOTCONN while the mount is not there. */
int watch_start(struct watch *w);

/* Lists MNT/assets, then MNT/events, into q (dq_scan_begin .. dq_scan_end). Returns the number
 * of events listed, or -errno (-ENOTCONN, -ENOENT: the mount went). */
int watch_scan(struct watch *w, struct dq *q);

/* Reads what inotify has now into q. Returns 0, 1 when a rescan is needed (the queue
 * overflowed), 2 when the mount went (its watch was removed), -errno. */
int watch_read(struct watch *w, struct dq *q);

/* What MNT/.twinfs/status says now. */
struct watch_status {
    bool replay_done;            /* the backlog up to the twin's head is delivered */
    long long materialize_queue; /* delivered events not yet shown */
    long long delivered;         /* events delivered since the mount */
};

/* Reads MNT/.twinfs/status into ret. 0, or -EIO when it cannot be read or parsed. */
int watch_status(const struct watch *w, struct watch_status *ret);

/* True if inotify has nothing unread. */
bool watch_quiet(const struct watch *w);

/* True if the asset id is selected by the globs. */
bool watch_selects(const struct watch *w, const char *asset);
