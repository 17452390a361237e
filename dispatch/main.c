/* twinfs-dispatch: runs handler executables for the events of a twinfs mount (see --help and
 * docs/twinfs-dispatch.1).
 *
 * One thread, one poll loop: the inotify descriptor (watch.c), a signalfd for SIGTERM, SIGINT
 * and SIGCHLD, and the running handlers' stderr pipes (jobs.c); the poll timeout is the next
 * retry, handler timeout or status check. The queue (queue.c) keeps each asset's items in order
 * and decides what runs next. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "handler.h"
#include "jobs.h"
#include "log.h"
#include "options.h"
#include "queue.h"
#include "watch.h"

#define BACKOFF_MAX_S   60.0
#define HELD_RETRY_S    0.1
#define STATUS_CHECK_S  0.5
#define REMOUNT_CHECK_S 0.5
#define ONCE_SETTLE_S   0.5
#define ONCE_POLL_S     0.1

struct loop {
    const struct options *o;
    const char *mnt; /* absolute */
    struct dq *q;
    struct watch *w;
    struct jobs *j;
    int sfd;
    bool stopping, killed, gone, rescan, internal_done;
    double stop_at, next_status, next_remount;
    double once_since; /* --once: idle since then with once_delivered delivered; 0: busy */
    long long once_delivered;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* path made absolute (without resolving links), trailing slashes dropped; NULL on ENOMEM. */
static char *absolute(const char *path)
{
    char cwd[PATH_MAX];
    char *r;

    if (path[0] == '/')
        r = strdup(path);
    else if (!getcwd(cwd, sizeof(cwd)) || asprintf(&r, "%s/%s", cwd, path) < 0)
        return NULL;
    if (!r)
        return NULL;
    for (size_t n = strlen(r); n > 1 && r[n - 1] == '/'; n--)
        r[n - 1] = '\0';
    return r;
}

static int scan(struct loop *l, const char *why)
{
    int r = watch_scan(l->w, l->q);
    if (r < 0) {
        if (!l->gone)
            log_msg("%s: the mount is gone (%s); waiting for it to come back", l->mnt,
                    strerror(-r));
        l->gone = true;
        l->next_remount = now_s() + REMOUNT_CHECK_S;
        return r;
    }
    l->rescan = false;
    if (why)
        log_msg("%s: listed %d pending", why, r);
    return r;
}

static void try_remount(struct loop *l, double now)
{
    if (now < l->next_remount)
        return;
    l->next_remount = now + REMOUNT_CHECK_S;
    if (watch_start(l->w) < 0)
        return;
    l->gone = false;
    scan(l, "the mount is back");
}

static void on_signals(struct loop *l)
{
    struct signalfd_siginfo si;
    while (read(l->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD || l->stopping)
            continue;
        l->stopping = true;
        l->stop_at = now_s() + l->o->stop_timeout_s;
        log_msg("%s: stopping; waiting for %d running handler(s)", strsignal((int)si.ssi_signo),
                jobs_running(l->j));
    }
}

static void start_work(struct loop *l, double now)
{
    if (!l->internal_done && now >= l->next_status && !jobs_full(l->j)) {
        l->next_status = now + STATUS_CHECK_S;
        struct watch_status st;
        if (watch_status(l->w, &st) == 0 && st.replay_done) {
            l->internal_done = true;
            jobs_start_internal(l->j, now);
        }
    }
    while (!jobs_full(l->j)) {
        struct dq_item *item = dq_next(l->q, now);
        if (!item)
            break;
        jobs_start(l->j, l->q, item, now);
    }
}

/* --once: true when nothing is queued or running, and the mount shows all it will show for
 * now: nothing was delivered for ONCE_SETTLE_S, nothing delivered waits to be shown, and
 * inotify has nothing unread after that. The status cannot say more: a follower whose window
 * of pending events was full delivers the rest of the backlog only as events are acked, and
 * its "head" is the twin's head at connect time. */
static bool once_done(struct loop *l, double now)
{
    struct dq_counts c;
    struct watch_status st;

    dq_counts(l->q, &c);
    if (c.queued || c.running || jobs_running(l->j)) {
        l->once_since = 0;
        return false;
    }
    if (watch_status(l->w, &st) < 0)
        return true; /* the mount went: nothing more can be handled */
    if (l->once_since == 0 || st.delivered != l->once_delivered || st.materialize_queue > 0) {
        l->once_since = now;
        l->once_delivered = st.delivered;
        return false;
    }
    return now - l->once_since >= ONCE_SETTLE_S && watch_quiet(l->w);
}

static int poll_timeout_ms(const struct loop *l, double now, double next)
{
    if (!l->stopping) {
        double t = dq_next_wakeup(l->q);
        next = t < next ? t : next;
        if (!l->internal_done && !l->o->once && l->next_status < next)
            next = l->next_status;
        if (l->gone && l->next_remount < next)
            next = l->next_remount;
        if (l->once_since > 0 && now + ONCE_POLL_S < next)
            next = now + ONCE_POLL_S;
    } else if (!l->killed && l->stop_at < next) {
        next = l->stop_at;
    }
    if (isinf(next))
        return -1;
    double ms = (next - now) * 1e3;
    return ms <= 0 ? 0 : (int)ceil(ms);
}

