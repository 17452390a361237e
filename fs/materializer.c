/* materializer: makes pending assets and events visible by doing the operation through the
 * mount, so the kernel fires IN_CREATE for inotify watchers (it fires nothing for a change a
 * FUSE daemon only notifies). The handlers recognize the caller by its pid and treat its
 * mkdir/mknod as "show this pending entry". The thread holds no fs lock while it calls into
 * the mount: the call comes back to a handler that takes the lock.
 *
 * The calls themselves are made by a small child process (the "caller"), not by the thread.
 * A thread of the daemon blocked in a call on its own mount keeps the daemon's files open when
 * the daemon is killed (kill -9, a crash, the OOM killer): then /dev/fuse stays open, nobody
 * answers, a consumer's unlink in the same directory waits for good holding the directory's
 * lock, and the mknod waits for that lock uninterruptibly, so the process can never finish
 * dying and the mount hangs (the long soak found it). A separate process holds no daemon file:
 * the daemon's death closes /dev/fuse, the kernel aborts the mount's requests, and the caller's
 * call fails and it exits. It only runs async-signal-safe code (it is forked from a threaded
 * process).
 *
 * The caller never uses the mount point's path: another user owning a directory on it can
 * rename that directory away and plant a symlink at the old path. It reaches the mount through
 * the directory the mount covers (mount_ref.h), checks that the mount found there is the one
 * made at mount time, and walks from its root one component at a time, refusing symlinks. */
#include "fs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "twin/deadline.h"
#include "mount_ref.h"

enum mat_action {
    MAT_NONE,
    MAT_MKDIR,
    MAT_MKNOD,
    MAT_DELETE,
};

void materializer_enqueue(struct twinfs *fs, struct node *n)
{
    if (n->queued)
        return;
    n->queued = true;
    n->queue_next = NULL;
    if (fs->mq_tail)
        fs->mq_tail->queue_next = n;
    else
        fs->mq_head = n;
    fs->mq_tail = n;
    fs->mq_len++;
    pthread_cond_signal(&fs->mq_cond);
}

static struct node *mq_pop(struct twinfs *fs)
{
    struct node *n = fs->mq_head;

    if (!n)
        return NULL;
    fs->mq_head = n->queue_next;
    if (!fs->mq_head)
        fs->mq_tail = NULL;
    n->queue_next = NULL;
    n->queued = false;
    fs->mq_len--;
    return n;
}

static bool time_reached(const struct timespec *when)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > when->tv_sec ||
           (now.tv_sec == when->tv_sec && now.tv_nsec >= when->tv_nsec);
}

/* Sleeps until when. Callers check time_reached first: a sleep until a time already past still
 * costs a timer and a context switch, once per event otherwise. */
static void sleep_until(const struct timespec *when)
{
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, when, NULL) == EINTR)
        ;
}

/* Decides what to do for a popped node and fills path (relative to the mount's root); caller
 * holds the lock. */
static enum mat_action plan(struct twinfs *fs, struct node *n, char *path, size_t size,
                            struct timespec *ret_wait_until)
{
    int r;

    ret_wait_until->tv_sec = 0;
    ret_wait_until->tv_nsec = 0;
    if (n->kind == NODE_ASSET) {
        if (n->state == NODE_PENDING) {
            r = snprintf(path, size, "assets/%s", n->name);
            return r > 0 && (size_t)r < size ? MAT_MKDIR : MAT_NONE;
        }
        if (n->state == NODE_REMOVED && n->u.as.was_visible)
            return MAT_DELETE;
        return MAT_NONE;
    }
    if (n->kind != NODE_EVENT || n->state != NODE_PENDING)
        return MAT_NONE;
    struct node *asset = tree_asset_of(n);
    if (!asset || asset->state != NODE_VISIBLE)
        return MAT_NONE; /* the asset is gone, or its mkdir failed during a stop */
    r = snprintf(path, size, "assets/%s/events/%s", asset->name, n->name);
    if (r <= 0 || (size_t)r >= size)
        return MAT_NONE;
    /* Give `inotifywait -r` time to add its watch on a directory it just saw appear. */
    *ret_wait_until = timespec_add_ms(asset->u.as.visible_at, fs->opt.materialize_delay_ms);
    return MAT_MKNOD;
}

