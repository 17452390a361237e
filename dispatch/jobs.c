/* jobs: see jobs.h. */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "handler.h"
#include "log.h"
#include "run.h"

#define KILL_GRACE_S 5.0
#define ENV_VALUE    4096
#define LABEL_MAX    (NAME_MAX + 64)

/* The event's attributes that become the handler's environment, in this order. */
static const char *const env_attrs[][2] = {
    {"TWIN_ASSET=", "user.twin.asset"},     {"TWIN_OFFSET=", "user.twin.offset"},
    {"TWIN_SEQ=", "user.twin.seq"},         {"TWIN_NAME=", "user.twin.name"},
    {"TWIN_VERSION=", "user.twin.version"}, {"TWIN_SOURCE=", "user.twin.source"},
    {"TWIN_TIME=", "user.twin.time"},
};
#define N_ATTRS (sizeof(env_attrs) / sizeof(env_attrs[0]))

struct job {
    pid_t pid; /* 0: the slot is free */
    int fd;    /* the claimed event file, or -1 */
    int err_fd;
    struct run_relay *relay;
    struct dq_item *item; /* NULL for the internal callback */
    double started, deadline;
    bool termed, killed;
    char label[LABEL_MAX];
    char path[PATH_MAX]; /* the event file */
};

struct jobs {
    struct jobs_config cfg;
    int running;
    unsigned internal_failures;
    unsigned long acked, failed;
    char *env_mount;
    char env[N_ATTRS][ENV_VALUE + 16];
    char handler[NAME_MAX + 1];
    char path[PATH_MAX];
    struct job slot[];
};

struct jobs *jobs_new(const struct jobs_config *cfg)
{
    struct jobs *j = calloc(1, sizeof(*j) + (size_t)cfg->max * sizeof(struct job));
    if (!j)
        return NULL;
    j->cfg = *cfg;
    size_t n = strlen("TWIN_MOUNT=") + strlen(cfg->mnt) + 1;
    j->env_mount = malloc(n);
    if (!j->env_mount) {
        free(j);
        return NULL;
    }
    snprintf(j->env_mount, n, "TWIN_MOUNT=%s", cfg->mnt);
    return j;
}

void jobs_free(struct jobs *j)
{
    if (!j)
        return;
    for (int i = 0; i < j->cfg.max; i++)
        if (j->slot[i].pid) {
            /* A loop that ended on an error leaves no handler behind it. */
            kill(-j->slot[i].pid, SIGKILL);
            waitpid(j->slot[i].pid, NULL, 0);
            run_relay_free(j->slot[i].relay);
            close(j->slot[i].err_fd);
            if (j->slot[i].fd >= 0)
                close(j->slot[i].fd);
        }
    free(j->env_mount);
    free(j);
    run_cleanup();
}

int jobs_running(const struct jobs *j)
{
    return j->running;
}

bool jobs_full(const struct jobs *j)
{
    return j->running >= j->cfg.max;
}

unsigned jobs_internal_failures(const struct jobs *j)
{
    return j->internal_failures;
}

void jobs_stats(const struct jobs *j, unsigned long *ret_acked, unsigned long *ret_failed)
{
    *ret_acked = j->acked;
    *ret_failed = j->failed;
}

static struct job *free_slot(struct jobs *j)
{
    for (int i = 0; i < j->cfg.max; i++)
        if (!j->slot[i].pid)
            return &j->slot[i];
    return NULL;
}

/* Starts handler (a name in the handlers directory) for slot s; fd (or -1) is its stdin. */
static int spawn(struct jobs *j, struct job *s, const char *arg1, int fd, const char *const *env,
                 size_t n_env, double now)
{
    int k = snprintf(j->path, sizeof(j->path), "%s/%s", j->cfg.handlers, j->handler);
    if (k < 0 || (size_t)k >= sizeof(j->path))
        return -ENAMETOOLONG;
    s->relay = run_relay_new(s->label);
    if (!s->relay)
        return -ENOMEM;
    struct run_req req = {
        .path = j->path,
        .arg0 = j->handler,
        .arg1 = arg1,
        .cwd = j->cfg.handlers,
        .stdin_fd = fd,
        .env = env,
        .n_env = n_env,
    };
    int r = run_spawn(&req, &s->pid, &s->err_fd);
    if (r < 0) {
        run_relay_free(s->relay);
        s->relay = NULL;
        s->pid = 0;
        return r;
    }
    s->fd = fd;
    s->started = now;
    s->deadline = now + j->cfg.timeout_s;
    s->termed = s->killed = false;
    j->running++;
    return 0;
}

/* Reads the event's attributes into j->env; a missing one is empty. */
static void read_attrs(struct jobs *j, int fd)
{
    for (size_t i = 0; i < N_ATTRS; i++) {
        size_t p = strlen(env_attrs[i][0]);
        memcpy(j->env[i], env_attrs[i][0], p);
        ssize_t n = fgetxattr(fd, env_attrs[i][1], j->env[i] + p, ENV_VALUE);
        j->env[i][p + (n > 0 ? (size_t)n : 0)] = '\0';
    }
}