static void loop_run(struct loop *l)
{
    struct pollfd *fds = calloc((size_t)l->o->jobs + 2, sizeof(*fds));
    if (!fds)
        return;
    for (;;) {
        double now = now_s();
        if (l->stopping) {
            if (jobs_running(l->j) == 0)
                break;
            if (now >= l->stop_at && !l->killed) {
                log_msg("stopping: killing %d handler(s) still running", jobs_running(l->j));
                jobs_signal_all(l->j, SIGKILL);
                l->killed = true;
            }
        } else {
            if (l->gone)
                try_remount(l, now);
            if (l->rescan && !l->gone)
                scan(l, "inotify queue overflow");
            if (!l->gone)
                start_work(l, now);
            if (l->o->once && once_done(l, now))
                break;
        }
        double next = jobs_check_timeouts(l->j, now);
        fds[0] = (struct pollfd){.fd = l->sfd, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = watch_fd(l->w), .events = POLLIN};
        int n = jobs_pollfds(l->j, fds + 2);
        int r = poll(fds, (nfds_t)n + 2, poll_timeout_ms(l, now, next));
        if (r < 0 && errno != EINTR)
            break;
        if (fds[0].revents) {
            on_signals(l);
            jobs_reap(l->j, l->q, now_s());
        }
        if (fds[1].revents) {
            int w = watch_read(l->w, l->q);
            if (w == 1)
                l->rescan = true;
            else if (w == 2 || w == -ENOTCONN) {
                if (!l->gone)
                    log_msg("%s: the mount is gone; waiting for it to come back", l->mnt);
                l->gone = true;
                l->next_remount = now_s() + REMOUNT_CHECK_S;
            } else if (w < 0) {
                log_msg("inotify: %s; listing again", strerror(-w));
                l->rescan = true;
            }
        }
        jobs_relay(l->j, fds + 2, n);
    }
    free(fds);
}

/* The closing summary: what was handled, and the dispatcher's own CPU time per event (its
 * handlers' excluded), which is what it adds to a handler's fork and exec. */
static void log_stats(const struct loop *l, double elapsed)
{
    unsigned long acked, failed;
    struct rusage ru;

    jobs_stats(l->j, &acked, &failed);
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    log_msg("%lu events handled and acked, %lu failed runs, in %.3f s; own CPU %.1f us per event",
            acked, failed, elapsed, acked + failed ? cpu * 1e6 / (double)(acked + failed) : 0.0);
}

static int setup_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* The checks that make a fatal error (exit 1) before anything runs. */
static int check_paths(const char *mnt, const char *handlers, int *ret_hfd)
{
    struct stat st;
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/events", mnt);
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
        log_msg("%s: not a twinfs mount with events/ (%s)", mnt, strerror(errno ? errno : ENOTDIR));
        return -ENOENT;
    }
    snprintf(path, sizeof(path), "%s/.twinfs/status", mnt);
    if (stat(path, &st) < 0) {
        log_msg("%s: not a twinfs mount (no .twinfs/status: %s)", mnt, strerror(errno));
        return -ENOENT;
    }
    *ret_hfd = open(handlers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*ret_hfd < 0) {
        log_msg("%s: not a directory of handlers (%s)", handlers, strerror(errno));
        return -ENOTDIR;
    }
    return 0;
}

static int run(const struct options *o, const char *mnt, const char *handlers, int hfd)
{
    struct dq_policy policy = {
        .retries = o->retries,
        .backoff_s = o->backoff_s,
        .backoff_max_s = BACKOFF_MAX_S,
        .held_s = HELD_RETRY_S,
    };
    struct jobs_config jc = {.mnt = mnt,
                             .handlers = handlers,
                             .handlers_fd = hfd,
                             .max = o->jobs,
                             .timeout_s = o->timeout_s,
                             .verbose = o->verbose};
    struct loop l = {.o = o, .mnt = mnt, .sfd = -1};
    int ret = 1;

    l.q = dq_new(&policy);
    l.w = watch_new(mnt, handlers, o->globs, o->n_globs);
    l.j = jobs_new(&jc);
    l.sfd = setup_signals();
    if (!l.q || !l.w || !l.j || l.sfd < 0) {
        log_msg("cannot start: %s", l.sfd < 0 ? strerror(-l.sfd) : "out of memory");
        goto out;
    }
    int r = watch_start(l.w);
    if (r < 0) {
        log_msg("%s: cannot watch: %s", mnt, strerror(-r));
        goto out;
    }
    r = scan(&l, NULL);
    if (r < 0)
        goto out;
    log_msg("watching %s (%d pending)", mnt, r);
    double t0 = now_s();
    loop_run(&l);
    log_stats(&l, now_s() - t0);
    struct dq_counts c;
    dq_counts(l.q, &c);
    ret = 0;
    if (o->once && (c.given_up || c.parked || jobs_internal_failures(l.j))) {
        log_msg("done: %lu failed, %lu without a handler: left pending", c.given_up, c.parked);
        ret = 1;
    } else if (o->once && !l.stopping) {
        log_msg("done: nothing left pending");
    }
    if (l.stopping)
        log_msg("stopped");
out:
    jobs_free(l.j);
    watch_free(l.w);
    dq_free(l.q);
    if (l.sfd >= 0)
        close(l.sfd);
    return ret;
}

int main(int argc, char **argv)
{
    struct options o;
    int r = options_parse(argc, argv, &o);
    if (r != 0) {
        free(o.globs);
        return r > 0 ? 0 : 2;
    }
    char *mnt = absolute(o.mnt);
    char *handlers = absolute(o.handlers);
    int hfd = -1;
    int ret = 1;
    if (!mnt || !handlers)
        log_msg("out of memory");
    else if (check_paths(mnt, handlers, &hfd) == 0)
        ret = run(&o, mnt, handlers, hfd);
    if (hfd >= 0)
        close(hfd);
    free(mnt);
    free(handlers);
    free(o.globs);
    return ret;
}