/* Pushes an event's bytes into the page cache so that a cat is served without a read. */
static void store_content(struct twinfs *fs, uint64_t ino)
{
    char *copy = NULL;
    size_t len = 0;

    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    if (n && n->state == NODE_VISIBLE && n->u.ev.content) {
        copy = malloc(n->u.ev.content_len);
        if (copy) {
            memcpy(copy, n->u.ev.content, n->u.ev.content_len);
            len = n->u.ev.content_len;
        }
    }
    pthread_mutex_unlock(&fs->tree.lock);
    if (!copy)
        return;
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);
    bv.buf[0].mem = copy;
    int r = fuse_lowlevel_notify_store(fs->se, ino, 0, &bv, 0);
    if (r < 0 && r != -ENOENT)
        fs_log(fs, LOG_DEBUG, "materializer: notify_store: %s", strerror(-r));
    free(copy);
}

/* After a failed self-call the entry is shown anyway (no IN_CREATE for it), so that an event
 * never stays invisible and holds the flow-control window forever. */
static void show_without_event(struct twinfs *fs, uint64_t ino, const char *path, int err)
{
    atomic_fetch_add(&fs->materialize_errors, 1);
    pthread_mutex_lock(&fs->tree.lock);
    struct node *n = tree_get(&fs->tree, ino);
    bool stopping = fs->mq_stop;
    if (n && n->state == NODE_PENDING && !stopping) {
        n->state = NODE_VISIBLE;
        if (n->kind == NODE_EVENT) {
            fs->tree.visible_events++;
        } else if (n->kind == NODE_ASSET) {
            n->u.as.was_visible = true;
            clock_gettime(CLOCK_MONOTONIC, &n->u.as.visible_at);
            fs->tree.visible_assets++;
            n->u.as.events_dir->state = NODE_VISIBLE;
            n->u.as.t2_dir->state = NODE_VISIBLE;
        }
    }
    pthread_mutex_unlock(&fs->tree.lock);
    if (!stopping)
        fs_log(fs, LOG_WARNING, "materializer: %s: %s (shown without inotify event)", path,
               strerror(err));
}

/* The calls go to the caller in batches: one message holds up to BATCH_MAX calls, each an
 * operation byte ('d' mkdir, 'n' mknod) then the path (relative to the mount's root) and its NUL;
 * the answer is one int per call, 0 or an errno. A round trip to the caller costs two context
 * switches, and paying it per event took a third off the materialize rate (docs/performance.md). A
 * batch is sent as soon as the queue runs dry, so a live event still goes alone and at once. */
enum { BATCH_MAX = 64, BATCH_BYTES = 65536 };

struct mat_batch {
    size_t count;
    size_t used; /* bytes of msg */
    uint64_t ino[BATCH_MAX];
    size_t path_at[BATCH_MAX]; /* where each call's path starts in msg */
    char msg[BATCH_BYTES];
};

/* Whether a path component is one the caller may walk or make: not "", "." or "..". */
static bool component_ok(const char *p, size_t len)
{
    return len > 0 && len <= NAME_MAX && !(p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.')));
}

/* Opens the directory at the first len bytes of path, relative to root, one component at a
 * time, none of them a symlink. Returns 0 (*ret_fd set) or an errno. Async-signal-safe. */
static int walk(int root, const char *path, size_t len, int *ret_fd)
{
    char comp[NAME_MAX + 1];
    size_t at = 0;
    int dir = root;

    while (at < len) {
        size_t n = 0;
        while (at + n < len && path[at + n] != '/')
            n++;
        if (!component_ok(path + at, n)) {
            if (dir != root)
                close(dir);
            return EINVAL;
        }
        memcpy(comp, path + at, n);
        comp[n] = '\0';
        int next = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        if (dir != root)
            close(dir);
        if (next < 0)
            return err;
        dir = next;
        at += n + 1;
    }
    *ret_fd = dir;
    return 0;
}

/* The directory of the batch's last call: a batch's events mostly share one, and the walk to
 * it costs three opens. Only within a batch: a deleted asset first sends what is batched. */
struct dir_cache {
    int fd; /* -1: none */
    size_t len;
    char path[512];
};

/* Makes one call, path relative to root; the directories on the way are walked (walk) or
 * found in dc. Returns 0 or an errno. Async-signal-safe. */
static int call_at(int root, char op, const char *path, struct dir_cache *dc)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    size_t dir_len = slash ? (size_t)(slash - path) : 0;
    int dir = root;

    if (!component_ok(name, strlen(name)))
        return EINVAL;
    if (dir_len > 0) {
        if (dir_len > sizeof(dc->path))
            return ENAMETOOLONG;
        if (dc->fd < 0 || dc->len != dir_len || memcmp(dc->path, path, dir_len) != 0) {
            int fd = -1, err = walk(root, path, dir_len, &fd);
            if (err)
                return err;
            if (dc->fd >= 0)
                close(dc->fd);
            dc->fd = fd;
            dc->len = dir_len;
            memcpy(dc->path, path, dir_len);
        }
        dir = dc->fd;
    }
    int r = op == 'd' ? mkdirat(dir, name, 0555) : mknodat(dir, name, S_IFREG | 0444, 0);
    return r < 0 ? errno : 0;
}

