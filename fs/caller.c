/* caller: see caller.h. */
#include "caller.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "twin/deadline.h"

enum { BATCH_BYTES = 65536 };

struct caller {
    struct mount_ref root; /* the mount, as made; its descriptors are borrowed */
    atomic_int pid;        /* 0 when there is none */
    int sock;              /* the daemon's end of the socket pair */
    double restarted_at;   /* when a dead process was last replaced (monotonic s) */
    size_t count;          /* calls in the batch */
    size_t used;           /* bytes of msg */
    uint64_t ino[CALLER_BATCH_MAX];
    unsigned tag[CALLER_BATCH_MAX];
    size_t path_at[CALLER_BATCH_MAX]; /* where each call's path starts in msg */
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

/* The directory of a batch's last call: a batch's events mostly share one, and the walk to
 * it costs three opens. Only within a batch: a deleted asset first sends what is batched. */
struct dir_cache {
    int fd; /* -1: none */
    size_t len;
    char path[512];
};

/* Opens the directory of path (relative to root; root itself for a name alone), walked (walk)
 * or found in dc, and points *ret_name at the last component. Returns 0 (*ret_dir set, owned
 * by dc or root) or an errno. Async-signal-safe. */
static int dir_of(int root, const char *path, struct dir_cache *dc, int *ret_dir,
                  const char **ret_name)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    size_t dir_len = slash ? (size_t)(slash - path) : 0;

    if (!component_ok(name, strlen(name)))
        return EINVAL;
    *ret_name = name;
    *ret_dir = root;
    if (dir_len == 0)
        return 0;
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
    *ret_dir = dc->fd;
    return 0;
}

/* Opens name in dir with flags and closes it: a close after a write open is what fires
 * IN_CLOSE_WRITE. Returns 0 or an errno. */
static int open_close(int dir, const char *name, int flags)
{
    int fd = openat(dir, name, flags | O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0444);

    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

/* Makes one call, paths relative to root; dc[0] and dc[1] cache the directories of the first
 * and of the second path. Returns 0 or an errno. Async-signal-safe. */
static int call_at(int root, char op, const char *path, const char *path2, struct dir_cache *dc)
{
    const char *name, *name2;
    int dir, dir2, err = dir_of(root, path, &dc[0], &dir, &name);

    if (err)
        return err;
    switch (op) {
    case CALLER_MKDIR:
        return mkdirat(dir, name, 0555) < 0 ? errno : 0;
    case CALLER_CREATE:
        return open_close(dir, name, O_CREAT | O_EXCL);
    case CALLER_LINK:
        err = dir_of(root, path2, &dc[1], &dir2, &name2);
        if (err)
            return err;
        if (linkat(dir, name, dir2, name2, 0) < 0)
            return errno;
        err = open_close(dir2, name2, 0);
        return err == ENOENT ? 0 : err; /* acked already, through that name */
    case CALLER_UNLINK:
        return unlinkat(dir, name, 0) < 0 ? errno : 0;
    case CALLER_RMDIR:
        return unlinkat(dir, name, AT_REMOVEDIR) < 0 ? errno : 0;
    default:
        return EINVAL;
    }
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
    static int errs[CALLER_BATCH_MAX];
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
        struct dir_cache dc[2] = {{.fd = -1}, {.fd = -1}};
        size_t at = 0, count = 0;
        while (count < CALLER_BATCH_MAX && at + 1 < (size_t)n) {
            char op = msg[at];
            const char *path = msg + at + 1, *path2 = NULL;
            size_t len = strnlen(path, (size_t)n - at - 1);
            if (at + 1 + len == (size_t)n)
                break; /* no NUL: not a call the daemon sent */
            at += len + 2;
            if (op == CALLER_LINK) {
                path2 = msg + at;
                len = at < (size_t)n ? strnlen(path2, (size_t)n - at) : 0;
                if (at + len >= (size_t)n)
                    break;
                at += len + 1;
            }
            errs[count++] = root < 0 ? -root : call_at(root, op, path, path2, dc);
        }
        for (size_t i = 0; i < 2; i++) {
            if (dc[i].fd >= 0)
                close(dc[i].fd);
        }
        if (root >= 0)
            close(root);
        if (send(sock, errs, count * sizeof(errs[0]), MSG_NOSIGNAL) < 0)
            _exit(0);
    }
}

/* Starts the process. Returns 0 or -errno. */
static int spawn(struct caller *c)
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
        caller_main(sv[1], daemon, &c->root);
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
    c->sock = sv[0];
    atomic_store(&c->pid, (int)pid);
    return 0;
}

void caller_stop(struct caller *c)
{
    pid_t pid = atomic_load(&c->pid);

    if (pid <= 0)
        return;
    close(c->sock); /* EOF: it exits */
    c->sock = -1;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    atomic_store(&c->pid, 0);
}

struct caller *caller_new(void)
{
    struct caller *c = calloc(1, sizeof(*c));

    if (c)
        c->sock = -1;
    return c;
}

int caller_start(struct caller *c, const struct mount_ref *mount)
{
    c->root = *mount;
    return spawn(c);
}

int caller_restart(struct caller *c)
{
    double now = monotonic_now_s();

    if (c->restarted_at > 0 && now - c->restarted_at < 1.0)
        return -EAGAIN;
    c->restarted_at = now;
    pid_t pid = atomic_load(&c->pid);
    if (pid > 0)
        kill(pid, SIGKILL); /* dead already, or of no use any more */
    caller_stop(c);
    return spawn(c);
}

void caller_free(struct caller *c)
{
    if (!c)
        return;
    caller_stop(c);
    free(c);
}

pid_t caller_pid(const struct caller *c)
{
    return atomic_load(&c->pid);
}

bool caller_add(struct caller *b, enum caller_op op, uint64_t ino, unsigned tag, const char *path,
                const char *path2)
{
    size_t len = strlen(path);
    size_t len2 = path2 ? strlen(path2) + 1 : 0;

    if (b->count == CALLER_BATCH_MAX || b->used + len + 2 + len2 > sizeof(b->msg))
        return false;
    b->msg[b->used] = (char)op;
    b->path_at[b->count] = b->used + 1;
    memcpy(b->msg + b->used + 1, path, len + 1);
    if (path2)
        memcpy(b->msg + b->used + len + 2, path2, len2);
    b->ino[b->count] = ino;
    b->tag[b->count] = tag;
    b->used += len + 2 + len2;
    b->count++;
    return true;
}

int caller_send(struct caller *b, int *errs)
{
    size_t answered = 0;
    int err = 0;

    if (send(b->sock, b->msg, b->used, MSG_NOSIGNAL) < 0) {
        err = errno;
    } else {
        ssize_t n;
        do {
            n = recv(b->sock, errs, b->count * sizeof(errs[0]), 0);
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

size_t caller_count(const struct caller *c)
{
    return c->count;
}

enum caller_op caller_call_op(const struct caller *c, size_t i)
{
    return (enum caller_op)c->msg[c->path_at[i] - 1];
}

uint64_t caller_call_ino(const struct caller *c, size_t i)
{
    return c->ino[i];
}

unsigned caller_call_tag(const struct caller *c, size_t i)
{
    return c->tag[i];
}

const char *caller_call_path(const struct caller *c, size_t i)
{
    return c->msg + c->path_at[i];
}

void caller_clear(struct caller *c)
{
    c->count = 0;
    c->used = 0;
}
