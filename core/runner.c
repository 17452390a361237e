/* runner: on_startup, main, on_shutdown, with SIGINT/SIGTERM turned into a shutdown request
 * through a self-pipe (the only async-signal-safe way to wake a poll). */
#include "twin/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "twin/deadline.h"

struct runner {
    int pipe_rd;
    int pipe_wr;
    atomic_bool requested;
};

/* The write end the signal handler uses; -1 when no runner runs. One runner at a time. */
static volatile sig_atomic_t signal_fd = -1;
static atomic_bool running;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    int fd = signal_fd;
    if (fd >= 0) {
        char c = 's';
        /* A full pipe already holds a wake-up; nothing is lost by ignoring EAGAIN. */
        ssize_t n = write(fd, &c, 1);
        (void)n;
    }
    errno = saved;
}

int runner_wait_for_shutdown(struct runner *r, double timeout_s)
{
    double deadline = timeout_s < 0 ? 0 : monotonic_now_s() + timeout_s;
    for (;;) {
        if (atomic_load(&r->requested))
            return 1;
        int ms = -1;
        if (timeout_s >= 0) {
            double left = deadline - monotonic_now_s();
            if (left <= 0)
                return 0;
            ms = left > 1e6 ? 1000000000 : (int)(left * 1000.0 + 0.999);
        }
        struct pollfd pfd = {.fd = r->pipe_rd, .events = POLLIN};
        int n = poll(&pfd, 1, ms);
        if (n < 0 && errno != EINTR)
            return 0;
        if (n > 0) {
            /* Sticky: later calls keep returning 1, so the byte can stay in the pipe. */
            atomic_store(&r->requested, true);
            return 1;
        }
    }
}

void runner_request_shutdown(struct runner *r)
{
    atomic_store(&r->requested, true);
    char c = 'r';
    ssize_t n = write(r->pipe_wr, &c, 1);
    (void)n;
}

int runner_run(const struct runner_ops *ops, void *userdata)
{
    struct runner r = {.pipe_rd = -1, .pipe_wr = -1};
    struct sigaction sa, old_int, old_term;
    int fds[2];
    int err;

    if (atomic_exchange(&running, true))
        return -EBUSY;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        err = -errno;
        goto fail_pipe;
    }
    r.pipe_rd = fds[0];
    r.pipe_wr = fds[1];
    atomic_init(&r.requested, false);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    signal_fd = r.pipe_wr;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    err = ops->on_startup ? ops->on_startup(userdata) : 0;
    if (err == 0 && ops->main)
        err = ops->main(&r, userdata);
    if (ops->on_shutdown)
        ops->on_shutdown(userdata, err);

    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    signal_fd = -1;
    close(r.pipe_wr);
    close(r.pipe_rd);
fail_pipe:
    atomic_store(&running, false);
    return err;
}