/* The descriptors the caller keeps, all others closed: its socket, and the parent of the
 * directory the mount covers (the way to the mount, mount_ref.h). */
enum { CALLER_SOCK_FD = 3, CALLER_PARENT_FD = 4 };

/* The caller process: async-signal-safe calls only. Exits when the daemon closes its end (or
 * dies: the parent-death signal covers a death before the first read). */
__attribute__((noreturn)) static void caller_main(int sock, pid_t daemon,
                                                  const struct mount_ref *mount)
{
    static char msg[BATCH_BYTES];
    static int errs[BATCH_MAX];
    struct mount_ref ref = *mount;
    sigset_t all;

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "twinfs-caller"); /* in ps and top, apart from the daemon */
    if (getppid() != daemon)
        _exit(0);
    /* Copies above the two slots first: either may be the other's number now. */
    int s = fcntl(sock, F_DUPFD, CALLER_PARENT_FD + 1);
    int p = fcntl(ref.parent_fd, F_DUPFD, CALLER_PARENT_FD + 1);
    if (s < 0 || p < 0 || dup2(s, CALLER_SOCK_FD) < 0 || dup2(p, CALLER_PARENT_FD) < 0)
        _exit(0);
    sock = CALLER_SOCK_FD;
    ref.parent_fd = CALLER_PARENT_FD;
    ref.covered_fd = -1;
    /* It is forked before a daemon's stdio goes to /dev/null: pipes kept open here would keep
     * whoever started twinfs (a shell's $(...), subprocess.run) waiting for their end. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    /* /dev/fuse above all: the daemon's death must close it. The parent directory is not on
     * the mount and does not keep it busy. */
    close_range(CALLER_PARENT_FD + 1, ~0U, 0);
    char ready = 1;
    if (send(sock, &ready, 1, MSG_NOSIGNAL) != 1)
        _exit(0);
    for (;;) {
        ssize_t n = recv(sock, msg, sizeof(msg), 0);
        if (n <= 0)
            _exit(0);
        /* Once per batch, not kept: an open descriptor on the mount would make the owner's
         * fusermount3 -u fail as busy. */
        int root = mount_ref_open_root(&ref);
        struct dir_cache dc = {.fd = -1};
        size_t at = 0, count = 0;
        while (count < BATCH_MAX && at + 1 < (size_t)n) {
            const char *path = msg + at + 1;
            size_t len = 0;
            while (at + 1 + len < (size_t)n && path[len])
                len++;
            if (at + 1 + len == (size_t)n)
                break; /* no NUL: not a call the daemon sent */
            errs[count++] = root < 0 ? -root : call_at(root, msg[at], path, &dc);
            at += len + 2;
        }
        if (dc.fd >= 0)
            close(dc.fd);
        if (root >= 0)
            close(root);
        if (send(sock, errs, count * sizeof(errs[0]), MSG_NOSIGNAL) < 0)
            _exit(0);
    }
}

/* Starts the caller process. Returns 0 or -errno. */
static int caller_start(struct twinfs *fs)
{
    int sv[2];
    pid_t daemon = getpid();

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        return -err;
    }
    if (pid == 0) {
        close(sv[0]);
        caller_main(sv[1], daemon, &fs->root);
    }
    close(sv[1]);
    /* It says when it is set up: named, and holding none of our files. Until then it is a copy
     * of the daemon, which ps (and a script counting twinfs processes) would show twice. */
    char ready = 0;
    ssize_t n;
    do {
        n = recv(sv[0], &ready, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        int err = n < 0 ? errno : EPIPE;
        close(sv[0]);
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -err;
    }
    fs->mat_sock = sv[0];
    atomic_store(&fs->mat_pid, (int)pid);
    return 0;
}

/* Ends the caller process once nothing more is asked of it. */
static void caller_stop(struct twinfs *fs)
{
    pid_t pid = atomic_load(&fs->mat_pid);

    if (pid <= 0)
        return;
    close(fs->mat_sock); /* EOF: it exits */
    fs->mat_sock = -1;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    atomic_store(&fs->mat_pid, 0);
}

