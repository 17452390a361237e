/* Unit tests of runner: signals become shutdown requests, timeouts time out, the previous
 * signal handlers come back, and the ops are called in order with the right errors. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "twin/runner.h"
#include "unit.h"

static char trace[64];
static size_t trace_len;
static int shutdown_err = 12345;

static void note(char c)
{
    if (trace_len + 1 < sizeof(trace))
        trace[trace_len++] = c;
    trace[trace_len] = '\0';
}

static void reset(void)
{
    trace_len = 0;
    trace[0] = '\0';
    shutdown_err = 12345;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int startup_ok(void *u)
{
    (void)u;
    note('s');
    return 0;
}

static int startup_fail(void *u)
{
    (void)u;
    note('s');
    return -ENOENT;
}

static void on_shutdown(void *u, int err)
{
    (void)u;
    note('d');
    shutdown_err = err;
}

static int main_sigterm(struct runner *r, void *u)
{
    (void)u;
    note('m');
    /* A timeout with no signal returns 0 after about the time asked. */
    double t0 = now_s();
    CHECK_INT_EQ(runner_wait_for_shutdown(r, 0.2), 0);
    double dt = now_s() - t0;
    CHECK(dt >= 0.19 && dt < 2.0);
    CHECK_INT_EQ(runner_wait_for_shutdown(r, 0), 0);
    CHECK_INT_EQ(raise(SIGTERM), 0);
    t0 = now_s();
    CHECK_INT_EQ(runner_wait_for_shutdown(r, 10), 1);
    CHECK(now_s() - t0 < 1.0);
    /* The request is sticky. */
    CHECK_INT_EQ(runner_wait_for_shutdown(r, 0), 1);
    return -EINTR;
}

static int main_sigint(struct runner *r, void *u)
{
    (void)u;
    CHECK_INT_EQ(raise(SIGINT), 0);
    CHECK_INT_EQ(runner_wait_for_shutdown(r, -1), 1);
    return 0;
}

static void *requester(void *arg)
{
    usleep(100000);
    runner_request_shutdown(arg);
    return NULL;
}

static int main_thread_request(struct runner *r, void *u)
{
    (void)u;
    pthread_t t;
    CHECK_INT_EQ(pthread_create(&t, NULL, requester, r), 0);
    double t0 = now_s();
    CHECK_INT_EQ(runner_wait_for_shutdown(r, 10), 1);
    CHECK(now_s() - t0 < 2.0);
    pthread_join(t, NULL);
    return 0;
}

static int main_nested(struct runner *r, void *u)
{
    (void)r;
    static const struct runner_ops inner = {.on_startup = startup_ok};
    CHECK_INT_EQ(runner_run(&inner, u), -EBUSY);
    return 0;
}

static volatile sig_atomic_t old_handler_hits;
static void old_handler(int sig)
{
    (void)sig;
    old_handler_hits++;
}

static void test_sigterm_and_restore(void)
{
    struct sigaction sa = {0}, cur;
    sa.sa_handler = old_handler;
    sigemptyset(&sa.sa_mask);
    CHECK_INT_EQ(sigaction(SIGTERM, &sa, NULL), 0);
    CHECK_INT_EQ(sigaction(SIGINT, &sa, NULL), 0);

    reset();
    struct runner_ops ops = {startup_ok, main_sigterm, on_shutdown};
    CHECK_INT_EQ(runner_run(&ops, NULL), -EINTR);
    CHECK_STR_EQ(trace, "smd");
    CHECK_INT_EQ(shutdown_err, -EINTR);
    CHECK_INT_EQ(old_handler_hits, 0); /* the runner's handler took the signal */

    /* The previous handlers are back. */
    CHECK_INT_EQ(sigaction(SIGTERM, NULL, &cur), 0);
    CHECK(cur.sa_handler == old_handler);
    CHECK_INT_EQ(sigaction(SIGINT, NULL, &cur), 0);
    CHECK(cur.sa_handler == old_handler);
    raise(SIGTERM);
    CHECK_INT_EQ(old_handler_hits, 1);

    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
}

static void test_sigint(void)
{
    reset();
    struct runner_ops ops = {startup_ok, main_sigint, on_shutdown};
    CHECK_INT_EQ(runner_run(&ops, NULL), 0);
    CHECK_INT_EQ(shutdown_err, 0);
    CHECK_STR_EQ(trace, "sd");
}

static void test_startup_failure(void)
{
    reset();
    struct runner_ops ops = {startup_fail, main_sigterm, on_shutdown};
    CHECK_INT_EQ(runner_run(&ops, NULL), -ENOENT);
    CHECK_STR_EQ(trace, "sd"); /* main never ran */
    CHECK_INT_EQ(shutdown_err, -ENOENT);
}

static void test_request_from_thread(void)
{
    reset();
    struct runner_ops ops = {startup_ok, main_thread_request, on_shutdown};
    CHECK_INT_EQ(runner_run(&ops, NULL), 0);
    CHECK_STR_EQ(trace, "sd");
}

static void test_nested(void)
{
    reset();
    struct runner_ops ops = {NULL, main_nested, NULL};
    CHECK_INT_EQ(runner_run(&ops, NULL), 0);
}

int main(void)
{
    RUN(test_sigterm_and_restore);
    RUN(test_sigint);
    RUN(test_startup_failure);
    RUN(test_request_from_thread);
    RUN(test_nested);
    return 0;
}