/* Opens and claims the event. Returns its descriptor, or -1 with *ret saying how the item
 * ends without a handler. */
static int claim(const char *path, const char *name, enum dq_result *ret)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *ret = DQ_OK; /* acked by another meanwhile */
        } else if (errno == ENOTCONN) {
            *ret = DQ_HELD; /* the mount went: tried again when it is back */
        } else {
            log_msg("%s: %s", name, strerror(errno));
            *ret = DQ_FAILED;
        }
        return -1;
    }
    struct stat st, now;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        *ret = DQ_HELD;
        return -1;
    }
    /* acked by another consumer between our open and the claim: its name is gone (st_nlink
     * alone does not say so, the kernel drops one link of the two an ack removes) */
    if (fstat(fd, &st) < 0 || st.st_nlink == 0 || stat(path, &now) < 0 || now.st_ino != st.st_ino) {
        close(fd);
        *ret = DQ_OK;
        return -1;
    }
    return fd;
}

static int start_event(struct jobs *j, struct dq *q, struct dq_item *item, struct job *s,
                       double now)
{
    const char *name = dq_item_name(item);
    enum dq_result res;
    int k = snprintf(s->path, sizeof(s->path), "%s/events/%s", j->cfg.mnt, name);
    if (k <= 0 || (size_t)k >= sizeof(s->path)) {
        dq_done(q, item, DQ_FAILED, now);
        return 0;
    }
    int fd = claim(s->path, name, &res);
    if (fd < 0) {
        dq_done(q, item, res, now);
        return 0;
    }
    read_attrs(j, fd);
    const char *ev_name = j->env[3] + strlen("TWIN_NAME=");
    int r = handler_for_event(j->cfg.handlers_fd, ev_name, j->handler, sizeof(j->handler));
    if (r <= 0) {
        close(fd);
        if (dq_done(q, item, DQ_NO_HANDLER, now))
            log_msg("%s: no handler (do_%s, %s): left pending", name, ev_name, HANDLER_UNMATCHED);
        return 0;
    }
    snprintf(s->label, sizeof(s->label), "%s[%" PRIu64 "]", j->handler, dq_item_seq(item));
    const char *env[N_ATTRS + 1] = {j->env_mount};
    for (size_t i = 0; i < N_ATTRS; i++)
        env[i + 1] = j->env[i];
    s->item = item;
    r = spawn(j, s, s->path, fd, env, N_ATTRS + 1, now);
    if (r < 0) {
        close(fd);
        log_msg("%s: cannot start %s: %s", name, j->handler, strerror(-r));
        dq_done(q, item, DQ_FAILED, now);
        return 0;
    }
    return 1;
}

static int start_callback(struct jobs *j, struct dq *q, struct dq_item *item, struct job *s,
                          double now)
{
    const char *h = dq_item_kind(item) == DQ_ASSET_CREATED ? HANDLER_CREATED : HANDLER_DELETED;
    if (!handler_exists(j->cfg.handlers_fd, h)) {
        dq_done(q, item, DQ_OK, now);
        return 0;
    }
    snprintf(j->handler, sizeof(j->handler), "%s", h);
    snprintf(s->label, sizeof(s->label), "%s[%s]", h, dq_item_asset(item));
    snprintf(j->env[0], sizeof(j->env[0]), "TWIN_ASSET=%s", dq_item_asset(item));
    const char *env[] = {j->env_mount, j->env[0]};
    s->item = item;
    int r = spawn(j, s, dq_item_asset(item), -1, env, 2, now);
    if (r < 0) {
        log_msg("%s: cannot start: %s", s->label, strerror(-r));
        dq_done(q, item, DQ_FAILED, now);
        return 0;
    }
    return 1;
}

int jobs_start(struct jobs *j, struct dq *q, struct dq_item *item, double now)
{
    struct job *s = free_slot(j);
    if (!s) {
        dq_done(q, item, DQ_HELD, now);
        return -EBUSY;
    }
    if (dq_item_kind(item) == DQ_EVENT)
        return start_event(j, q, item, s, now);
    return start_callback(j, q, item, s, now);
}

int jobs_start_internal(struct jobs *j, double now)
{
    struct job *s = free_slot(j);
    if (!s)
        return -EBUSY;
    if (!handler_exists(j->cfg.handlers_fd, HANDLER_INTERNAL))
        return 0;
    snprintf(j->handler, sizeof(j->handler), "%s", HANDLER_INTERNAL);
    snprintf(s->label, sizeof(s->label), "%s[EOF_REPLAY]", HANDLER_INTERNAL);
    const char *env[] = {j->env_mount};
    s->item = NULL;
    int r = spawn(j, s, "EOF_REPLAY", -1, env, 1, now);
    if (r < 0) {
        log_msg("%s: cannot start: %s", s->label, strerror(-r));
        j->internal_failures++;
        return r;
    }
    return 1;
}