/* A new caller for one that died on its own (a kill, the OOM killer): without it every entry
 * would be shown without its inotify event from then on. At most one restart a second, so that
 * a caller that cannot live does not turn into a fork loop. Returns 0 or -errno. */
static int caller_restart(struct twinfs *fs)
{
    double now = monotonic_now_s();

    pthread_mutex_lock(&fs->tree.lock);
    bool stopping = fs->mq_stop;
    pthread_mutex_unlock(&fs->tree.lock);
    if (stopping)
        return -ESHUTDOWN;
    if (fs->mat_restarted_at > 0 && now - fs->mat_restarted_at < 1.0)
        return -EAGAIN;
    fs->mat_restarted_at = now;
    pid_t pid = atomic_load(&fs->mat_pid);
    if (pid > 0)
        kill(pid, SIGKILL); /* dead already, or of no use any more */
    caller_stop(fs);
    int r = caller_start(fs);
    if (r < 0)
        fs_log(fs, LOG_ERR, "materializer: the caller process died; a new one: %s", strerror(-r));
    else
        fs_log(fs, LOG_WARNING, "materializer: the caller process died; started a new one");
    return r;
}

/* Adds a call; false if the batch has no room left for it. */
static bool batch_add(struct mat_batch *b, char op, uint64_t ino, const char *path)
{
    size_t len = strlen(path);

    if (b->count == BATCH_MAX || b->used + len + 2 > sizeof(b->msg))
        return false;
    b->msg[b->used] = op;
    b->path_at[b->count] = b->used + 1;
    memcpy(b->msg + b->used + 1, path, len + 1);
    b->ino[b->count] = ino;
    b->used += len + 2;
    b->count++;
    return true;
}

/* Has the caller make the batch's calls on the mount and fills errs, one per call: 0 or an
 * errno. Returns 0, or the error of the exchange itself (then the calls it did not answer carry
 * it). */
