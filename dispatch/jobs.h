/* jobs: the handlers that run, one per queue item, at most max at once.
 *
 * An event is claimed before its handler starts: its file is opened and flock(LOCK_EX|LOCK_NB)
 * taken on that description, which is the handler's stdin, so the claim lasts as long as the
 * handler (even past the dispatcher's death); a claimed file without links was acked by another
 * consumer meanwhile. Exit 0 acks (unlink; ENOENT is someone else's ack). A handler that runs
 * past the timeout gets SIGTERM, 5 s later SIGKILL, and counts as failed. */
#pragma once
#include <stdbool.h>
#include <poll.h>
#include <sys/types.h>

#include "queue.h"

struct jobs;

struct jobs_config {
    const char *mnt;      /* absolute */
    const char *handlers; /* absolute */
    int handlers_fd;
    int max;
    double timeout_s;
    bool verbose;
};

/* NULL on ENOMEM. cfg's strings are kept by reference. */
struct jobs *jobs_new(const struct jobs_config *cfg);
void jobs_free(struct jobs *j);

int jobs_running(const struct jobs *j);
bool jobs_full(const struct jobs *j);

/* Starts item's handler, or ends the item at once (gone, claimed by another, no handler).
 * Returns 1 if a handler runs, 0 if the item ended, -errno when the mount is gone (the item is
 * back in the queue). */
int jobs_start(struct jobs *j, struct dq *q, struct dq_item *item, double now);

/* Starts on_event_internal EOF_REPLAY if it is a handler. 1 if it runs, 0 if there is none,
 * -errno. */
int jobs_start_internal(struct jobs *j, double now);

/* Fills fds with the running handlers' stderr pipes; returns how many (at most max). */
int jobs_pollfds(const struct jobs *j, struct pollfd *fds);

/* Relays what the pipes of fds (from jobs_pollfds, n of them) have. */
void jobs_relay(struct jobs *j, const struct pollfd *fds, int n);

/* Reaps the handlers that ended and ends their items in q. */
void jobs_reap(struct jobs *j, struct dq *q, double now);

/* Signals the handlers past their time; returns the next time one is due (INFINITY: none). */
double jobs_check_timeouts(struct jobs *j, double now);

/* Sends sig to every running handler's process group. */
void jobs_signal_all(struct jobs *j, int sig);

/* Events whose handler exited 0 (and were acked), and failed event handler runs, so far. */
void jobs_stats(const struct jobs *j, unsigned long *ret_acked, unsigned long *ret_failed);

/* Failed runs of the internal callback (for --once's exit status). */
unsigned jobs_internal_failures(const struct jobs *j);
