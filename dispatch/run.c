/* run: see run.h. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

extern char **environ;

#define RELAY_LINE 4096

/* The environment of the last spawn, reused: pointers into environ and the request. */
static const char **env_buf;
static size_t env_cap;
static int dev_null = -1;

static bool env_replaced(const char *entry, const struct run_req *req)
{
    for (size_t i = 0; i < req->n_env; i++) {
        const char *eq = strchr(req->env[i], '=');
        size_t n = eq ? (size_t)(eq - req->env[i]) : strlen(req->env[i]);
        if (strncmp(entry, req->env[i], n) == 0 && entry[n] == '=')
            return true;
    }
    return false;
}

static int env_build(const struct run_req *req)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    if (n + req->n_env + 1 > env_cap) {
        size_t cap = n + req->n_env + 16;
        const char **b = realloc(env_buf, cap * sizeof(*b));
        if (!b)
            return -ENOMEM;
        env_buf = b;
        env_cap = cap;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!env_replaced(environ[i], req))
            env_buf[k++] = environ[i];
    for (size_t i = 0; i < req->n_env; i++)
        env_buf[k++] = req->env[i];
    env_buf[k] = NULL;
    return 0;
}

/* The signals a handler gets back to SIG_DFL: those the dispatcher ignores (SIGPIPE, and any
 * it was started with ignored). Handled signals need nothing: the dispatcher has no handlers
 * (its signals come through a signalfd), and exec resets caught ones anyway. */
static sigset_t ignored;
static bool ignored_known;

static void note_ignored(void)
{
    struct sigaction sa;

    sigemptyset(&ignored);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            sigaddset(&ignored, sig);
    ignored_known = true;
}

/* fd becomes to (kept across exec; dup2 onto itself would leave close-on-exec set). */
static int move_fd(int fd, int to)
{
    return fd == to ? fcntl(fd, F_SETFD, 0) : dup2(fd, to);
}

/* What the child of vfork does before its exec: only system calls, nothing that takes a lock
 * or writes the parent's memory but *child_err (the parent reads it once the child has left
 * the shared address space). */
static void child_exec(const struct run_req *req, int in_fd, int err_fd, char *const argv[],
                       volatile int *child_err)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;

    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&ignored, sig) == 1)
            sigaction(sig, &dfl, NULL);
    if (setpgid(0, 0) < 0 || move_fd(in_fd, 0) < 0 || move_fd(err_fd, 2) < 0 ||
        chdir(req->cwd) < 0 || sigprocmask(SIG_SETMASK, &none, NULL) < 0) {
        *child_err = errno;
        _exit(127);
    }
    execve(req->path, argv, (char *const *)env_buf);
    *child_err = errno;
    _exit(127);
}

/* Starts the child: vfork (no page tables copied, no stack mapped and unmapped per handler, as
 * posix_spawn does) with every signal blocked until the child's mask is set. Returns its pid,
 * or -errno. */
static pid_t start_child(const struct run_req *req, int in_fd, int err_fd)
{
    static volatile int child_err;
    char *argv[] = {(char *)req->arg0, (char *)req->arg1, NULL};
    sigset_t all, old;

    sigfillset(&all);
    if (sigprocmask(SIG_SETMASK, &all, &old) < 0)
        return -errno;
    child_err = 0;
    /* The analyzer forbids every call but exec and _exit after vfork; child_exec keeps to
     * system calls and writes nothing of the parent's but child_err, and the dispatcher is one
     * thread, so the suspended parent cannot be blocked by a lock the child takes. */
    pid_t pid = vfork(); /* NOLINT(clang-analyzer-security.insecureAPI.vfork) */
    if (pid == 0)
        child_exec(req, in_fd, err_fd, argv, &child_err); /* NOLINT(clang-analyzer-unix.Vfork) */
    int e = pid < 0 ? errno : child_err;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid > 0 && e) {
        waitpid(pid, NULL, 0); /* exited 127 at once; reaped here, not seen by the loop */
        return -e;
    }
    return pid < 0 ? -e : pid;
}

int run_spawn(const struct run_req *req, pid_t *ret_pid, int *ret_err_fd)
{
    int pipefd[2];
    int r;

    if (!ignored_known)
        note_ignored();
    if (dev_null < 0) {
        dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (dev_null < 0)
            return -errno;
    }
    r = env_build(req);
    if (r < 0)
        return r;
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = start_child(req, req->stdin_fd >= 0 ? req->stdin_fd : dev_null, pipefd[1]);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return pid;
    }
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    *ret_pid = pid;
    *ret_err_fd = pipefd[0];
    return 0;
}

void run_cleanup(void)
{
    free(env_buf);
    env_buf = NULL;
    env_cap = 0;
    if (dev_null >= 0)
        close(dev_null);
    dev_null = -1;
}

struct run_relay {
    char *prefix;
    size_t len;
    char buf[RELAY_LINE];
};

struct run_relay *run_relay_new(const char *prefix)
{
    struct run_relay *r = malloc(sizeof(*r));
    if (!r)
        return NULL;
    r->prefix = strdup(prefix);
    if (!r->prefix) {
        free(r);
        return NULL;
    }
    r->len = 0;
    return r;
}

void run_relay_free(struct run_relay *r)
{
    if (!r)
        return;
    free(r->prefix);
    free(r);
}

static void relay_emit(struct run_relay *r, const char *line, size_t n)
{
    log_text(r->prefix, line, n);
}

int run_relay_read(struct run_relay *r, int fd)
{
    for (size_t taken = 0; taken < RUN_RELAY_BUDGET;) {
        ssize_t n = read(fd, r->buf + r->len, sizeof(r->buf) - r->len);
        if (n < 0)
            return errno == EAGAIN ? 1 : (errno == EINTR ? 1 : -errno);
        if (n == 0)
            return 0;
        r->len += (size_t)n;
        size_t start = 0;
        for (size_t i = start; i < r->len; i++)
            if (r->buf[i] == '\n') {
                relay_emit(r, r->buf + start, i - start);
                start = i + 1;
            }
        if (start == 0 && r->len == sizeof(r->buf)) {
            relay_emit(r, r->buf, r->len);
            start = r->len;
        }
        memmove(r->buf, r->buf + start, r->len - start);
        r->len -= start;
        taken += (size_t)n;
    }
    return 1;
}

void run_relay_flush(struct run_relay *r)
{
    if (r->len)
        relay_emit(r, r->buf, r->len);
    r->len = 0;
}
