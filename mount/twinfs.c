/* twinfs: mounts a digital twin. Parses the invocation (options.c), checks the mountpoint,
 * forks to the background before any thread exists (daemon.c), checks the twin, mounts, runs
 * the session until unmount or a signal, and takes everything down in reverse. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fuse_lowlevel.h>

#include "daemon.h"
#include "log.h"
#include "mount_ref.h"
#include "options.h"
#include "twinfs.h"

#ifndef TWINFS_VERSION
#define TWINFS_VERSION "unknown"
#endif

/* A start-up failure: one line to the caller (stderr, or the parent through the pipe) and to
 * the log when daemonized, then the exit status. */
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
    }
    return status;
}

/* Undoes the octal escapes (\040 for a space) of /proc/self/mountinfo, in place. */
static void unescape_mount_path(char *s)
{
    char *out = s;

    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
            s += 4;
        } else {
            *out++ = *s++;
        }
    }
    *out = '\0';
}

/* Whether path (absolute, resolved) is a mount point already. Reading mountinfo rather than
 * comparing st_dev with the parent's, because stat on a dead FUSE mount hangs or fails. */
static bool is_mount_point(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char *line = NULL;
    size_t cap = 0;
    bool found = false;

    if (!f)
        return false;
    while (!found && getline(&line, &cap, f) > 0) {
        /* id parent major:minor root MOUNTPOINT ... */
        char *field = line;
        for (int i = 0; i < 4 && field; i++) {
            field = strchr(field, ' ');
            if (field)
                field++;
        }
        if (!field)
            continue;
        field[strcspn(field, " ")] = '\0';
        unescape_mount_path(field);
        found = strcmp(field, path) == 0;
    }
    free(line);
    fclose(f);
    return found;
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
 * fails before the fork and before the twin is contacted. */
static int check_fuse_options(const struct mount_options *o)
{
    static const struct fuse_lowlevel_ops no_ops;
    struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
    struct fuse_session *se;
    const char *why;

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

static int start_error(const struct mount_options *o, int r)
{
    switch (r) {
    case -EHOSTUNREACH:
    case -ECONNREFUSED:
    case -ENETUNREACH:
        return fail(MOUNT_EXIT_FAILURE, "%s: cannot reach the twin (unreachable)", o->url);
    case -EPERM:
    case -EACCES:
        return fail(MOUNT_EXIT_FAILURE,
                    "%s: the twin refused the token (401): check token_file or TWINFS_TOKEN",
                    o->url);
    case -ETIMEDOUT:
        return fail(MOUNT_EXIT_FAILURE, "%s: the twin did not answer in time", o->url);
    case -EKEYREJECTED:
        /* What core answers when it tells a failed certificate check from other failures. */
        return fail(MOUNT_EXIT_FAILURE,
                    "%s: TLS: the twin's certificate could not be verified "
                    "(self-signed or another CA? give its CA with cacert=FILE)",
                    o->url);
    case -EPROTO:
        /* core maps every TLS failure to EPROTO too: over https, name the likely cause (a
         * certificate twinfs does not trust) and its cure before the unlikely one. */
        if (strncasecmp(o->url, "https:", 6) == 0)
            return fail(MOUNT_EXIT_FAILURE,
                        "%s: TLS failed: the twin's certificate could not be verified "
                        "(give its CA with cacert=FILE), or this is not a twin",
                        o->url);
        return fail(MOUNT_EXIT_FAILURE, "%s: not a twin (unexpected answer to GET /v1/assets)",
                    o->url);
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

static int new_error(const struct mount_options *o, int r)
{
    switch (r) {
    case -EINVAL:
        return fail(MOUNT_EXIT_USAGE, "%s: bad URL or configuration", o->url);
    case -EBUSY:
        return fail(MOUNT_EXIT_FAILURE, "tracker=%s: in use by another twinfs", o->tracker);
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

/* Where fuse_session_mount mounts. As root, libfuse calls mount(2) itself: on
 * /proc/self/fd/N of the opened mount point, so that the mount covers the directory that was
 * opened and checked, even if a directory on the path is swapped meanwhile. fusermount3 (not
 * root, or auto_unmount) runs in a process of its own, without our descriptors, and gets the
 * path; mount_ref_note then refuses a mount that did not land on the opened directory. */
static const char *mount_target(const struct mount_options *o, const struct mount_ref *mref,
                                char *buf, size_t size)
{
    if (geteuid() != 0 || args_mention(&o->fuse_args, "auto_unmount"))
        return o->mountpoint;
    return mount_ref_covered_path(mref, buf, size);
}

/* Leaves fuse_session_unmount nothing to unmount by path: it polls the session's descriptor
 * first and returns without a umount when that reports POLLERR (for it, the mount is gone
 * already). A pipe's write end without a reader does; dup3 closes /dev/fuse in the same step,
 * which ends the connection as libfuse's own close would. */
static void session_hang_up(struct fuse_session *se)
{
    int fd = fuse_session_fd(se);
    int p[2];

    if (fd < 0 || pipe2(p, O_CLOEXEC) < 0)
        return;
    close(p[0]);
    if (dup3(p[1], fd, O_CLOEXEC) < 0)
        log_msg(LOG_WARNING, "unmount: cannot close the FUSE session: %s", strerror(errno));
    close(p[1]);
}

/* fusermount3 -u -z on the path where the mount is now (its root's, read from /proc). */
static int fusermount_unmount(int root)
{
    static const char *const prog = "fusermount3";
    char link[32], now[PATH_MAX];
    pid_t pid;
    int status;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", root);
    ssize_t n = readlink(link, now, sizeof(now) - 1);
    if (n < 0)
        return -errno;
    now[n] = '\0';
    char *const argv[] = {(char *)prog, "-u", "-q", "-z", "--", now, NULL};
    int r = posix_spawnp(&pid, prog, NULL, NULL, argv, environ);
    if (r)
        return -r;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPERM;
}

/* Unmounts the mount made for se, and nothing else. libfuse's fuse_session_unmount works by
 * path: as root it calls umount2(path, MNT_DETACH), which unmounts whatever the path leads to
 * now; fusermount3 -u finds the path in /proc/self/mountinfo, checks that the mount there is
 * the user's FUSE mount and unmounts it with UMOUNT_NOFOLLOW, but still goes by name. Another
 * user who owns a directory on the path can move the mount away and mount or plant something
 * at the old path. So the mount is reached through the directory it covers, checked against
 * the id recorded when it was made (mount_ref), and detached through its root: umount2 on
 * /proc/self/fd/N of that root is that mount, wherever it is. Lazily, as libfuse does: a
 * consumer with a file open on it keeps it up until it lets go. Not root, fusermount3 gets the
 * path the mount has now. libfuse is then left only to close the session. */
static void unmount_own(struct fuse_session *se, const struct mount_ref *mref)
{
    int root = mount_ref_open_root(mref);
    int r = 0;

    if (root >= 0) {
        char path[32];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", root);
        if (geteuid() == 0)
            r = umount2(path, MNT_DETACH) < 0 ? -errno : 0;
        else
            r = fusermount_unmount(root);
        close(root);
    } else if (root != -ESTALE) {
        r = root; /* -ESTALE: unmounted already (fusermount3 -u): nothing to do */
    }
    if (r < 0)
        log_msg(LOG_ERR, "unmount: %s", strerror(-r));
    session_hang_up(se);
    fuse_session_unmount(se);
}

/* Runs from the check of the twin to the unmount; returns the exit status. */
static int serve(struct mount_options *o)
{
    struct twinfs_options topt = {
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
            },
        .mountpoint = o->mountpoint,
        .entry_timeout_s = o->entry_timeout_s,
        .materialize_delay_ms = o->materialize_delay_ms,
        .max_t2_open = o->max_t2_open,
    };
    struct twinfs *fs = NULL;
    struct fuse_session *se;
    struct mount_ref mref = {.covered_fd = -1};
    char target[32];
    sigset_t stop_signals;
    int status = MOUNT_EXIT_OK, r;

    /* Threads started from here on (the follower's) must not take SIGTERM: the handler has to
     * run on the thread that waits in the session loop, or the loop never notices. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    r = twinfs_new(&topt, log_hook, &fs);
    if (r < 0)
        return new_error(o, r);
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
    r = mount_ref_open(&mref, o->mountpoint);
    if (r < 0) {
        status = fail(MOUNT_EXIT_FAILURE, "%s: mountpoint: %s", o->mountpoint,
                      r == -ESTALE ? "moved while mounting" : strerror(-r));
        goto fail_signals;
    }
    if (fuse_session_mount(se, mount_target(o, &mref, target, sizeof(target))) < 0) {
        status =
            fail(MOUNT_EXIT_FAILURE, "%s: mountpoint: cannot mount (see the log)", o->mountpoint);
        goto fail_signals;
    }
    r = mount_ref_note(&mref);
    if (r < 0) {
        status = fail(MOUNT_EXIT_FAILURE, "%s: mountpoint: %s", o->mountpoint,
                      r == -ENOENT ? "moved while mounting" : strerror(-r));
        fuse_session_unmount(se);
        goto fail_signals;
    }

    /* Before the report: once a daemon's parent returns, the mount is complete, the caller
     * process included (a script that counts twinfs processes sees the daemon alone). */
    r = twinfs_attach(fs, se, &mref);
    if (r < 0) {
        status = fail(MOUNT_EXIT_FAILURE, "cannot start the materializer: %s", strerror(-r));
        unmount_own(se, &mref);
        goto fail_signals;
    }
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

int main(int argc, char **argv)
{
    struct mount_options o;
    char err[1024];
    const char *why;
    int status, r;

    /* A consumer that vanishes must not kill the daemon; errors are handled where they occur. */
    signal(SIGPIPE, SIG_IGN);
    /* A shell's background job starts with SIGINT ignored, ignored signals survive exec, and
     * libfuse installs its stop handler only on signals at their default: without this,
     * kill -INT left such a mount up forever. SIGINT and SIGTERM always stop twinfs; an
     * ignored SIGHUP is nohup's wish and is kept. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);

    /* libfuse's own parse errors ("missing argument after `-o'") become our one line. */
    fuse_capture_begin();
    r = mount_options_parse(argc, argv, &o, err, sizeof(err));
    why = fuse_capture_end();
    if (r < 0 && why[0])
        snprintf(err, sizeof(err), "%s", why);
    if (r == 0)
        r = mount_options_finish(&o, err, sizeof(err));
    if (r < 0) {
        status = fail(r == -EINVAL ? MOUNT_EXIT_USAGE : MOUNT_EXIT_FAILURE, "%s", err);
        goto out;
    }
    if (o.show_help) {
        mount_options_print_help(stdout, "twinfs");
        printf("FUSE options:\n");
        fflush(stdout);
        fuse_lowlevel_help();
        status = MOUNT_EXIT_OK;
        goto out;
    }
    if (o.show_version) {
        printf("twinfs version %s\n", TWINFS_VERSION);
        printf("libfuse version %s\n", fuse_pkgversion());
        fflush(stdout);
        fuse_lowlevel_version();
        status = MOUNT_EXIT_OK;
        goto out;
    }
    if (o.token_file_shared)
        fprintf(stderr,
                "twinfs: warning: token_file=%s is readable by group or others; "
                "chmod 600 it\n",
                o.token_file);
    if (o.token_in_clear)
        fprintf(stderr,
                "twinfs: warning: the token goes in clear over plain http to %s (and to any "
                "proxy in http_proxy or all_proxy); use https://\n",
                o.url);
    raise_fd_limit(&o);
    if (is_mount_point(o.mountpoint)) {
        status = fail(MOUNT_EXIT_FAILURE, "%s: mountpoint: already a mount point", o.mountpoint);
        goto out;
    }
    if (add_default_fuse_options(&o) < 0) {
        status = fail(MOUNT_EXIT_FAILURE, "out of memory");
        goto out;
    }
    fuse_set_log_func(fuse_log_to_log);
    status = check_fuse_options(&o);
    if (status != 0)
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
    status = serve(&o);
    log_close();
out:
    mount_options_free(&o);
    return status;
}