static int batch_call(struct twinfs *fs, const struct mat_batch *b, int *errs)
{
    size_t answered = 0;
    int err = 0;

    if (send(fs->mat_sock, b->msg, b->used, MSG_NOSIGNAL) < 0) {
        err = errno;
    } else {
        ssize_t n;
        do {
            n = recv(fs->mat_sock, errs, b->count * sizeof(errs[0]), 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
            err = errno;
        else
            answered = (size_t)n / sizeof(errs[0]);
        if (!err && answered < b->count)
            err = n == 0 ? EPIPE : EPROTO;
    }
    for (size_t i = answered; i < b->count; i++)
        errs[i] = err;
    return err;
}

/* Sends the batch, if any, and settles each call's entry. Called and returns with the lock
 * held; drops it meanwhile (the calls come back to handlers that take it). */
static void batch_flush(struct twinfs *fs, struct mat_batch *b)
{
    int errs[BATCH_MAX];

    if (b->count == 0)
        return;
    pthread_mutex_unlock(&fs->tree.lock);
    bool again = batch_call(fs, b, errs) != 0 && caller_restart(fs) == 0;
    if (again)
        batch_call(fs, b, errs);
    for (size_t i = 0; i < b->count; i++) {
        const char *path = b->msg + b->path_at[i];
        if (again && errs[i] == EEXIST)
            errs[i] = 0; /* made by the caller that died, before it died */
        if (errs[i]) {
            show_without_event(fs, b->ino[i], path, errs[i]);
            continue;
        }
        if (path[-1] == 'n')
            store_content(fs, b->ino[i]);
        atomic_fetch_add(&fs->materialized, 1);
    }
    b->count = 0;
    b->used = 0;
    pthread_mutex_lock(&fs->tree.lock);
}

/* An event whose asset is not shown yet: its mknod needs the directory, whose mkdir may be in
 * the batch (the queue has the asset before its events, and nothing else brings them back). */
static bool waits_for_its_asset(struct node *n)
{
    if (!n || n->kind != NODE_EVENT || n->state != NODE_PENDING)
        return false;
    struct node *asset = tree_asset_of(n);
    return asset && asset->state == NODE_PENDING;
}

/* Takes entries off the queue and batches their calls. Entries keep their order: a delete or a
 * wait first sends what is batched before it. Runs with the lock held except around calls and
 * sleeps. */
static void *materializer_main(void *arg)
{
    struct twinfs *fs = arg;
    struct mat_batch *b = fs->mat_batch;
    sigset_t all;
    char path[PATH_MAX];
    char name[NAME_MAX + 1];

    /* Signals go to the session threads; a signal here would interrupt our own requests. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    pthread_mutex_lock(&fs->tree.lock);
    while (!fs->init_done && !fs->mq_stop)
        pthread_cond_wait(&fs->mq_cond, &fs->tree.lock);
    while (!fs->mq_stop) {
        if (b->count > 0 && waits_for_its_asset(fs->mq_head)) {
            batch_flush(fs, b); /* the asset's mkdir may be in it */
            continue;
        }
        struct node *n = mq_pop(fs);
        fs->mq_busy = n != NULL || b->count > 0;
        if (!n) {
            if (b->count > 0)
                batch_flush(fs, b); /* the queue ran dry: what is batched goes now */
            else
                pthread_cond_wait(&fs->mq_cond, &fs->tree.lock);
            continue;
        }
        struct timespec wait_until;
        enum mat_action act = plan(fs, n, path, sizeof(path), &wait_until);
        uint64_t ino = n->ino;
        size_t name_len = strlen(n->name);
        if (name_len > NAME_MAX)
            name_len = NAME_MAX;
        memcpy(name, n->name, name_len);
        name[name_len] = '\0';
        tree_maybe_free(&fs->tree, n); /* it may have waited for us to let go */

        switch (act) {
        case MAT_NONE:
            break;
        case MAT_DELETE:
            batch_flush(fs, b);
            pthread_mutex_unlock(&fs->tree.lock);
            int r = fuse_lowlevel_notify_delete(fs->se, TREE_INO_ASSETS, ino, name, name_len);
            if (r)
                r = fuse_lowlevel_notify_inval_entry(fs->se, TREE_INO_ASSETS, name, name_len);
            if (r && r != -ENOENT)
                fs_log(fs, LOG_DEBUG, "materializer: forget %s: %s", name, strerror(-r));
            pthread_mutex_lock(&fs->tree.lock);
            break;
        case MAT_MKNOD:
        case MAT_MKDIR:
            if (act == MAT_MKNOD && !time_reached(&wait_until)) {
                batch_flush(fs, b);
                pthread_mutex_unlock(&fs->tree.lock);
                sleep_until(&wait_until);
                pthread_mutex_lock(&fs->tree.lock);
            }
            char op = act == MAT_MKDIR ? 'd' : 'n';
            if (!batch_add(b, op, ino, path)) {
                batch_flush(fs, b);
                batch_add(b, op, ino, path); /* an empty batch has room for any path */
            }
            if (b->count == BATCH_MAX)
                batch_flush(fs, b);
            break;
        }
    }
    pthread_mutex_unlock(&fs->tree.lock);
    return NULL;
}

int materializer_start(struct twinfs *fs)
{
    sigset_t stop_signals, old;
    int r;

    /* SIGTERM and friends must reach the session loop's threads, not this one: a signal taken
     * here would not wake the loop. The thread inherits the mask set around its creation. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old);
    fs->mat_batch = calloc(1, sizeof(*fs->mat_batch));
    if (!fs->mat_batch) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return -ENOMEM;
    }
    r = -caller_start(fs);
    if (r == 0) {
        r = pthread_create(&fs->mat_thread, NULL, materializer_main, fs);
        if (r)
            caller_stop(fs);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        free(fs->mat_batch);
        fs->mat_batch = NULL;
        return -r;
    }
    fs->mat_running = true;
    return 0;
}

void materializer_init_done(struct twinfs *fs)
{
    pthread_mutex_lock(&fs->tree.lock);
    fs->init_done = true;
    pthread_cond_broadcast(&fs->mq_cond);
    pthread_mutex_unlock(&fs->tree.lock);
}

int materializer_stop(struct twinfs *fs, unsigned timeout_ms)
{
    if (!fs->mat_running)
        return 0;
    pthread_mutex_lock(&fs->tree.lock);
    fs->mq_stop = true;
    pthread_cond_broadcast(&fs->mq_cond);
    pthread_mutex_unlock(&fs->tree.lock);
    if (timeout_ms) {
        struct timespec ts = deadline_after_ms(timeout_ms);
        if (pthread_timedjoin_np(fs->mat_thread, NULL, &ts) != 0)
            return -ETIMEDOUT;
    } else {
        pthread_join(fs->mat_thread, NULL);
    }
    fs->mat_running = false;
    caller_stop(fs);
    free(fs->mat_batch);
    fs->mat_batch = NULL;
    return 0;
}
