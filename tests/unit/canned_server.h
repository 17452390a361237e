/* canned_server: a tiny HTTP server for unit tests on a loopback port chosen by the kernel.
 * Each connection gets the next canned answer (or silence for a while when it is NULL); the
 * last request head is kept for checks. It stops accepting after the last answer. */
#pragma once
#include <pthread.h>
#include <stddef.h>

struct canned_server {
    int fd;
    int port;
    const char *const *answers;
    size_t n_answers, next;
    char last_request[4096];
    pthread_t thread;
};

/* Listens on 127.0.0.1 and serves answers[0..n) in a thread; a failure exits the test. */
void canned_server_start(struct canned_server *s, const char *const *answers, size_t n);

/* Waits until every answer was served, then closes the socket. */
void canned_server_stop(struct canned_server *s);
