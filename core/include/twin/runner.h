/* runner: the ThingRunner lifecycle for C programs.
 *
 * runner_run calls on_startup, then main (which loops on runner_wait_for_shutdown), then
 * on_shutdown with main's result. SIGINT and SIGTERM request a shutdown (handled with a
 * self-pipe, async-signal-safe), and the previous handlers are restored when runner_run
 * returns. */
#pragma once

struct runner;

struct runner_ops {
    int (*on_startup)(void *userdata);             /* 0 or -errno (then no main) */
    int (*main)(struct runner *r, void *userdata); /* 0 or -errno */
    void (*on_shutdown)(void *userdata, int err);  /* err: main's result or startup's */
};

/* Returns on_startup's error, or main's result. */
int runner_run(const struct runner_ops *ops, void *userdata);

/* Waits up to timeout_s (< 0: forever). Returns 1 if a shutdown was requested, 0 on timeout. */
int runner_wait_for_shutdown(struct runner *r, double timeout_s);

/* Requests a shutdown from any thread. */
void runner_request_shutdown(struct runner *r);
