/* run: starting a handler, and relaying its stderr to the dispatcher's log.
 *
 * A handler runs in a process group of its own (so a timeout kills what it started too), with
 * the default signal dispositions and an empty signal mask, its cwd the handlers directory, its
 * stdout the dispatcher's, its stderr a pipe the dispatcher reads (run_relay). Every other
 * descriptor of the dispatcher is close-on-exec. */
#pragma once
#include <stddef.h>
#include <sys/types.h>

struct run_req {
    const char *path; /* the handler, absolute */
    const char *arg0; /* its name, argv[0] */
    const char *arg1; /* argv[1], or NULL */
    const char *cwd;
    int stdin_fd;           /* -1: /dev/null */
    const char *const *env; /* NAME=VALUE strings to add (replacing any of the same name) */
    size_t n_env;
};

/* Starts req's handler. On success returns 0, sets *ret_pid (also its process group) and
 * *ret_err_fd (the read end of its stderr, non-blocking, close-on-exec). -errno on failure
 * (then nothing is left open). */
int run_spawn(const struct run_req *req, pid_t *ret_pid, int *ret_err_fd);

/* A line relay of one handler's stderr: each line is logged as "PREFIX: LINE" with control
 * characters escaped; a line longer than the relay's buffer is logged in pieces. */
struct run_relay;

/* NULL on ENOMEM. prefix is copied. */
struct run_relay *run_relay_new(const char *prefix);
void run_relay_free(struct run_relay *r);

/* Reads what fd has now (non-blocking), at most RUN_RELAY_BUDGET bytes a call, so a handler that
 * writes without end cannot hold the loop. Returns 1 while fd stays open, 0 at its end,
 * -errno. */
#define RUN_RELAY_BUDGET 65536
int run_relay_read(struct run_relay *r, int fd);

/* Logs a last line that has no newline. */
void run_relay_flush(struct run_relay *r);

/* Frees what run_spawn keeps between calls. */
void run_cleanup(void);