int jobs_pollfds(const struct jobs *j, struct pollfd *fds)
{
    int n = 0;
    for (int i = 0; i < j->cfg.max; i++)
        if (j->slot[i].pid && j->slot[i].err_fd >= 0) {
            fds[n].fd = j->slot[i].err_fd;
            fds[n].events = POLLIN;
            fds[n].revents = 0;
            n++;
        }
    return n;
}

static struct job *slot_of_fd(struct jobs *j, int fd)
{
    for (int i = 0; i < j->cfg.max; i++)
        if (j->slot[i].pid && j->slot[i].err_fd == fd)
            return &j->slot[i];
    return NULL;
}

void jobs_relay(struct jobs *j, const struct pollfd *fds, int n)
{
    for (int i = 0; i < n; i++) {
        if (!fds[i].revents)
            continue;
        struct job *s = slot_of_fd(j, fds[i].fd);
        if (s && run_relay_read(s->relay, s->err_fd) <= 0) {
            /* its end: what the handler (or a child it left) said is all relayed */
            run_relay_flush(s->relay);
            close(s->err_fd);
            s->err_fd = -1;
        }
    }
}

/* How a handler ended, for the log: "exit 3", "killed by SIGKILL", "timed out". */
static void describe(const struct job *s, int status, char *buf, size_t size)
{
    if (s->termed)
        snprintf(buf, size, "timed out, killed");
    else if (WIFEXITED(status))
        snprintf(buf, size, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "status %d", status);
}

/* Acks the event of slot s after its handler's exit 0. 0, or -errno (the event stays). */
static int ack(const struct job *s)
{
    if (unlink(s->path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

static void finish(struct jobs *j, struct dq *q, struct job *s, int status, double now)
{
    bool ok = !s->termed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char how[96];
    describe(s, status, how, sizeof(how));

    if (s->err_fd >= 0) {
        run_relay_read(s->relay, s->err_fd);
        run_relay_flush(s->relay);
        close(s->err_fd);
    }
    run_relay_free(s->relay);
    if (!s->item) {
        if (!ok) {
            j->internal_failures++;
            log_msg("%s: %s", s->label, how);
        } else if (j->cfg.verbose) {
            log_msg("%s: ok", s->label);
        }
    } else {
        bool event = dq_item_kind(s->item) == DQ_EVENT;
        int r = ok && event ? ack(s) : 0;
        if (r < 0) {
            ok = false;
            snprintf(how, sizeof(how), "exit 0, but the ack failed: %s", strerror(-r));
        }
        if (ok && j->cfg.verbose)
            log_msg("%s: %s (%.0f ms)", s->label, event ? "ok, acked" : "ok",
                    (now - s->started) * 1e3);
        unsigned attempt = dq_item_attempts(s->item) + 1;
        const char *what = event ? dq_item_name(s->item) : dq_item_asset(s->item);
        if (!ok && dq_done(q, s->item, DQ_FAILED, now))
            log_msg("%s: %s: %s; attempt %u, giving up: left pending until the next start",
                    s->label, what, how, attempt);
        else if (!ok)
            log_msg("%s: %s: %s; attempt %u, tried again later", s->label, what, how, attempt);
        else
            dq_done(q, s->item, DQ_OK, now);
        if (event)
            *(ok ? &j->acked : &j->failed) += 1;
    }
    if (s->fd >= 0)
        close(s->fd); /* the claim ends with the last descriptor */
    s->pid = 0;
    s->item = NULL;
    j->running--;
}

void jobs_reap(struct jobs *j, struct dq *q, double now)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (int i = 0; i < j->cfg.max; i++)
            if (j->slot[i].pid == pid) {
                finish(j, q, &j->slot[i], status, now);
                break;
            }
    }
}

double jobs_check_timeouts(struct jobs *j, double now)
{
    double next = INFINITY;
    for (int i = 0; i < j->cfg.max; i++) {
        struct job *s = &j->slot[i];
        if (!s->pid)
            continue;
        if (now >= s->deadline && !s->termed) {
            log_msg("%s: still running after %g s: SIGTERM", s->label, j->cfg.timeout_s);
            kill(-s->pid, SIGTERM);
            s->termed = true;
            s->deadline = now + KILL_GRACE_S;
        } else if (now >= s->deadline && !s->killed) {
            log_msg("%s: still running: SIGKILL", s->label);
            kill(-s->pid, SIGKILL);
            s->killed = true;
            s->deadline = INFINITY;
        }
        if (s->deadline < next)
            next = s->deadline;
    }
    return next;
}

void jobs_signal_all(struct jobs *j, int sig)
{
    for (int i = 0; i < j->cfg.max; i++)
        if (j->slot[i].pid)
            kill(-j->slot[i].pid, sig);
}
