/* t2_stream: one streaming Type 2 request.
 *
 * t2_stream_open sends POST /v1/assets/{asset}/t2/{type}?timeout=S with data as the body and
 * returns once the answer's status is known, so every failure before the first byte is the
 * open's error. The body is then pulled by the reader: there is no transfer thread; each read
 * drives the transfer on the caller's thread and curl writes the body straight into the
 * caller's buffer. What arrives past the end of that buffer is kept for the next read (a few
 * times T2_STREAM_BUFFER at most). While no one reads, no one reads the socket either, so the
 * twin is held back by TCP and memory per stream stays bounded whatever the size of the
 * response. Reads and close may come from different threads, never at the
 * same time; one reader at a time. Only t2_stream_cancel may run alongside a read. */
#pragma once
#include <stddef.h>
#include <sys/types.h>
#include "twin/defaults.h"
#include "twin/twin_error.h"

struct t2_stream;
struct twin_client;

/* Bound on concurrent streams across the process; past it open fails with -EMFILE. */
#define T2_STREAM_MAX_OPEN TWIN_MAX_T2_OPEN
/* Bytes curl reads from the socket at once; also the bound on the bytes a stream keeps past the
 * end of a reader's buffer. */
#define T2_STREAM_BUFFER ((size_t)512 * 1024)

/* Returns 0 with *ret, or the negative errno of the failure's twin_error (twin_error_errno),
 * with *ret_error (may be NULL) set to the twin_error itself. timeout_s bounds the wait for
 * the first byte (and is sent to the twin). */
int t2_stream_open(struct twin_client *c, const char *asset, const char *type, const void *data,
                   size_t len, double timeout_s, struct t2_stream **ret,
                   enum twin_error *ret_error);

/* Reads up to len bytes, blocking until some are there. Returns the count, 0 at the end of the
 * response, -EIO if the response was cut (TWIN_CUT) or curl failed, -ESHUTDOWN after
 * t2_stream_cancel. Bytes that came before a failure are returned first. */
ssize_t t2_stream_read(struct t2_stream *s, void *buf, size_t len);

/* Like t2_stream_read, but waits at most timeout_ms (< 0: no limit) and prefers to fill buf:
 * it returns once len bytes are there, or the response ended, or the deadline passed with at
 * least one byte. Returns -EAGAIN if the deadline passed with none, so the caller can check
 * for an interrupt or a shutdown and wait again. */
ssize_t t2_stream_read_timed(struct t2_stream *s, void *buf, size_t len, int timeout_ms);

/* Like t2_stream_read, with the two bounds a reader that shows a stream live wants: waits at
 * most idle_ms (< 0: no limit) for the first byte, then at most fill_ms (< 0: as 0) more for
 * the rest of len. So a fast response fills buf, and a byte that arrived is held back at most
 * fill_ms, however the rest trickles in. Returns the count, 0 at the end of the response, -EAGAIN
 * if idle_ms passed with no byte (the caller can check for an interrupt or a shutdown and wait
 * again), -EIO if the response was cut (TWIN_CUT) or curl failed, -ESHUTDOWN after
 * t2_stream_cancel. */
ssize_t t2_stream_read_fill(struct t2_stream *s, void *buf, size_t len, int idle_ms, int fill_ms);

/* The mime of the response (Content-Type), never NULL once open succeeded. */
const char *t2_stream_mime(const struct t2_stream *s);

/* Bytes delivered to the reader so far. */
unsigned long long t2_stream_position(const struct t2_stream *s);

/* Wakes a blocked reader with -ESHUTDOWN (for shutdown); later reads get -ESHUTDOWN too. The
 * one call that may run on another thread while a read is in progress. */
void t2_stream_cancel(struct t2_stream *s);

/* Aborts the transfer if still running and frees everything. Accepts NULL. Never while a
 * read or a cancel of s is in progress. */
void t2_stream_close(struct t2_stream *s);

/* Streams currently open in this process (for status). */
unsigned t2_stream_count_open(void);
