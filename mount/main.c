/* twinfs: mounts a digital twin. Parses the invocation (options.c), checks the mountpoint,
 * forks to the background before any thread exists (daemon.c), checks the twin, mounts, runs
 * the session until unmount or a signal, and takes everything down in reverse. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/resource.h>
#include <unistd.h>
#include <fuse_lowlevel.h>

#include "daemon.h"
#include "holder.h"
#include "log.h"
#include "log_setup.h"
#include "mount_ref.h"
#include "mountinfo.h"
#include "options.h"
#include "privilege.h"
#include "session.h"

#ifndef TWINFS_VERSION
#define TWINFS_VERSION "unknown"
#endif

/* A start-up failure: one line to the caller (stderr, or the parent through the pipe) and to
 * the log when daemonized or when the log is a file, then the exit status. */
static int __attribute__((format(printf, 2, 3))) fail(int status, const char *fmt, ...)
{
    char raw[1024], msg[4 * sizeof(raw)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    log_escape(raw, msg, sizeof(msg)); /* it may quote the twin's answer */
    if (daemon_report_pending()) {
        log_hook(LOG_ERR, msg);
        daemon_report_error(status, msg);
    } else {
        fprintf(stderr, "twinfs: %s\n", msg);
        if (log_is_file())
            log_hook(LOG_ERR, msg);
    }
    return status;
}

/* libfuse's own messages go through the same log. */
static void __attribute__((format(printf, 2, 0)))
fuse_log_to_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
    char msg[1024];

    vsnprintf(msg, sizeof(msg), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    log_hook((int)level, msg);
}

/* While the FUSE options are being checked: keep libfuse's complaint for our one line. It
 * may come in pieces (fuse_session_new logs an unknown option list word by word). */
static char fuse_complaint[512];
static bool fuse_complaint_done;

static void __attribute__((format(printf, 2, 0)))
fuse_log_capture(enum fuse_log_level level, const char *fmt, va_list ap)
{
    size_t n = strlen(fuse_complaint);

    if (level > FUSE_LOG_ERR || fuse_complaint_done)
        return;
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
    vsnprintf(fuse_complaint + n, sizeof(fuse_complaint) - n, fmt, ap);
    n = strlen(fuse_complaint);
    if (n > 0 && fuse_complaint[n - 1] == '\n') {
        fuse_complaint[n - 1] = '\0';
        fuse_complaint_done = true;
    }
}

static void fuse_capture_begin(void)
{
    fuse_complaint[0] = '\0';
    fuse_complaint_done = false;
    fuse_set_log_func(fuse_log_capture);
}

/* Returns libfuse's complaint without its "fuse: " prefix ("" if none). */
static const char *fuse_capture_end(void)
{
    fuse_set_log_func(fuse_log_to_log);
    if (strncmp(fuse_complaint, "fuse: ", 6) == 0)
        return fuse_complaint + 6;
    return fuse_complaint;
}

static bool args_mention(const struct fuse_args *args, const char *key)
{
    for (int i = 1; i < args->argc; i++) {
        if (strstr(args->argv[i], key))
            return true;
    }
    return false;
}

/* Names the mount after the twin in /proc/mounts ("http://h:p /mnt fuse.twinfs"), unless the
 * user chose. */
static int add_default_fuse_options(struct mount_options *o)
{
    char *opts = NULL, *fsname = NULL;
    int r = 0;

    if (!args_mention(&o->fuse_args, "fsname=")) {
        if (asprintf(&fsname, "fsname=%s", o->url) < 0)
            return -ENOMEM;
        r = fuse_opt_add_opt_escaped(&opts, fsname);
        free(fsname);
    }
    if (r == 0 && !args_mention(&o->fuse_args, "subtype="))
        r = fuse_opt_add_opt(&opts, "subtype=twinfs");
    if (r == 0 && opts) {
        r = fuse_opt_add_arg(&o->fuse_args, "-o");
        if (r == 0)
            r = fuse_opt_add_arg(&o->fuse_args, opts);
    }
    free(opts);
    return r < 0 ? -ENOMEM : 0;
}

/* Lets fuse_session_new judge the FUSE options now, on a copy and without mounting, so a typo
 * fails before the fork and before the twin is contacted. auto_unmount is refused as root: its
 * fusermount3 watches the daemon and unmounts by path, as root. */
static int check_fuse_options(const struct mount_options *o)
{
    static const struct fuse_lowlevel_ops no_ops;
    struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
    struct fuse_session *se;
    const char *why;

    if (geteuid() == 0 && args_mention(&o->fuse_args, "auto_unmount"))
        return fail(MOUNT_EXIT_USAGE, "auto_unmount: refused as root (it unmounts by path, "
                                      "which another user can swap); twinfs unmounts its own "
                                      "mount at SIGTERM and SIGINT");
    for (int i = 0; i < o->fuse_args.argc; i++) {
        if (fuse_opt_add_arg(&copy, o->fuse_args.argv[i]) < 0) {
            fuse_opt_free_args(&copy);
            return fail(MOUNT_EXIT_FAILURE, "out of memory");
        }
    }
    fuse_capture_begin();
    se = fuse_session_new(&copy, &no_ops, sizeof(no_ops), NULL);
    why = fuse_capture_end();
    fuse_opt_free_args(&copy);
    if (!se)
        return fail(MOUNT_EXIT_USAGE, "%s", why[0] ? why : "bad FUSE option (see --help)");
    fuse_session_destroy(se);
    return 0;
}

/* The message for follower_start's error: one case per code follower.h documents. */
static int start_error(const struct mount_options *o, int r)
{
    switch (r) {
    case -EHOSTUNREACH:
        return fail(MOUNT_EXIT_FAILURE, "%s: cannot reach the twin (unreachable)", o->url);
    case -ECONNRESET:
        return fail(MOUNT_EXIT_FAILURE, "%s: the twin dropped the connection before answering",
                    o->url);
    case -EPERM:
        return fail(MOUNT_EXIT_FAILURE,
                    "%s: the twin refused the token (401): check token_file or TWINFS_TOKEN",
                    o->url);
    case -EACCES:
        return fail(MOUNT_EXIT_FAILURE, "%s: the twin refused access (403)", o->url);
    case -ETIMEDOUT:
        return fail(MOUNT_EXIT_FAILURE, "%s: the twin did not answer in time", o->url);
    case -EKEYREJECTED:
        return fail(MOUNT_EXIT_FAILURE,
                    "%s: TLS: the twin's certificate could not be verified "
                    "(self-signed or another CA? give its CA with cacert=FILE)",
                    o->url);
    case -EPROTO:
        return fail(MOUNT_EXIT_FAILURE,
                    "%s: not a twin (no protocol answer to GET /v1/assets, or TLS failed)", o->url);
    case -ESTALE:
        return fail(MOUNT_EXIT_FAILURE,
                    "%s: the twin's log ends before what tracker=%s has handled: the twin was "
                    "reset or restored, or the tracker is another twin's (move it away to "
                    "follow this twin from its start)",
                    o->url, o->tracker);
    default:
        return fail(MOUNT_EXIT_FAILURE, "%s: cannot follow the twin: %s", o->url, strerror(-r));
    }
}

/* The message for a tracker in use: who holds it, as far as its note tells. */
static int busy_error(const struct mount_options *o, const struct holder *h)
{
    if (holder_is_mounted(h))
        return fail(MOUNT_EXIT_FAILURE,
                    "tracker=%s: in use by another twinfs (pid %ld, mounted on %s)", o->tracker,
                    (long)h->pid, h->mountpoint);
    if (holder_is_running(h))
        return fail(MOUNT_EXIT_FAILURE,
                    "tracker=%s: in use by another twinfs (pid %ld, unmounted from %s but still "
                    "running after %d s)",
                    o->tracker, (long)h->pid, h->mountpoint, HOLDER_WAIT_S);
    return fail(MOUNT_EXIT_FAILURE,
                "tracker=%s: in use by another twinfs (waited %d s for it to exit)", o->tracker,
                HOLDER_WAIT_S);
}

struct new_args {
    const struct twinfs_options *topt;
    struct twinfs **ret;
};

static int try_twinfs_new(void *arg)
{
    struct new_args *a = arg;

    return twinfs_new(a->topt, log_hook, a->ret);
}

static int new_error(const struct mount_options *o, int r, const struct holder *h)
{
    switch (r) {
    case -EINVAL:
        return fail(MOUNT_EXIT_USAGE, "%s: bad URL or configuration", o->url);
    case -EBUSY:
        return busy_error(o, h);
    case -EPERM: {
        char why[PATH_MAX + 256];
        if (follower_check_tracker(o->tracker, why, sizeof(why)) < 0 && why[0])
            return fail(MOUNT_EXIT_FAILURE, "tracker=%s: refused: %s", o->tracker, why);
        return fail(MOUNT_EXIT_FAILURE, "tracker=%s: %s", o->tracker, strerror(-r));
    }
    default:
        return fail(MOUNT_EXIT_FAILURE, "tracker=%s: %s", o->tracker, strerror(-r));
    }
}

/* Each open T2 file holds a socket and the socket pair that wakes its transfer (t2_stream), and
 * the daemon needs a few dozen fds of its own (FUSE, the tracker, the stream, curl's). */
#define FDS_PER_T2_FILE   3u
#define FDS_OF_THE_DAEMON 64u

/* Raises the soft limit on fds to the hard one (a shell's default soft limit, 1024, is lower
 * than max_t2_open allows), and warns when the hard limit is too low for max_t2_open: past
 * it, opens of T2 files would fail for want of fds rather than with max_t2_open's EMFILE. */
static void raise_fd_limit(const struct mount_options *o)
{
    rlim_t need = (rlim_t)o->max_t2_open * FDS_PER_T2_FILE + FDS_OF_THE_DAEMON;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
            return;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        fprintf(stderr,
                "twinfs: warning: max_t2_open=%u needs about %llu file descriptors, the limit "
                "(ulimit -n) is %llu\n",
                o->max_t2_open, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
}

/* Where fuse_session_mount mounts. With the capability, libfuse calls mount(2) itself: on
 * /proc/self/fd/N of the opened mount point, so that the mount covers the directory that was
 * opened and checked, even if a directory on the path is swapped meanwhile. fusermount3 (no
 * capability, or auto_unmount) runs in a process of its own, where /proc/self/fd/N means
 * nothing, and gets the path; mount_ref_note then refuses a mount that did not land on the
 * opened directory. */
static const char *mount_target(const struct mount_options *o, const struct mount_ref *mref,
                                char *buf, size_t size)
{
    if (!privilege_may_mount() || args_mention(&o->fuse_args, "auto_unmount"))
        return o->mountpoint;
    return mount_ref_covered_path(mref, buf, size);
}

/* Leaves fuse_session_unmount nothing to unmount by path: libfuse's fuse_kern_unmount (3.x,
 * checked in 3.14) polls the session's descriptor first and returns without a umount when that
 * reports POLLERR (for it, the mount is gone already). A pipe's write end without a reader
 * does; dup3 closes /dev/fuse in the same step, which ends the connection as libfuse's own
 * close would. Returns 0, or -errno when the descriptor is still /dev/fuse. */
static int session_hang_up(struct fuse_session *se)
{
    int fd = fuse_session_fd(se);
    int p[2], r = 0;

    if (fd < 0)
        return 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    close(p[0]);
    if (dup3(p[1], fd, O_CLOEXEC) < 0)
        r = -errno;
    close(p[1]);
    return r;
}

/* Ends the session without any unmount by path: hung up, fuse_session_unmount finds nothing to
 * do; not hung up, it is not called, and fuse_session_destroy closes /dev/fuse. */
static void session_close(struct fuse_session *se)
{
    int r = session_hang_up(se);

    if (r < 0)
        log_msg(LOG_WARNING, "unmount: cannot hang up the FUSE session: %s", strerror(-r));
    else
        fuse_session_unmount(se);
}

/* Unmounts the mount made for se, and nothing else: libfuse's fuse_session_unmount works by
 * path (as root umount2(path, MNT_DETACH), which unmounts whatever the path leads to now), so
 * the mount is reached through the directory it covers and checked against the id recorded
 * when it was made (mount_ref_unmount). A mount already unmounted is left alone. */
static void unmount_own(struct fuse_session *se, const struct mount_ref *mref)
{
    int r = mount_ref_unmount(mref);

    if (r < 0 && r != -ENOENT)
        log_msg(LOG_ERR, "unmount: %s", strerror(-r));
    session_close(se);
}

/* Mounts se on the opened mount point and records the mount in mref. Returns the exit status;
 * on failure nothing is left mounted by us, except a mount that did not land on the opened
 * directory (only an attack during a fusermount3 mount does that), which is left dead rather
 * than unmounted by path. */
static int mount_session(const struct mount_options *o, struct fuse_session *se,
                         struct mount_ref *mref)
{
    char target[32];
    int r = mount_ref_open(mref, o->mountpoint);

    if (r == -ENOSYS)
        return fail(MOUNT_EXIT_FAILURE,
                    "%s: mountpoint: this kernel cannot tell mounts apart "
                    "(statx mount ids): twinfs needs Linux 5.8 or later",
                    o->mountpoint);
    if (r < 0)
        return fail(MOUNT_EXIT_FAILURE, "%s: mountpoint: %s", o->mountpoint,
                    r == -ESTALE ? "moved while mounting" : strerror(-r));
    if (fuse_session_mount(se, mount_target(o, mref, target, sizeof(target))) < 0)
        return fail(MOUNT_EXIT_FAILURE, "%s: mountpoint: cannot mount (see the log)",
                    o->mountpoint);
    r = mount_ref_note(mref);
    if (r < 0) {
        session_close(se);
        return fail(MOUNT_EXIT_FAILURE, "%s: mountpoint: %s", o->mountpoint,
                    r == -ENOENT ? "moved while mounting (the mount is left dead where it "
                                   "landed)"
                                 : strerror(-r));
    }
    return MOUNT_EXIT_OK;
}

static void twinfs_options_of(const struct mount_options *o, struct twinfs_options *ret)
{
    *ret = (struct twinfs_options){
        .follower =
            {
                .url = o->url,
                .token = o->token,
                .ca_file = o->cacert,
                .tracker_path = o->tracker,
                .schema_dir = o->schemas,
                .t2_enabled = o->t2,
                .t2_timeout_s = o->t2_timeout_s,
                .max_pending = o->max_pending,
                .max_pending_bytes = (uint64_t)o->max_pending_mb * 1024 * 1024,
                .start =
                    o->start == MOUNT_START_NOW ? FOLLOWER_START_NOW : FOLLOWER_START_BEGINNING,
                .asset_globs = (const char *const *)o->assets,
                .n_asset_globs = o->n_assets,
                .shard_index = o->shard_n ? o->shard_k - 1 : 0,
                .shard_count = o->shard_n,
            },
        .mountpoint = o->mountpoint,
        .entry_timeout_s = o->entry_timeout_s,
        .materialize_delay_ms = o->materialize_delay_ms,
        .events_dir = o->events_dir,
        .read_only = o->read_only,
        .max_t2_open = o->max_t2_open,
        .t2_max_data = o->t2_max_data,
    };
}

/* Runs from the check of the twin to the unmount; returns the exit status. */
static int serve(struct mount_options *o)
{
    struct twinfs_options topt;
    struct twinfs *fs = NULL;
    struct holder holder;
    struct fuse_session *se;
    struct mount_ref mref = {.covered_fd = -1, .parent_fd = -1};
    sigset_t stop_signals;
    int status = MOUNT_EXIT_OK, r;

    /* Threads started from here on (the follower's) must not take SIGTERM: the handler has to
     * run on the thread that waits in the session loop, or the loop never notices. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    twinfs_options_of(o, &topt);
    r = holder_wait(o->tracker, try_twinfs_new, &(struct new_args){&topt, &fs}, &holder);
    if (r < 0)
        return new_error(o, r, &holder);
    r = twinfs_start(fs);
    if (r < 0) {
        status = start_error(o, r);
        goto fail_fs;
    }
    se = fuse_session_new(&o->fuse_args, twinfs_lowlevel_ops(), sizeof(struct fuse_lowlevel_ops),
                          fs);
    if (!se) {
        status = fail(MOUNT_EXIT_FAILURE, "cannot create the FUSE session");
        goto fail_fs;
    }
    if (fuse_set_signal_handlers(se) < 0) {
        status = fail(MOUNT_EXIT_FAILURE, "cannot install signal handlers");
        goto fail_session;
    }
    status = mount_session(o, se, &mref);
    if (status != MOUNT_EXIT_OK)
        goto fail_signals;

    /* Before the report: once a daemon's parent returns, the mount is complete, the caller
     * process included (a script that counts twinfs processes sees the daemon alone). */
    r = twinfs_attach(fs, se, &mref);
    if (r < 0) {
        status = fail(MOUNT_EXIT_FAILURE, "cannot start the materializer: %s", strerror(-r));
        unmount_own(se, &mref);
        goto fail_signals;
    }
    /* Before the report: a twinfs started once this one's caller returns is told at once
     * that the tracker is in use. */
    r = holder_record(o->tracker, &mref, o->mountpoint);
    if (r < 0)
        log_msg(LOG_WARNING, "tracker=%s: cannot record this twinfs as its holder: %s", o->tracker,
                strerror(-r));
    log_msg(LOG_INFO, "mounted %s on %s", o->url, o->mountpoint);
    daemon_report_ok();
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);
    r = twinfs_run(fs, o->single_thread);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    if (r < 0) {
        log_msg(LOG_ERR, "session loop: %s", strerror(-r));
        status = MOUNT_EXIT_FAILURE;
    }
    unmount_own(se, &mref);
    log_msg(LOG_INFO, "unmounted %s", o->mountpoint);

fail_signals:
    fuse_remove_signal_handlers(se);
fail_session:
    fuse_session_destroy(se);
fail_fs:
    twinfs_free(fs);
    mount_ref_close(&mref); /* after the unmount, which reaches the mount through it */
    return status;
}

/* Parses and finishes the options into *o (freed by the caller in every case). Returns the exit
 * status: MOUNT_EXIT_OK, or a failure whose one line is reported. */
static int parse_invocation(int argc, char **argv, struct mount_options *o)
{
    char err[1024];
    const char *why;
    int r;

    /* libfuse's own parse errors ("missing argument after `-o'") become our one line. */
    fuse_capture_begin();
    r = mount_options_parse(argc, argv, o, err, sizeof(err));
    why = fuse_capture_end();
    if (r < 0 && why[0])
        snprintf(err, sizeof(err), "%s", why);
    if (r == 0)
        r = mount_options_finish(o, err, sizeof(err));
    if (r < 0)
        return fail(r == -EINVAL ? MOUNT_EXIT_USAGE : MOUNT_EXIT_FAILURE, "%s", err);
    return MOUNT_EXIT_OK;
}

/* -h or -V: the usage or the versions, on stdout. */
static void print_info(const struct mount_options *o)
{
    if (o->show_help) {
        mount_options_print_help(stdout, "twinfs");
        printf("FUSE options:\n");
        fflush(stdout);
        fuse_lowlevel_help();
        return;
    }
    printf("twinfs version %s\n", TWINFS_VERSION);
    printf("libfuse version %s\n", fuse_pkgversion());
    fflush(stdout);
    fuse_lowlevel_version();
}

/* The checks and warnings that need no twin and no fork: a failure here is reported on stderr
 * before anything runs in the background. Returns the exit status. */
static int prepare_mount(struct mount_options *o)
{
    char err[PATH_MAX + 128];

    /* First: where the log goes is the first line the caller sees, when it is news. */
    if (log_setup(o, err, sizeof(err)) < 0)
        return fail(MOUNT_EXIT_FAILURE, "%s", err);
    if (o->token_file_shared)
        fprintf(stderr,
                "twinfs: warning: token_file=%s is readable by group or others; "
                "chmod 600 it\n",
                o->token_file);
    if (o->token_in_clear)
        fprintf(stderr,
                "twinfs: warning: the token goes in clear over plain http to %s (and to any "
                "proxy in http_proxy or all_proxy); use https://\n",
                o->url);
    raise_fd_limit(o);
    if (mountinfo_is_mount_point(o->mountpoint))
        return fail(MOUNT_EXIT_FAILURE, "%s: mountpoint: already a mount point", o->mountpoint);
    if (!privilege_may_mount() && privilege_check_user_mount(o->mountpoint, err, sizeof(err)) < 0)
        return fail(MOUNT_EXIT_FAILURE, "%s", err);
    if (add_default_fuse_options(o) < 0)
        return fail(MOUNT_EXIT_FAILURE, "out of memory");
    fuse_set_log_func(fuse_log_to_log);
    return check_fuse_options(o);
}

int main(int argc, char **argv)
{
    struct mount_options o;
    int status, r;

    /* A consumer that vanishes must not kill the daemon; errors are handled where they occur. */
    signal(SIGPIPE, SIG_IGN);
    /* SIGINT and SIGTERM stop twinfs even if inherited ignored (nohup's ignored SIGHUP stays). */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);

    status = parse_invocation(argc, argv, &o);
    if (status != MOUNT_EXIT_OK)
        goto out;
    if (o.show_help || o.show_version) {
        print_info(&o);
        status = MOUNT_EXIT_OK;
        goto out;
    }
    status = prepare_mount(&o);
    if (status != MOUNT_EXIT_OK)
        goto out;

    if (!o.foreground) {
        r = daemon_detach();
        if (r < 0) {
            status = fail(MOUNT_EXIT_FAILURE, "cannot go to the background: %s", strerror(-r));
            goto out;
        }
        log_init(true, o.debug);
    } else {
        log_init(false, o.debug);
    }
    /* Logging to a file, SIGHUP reopens it (logrotate) instead of stopping twinfs. */
    if (log_is_file()) {
        r = log_reopen_on_hup();
        if (r < 0) {
            status = fail(MOUNT_EXIT_FAILURE, "cannot catch SIGHUP: %s", strerror(-r));
            goto out_log;
        }
    }
    status = serve(&o);
out_log:
    log_close();
out:
    mount_options_free(&o);
    return status;
}
