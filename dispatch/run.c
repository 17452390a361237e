/* run: see run.h. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
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

static int spawn_attrs(posix_spawnattr_t *attr)
{
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    int r = posix_spawnattr_setsigmask(attr, &none);
    if (r == 0)
        r = posix_spawnattr_setsigdefault(attr, &all);
    if (r == 0)
        r = posix_spawnattr_setpgroup(attr, 0);
    if (r == 0)
        r = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                               POSIX_SPAWN_SETPGROUP);
    return -r;
}

int run_spawn(const struct run_req *req, pid_t *ret_pid, int *ret_err_fd)
{
    int pipefd[2];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int r;

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
    r = -posix_spawn_file_actions_init(&fa);
    if (r < 0)
        goto fail_pipe;
    r = -posix_spawnattr_init(&attr);
    if (r < 0)
        goto fail_fa;
    r = spawn_attrs(&attr);
    if (r == 0)
        r = -posix_spawn_file_actions_adddup2(&fa, req->stdin_fd >= 0 ? req->stdin_fd : dev_null,
                                              0);
    if (r == 0)
        r = -posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    if (r == 0)
        r = -posix_spawn_file_actions_addchdir_np(&fa, req->cwd);
    if (r < 0)
        goto fail_attr;
    char *argv[] = {(char *)req->arg0, (char *)req->arg1, NULL};
    pid_t pid;
    r = -posix_spawn(&pid, req->path, &fa, &attr, argv, (char *const *)env_buf);
    if (r < 0)
        goto fail_attr;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    *ret_pid = pid;
    *ret_err_fd = pipefd[0];
    return 0;

fail_attr:
    posix_spawnattr_destroy(&attr);
fail_fa:
    posix_spawn_file_actions_destroy(&fa);
fail_pipe:
    close(pipefd[0]);
    close(pipefd[1]);
    return r;
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
    for (;;) {
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
    }
}

void run_relay_flush(struct run_relay *r)
{
    if (r->len)
        relay_emit(r, r->buf, r->len);
    r->len = 0;
}
