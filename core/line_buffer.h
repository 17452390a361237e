/* line_buffer: splits a byte stream into lines (NDJSON framing) with a bound on line length.
 *
 * Bytes are fed as they arrive from the network; each complete line (without its '\n', and
 * without a trailing '\r') is handed to the callback. A line longer than max_line is dropped
 * whole and reported once through the callback with line == NULL and len == the bytes dropped,
 * so memory never grows past max_line whatever the peer sends. Empty lines (NDJSON keep-alives)
 * are skipped. The line passed to the callback is not NUL-terminated and is valid only during
 * the call. */
#pragma once
#include <stddef.h>

struct line_buffer;

/* Return 0 to go on, or a negative errno to stop: line_buffer_feed then returns it. */
typedef int (*line_buffer_fn)(void *userdata, const char *line, size_t len);

struct line_buffer *line_buffer_new(size_t max_line);
void line_buffer_free(struct line_buffer *lb);

/* Feeds len bytes; calls fn for every line completed. Returns 0, -ENOMEM, or fn's negative
 * return (the rest of data is then not consumed: reset before feeding again). */
int line_buffer_feed(struct line_buffer *lb, const char *data, size_t len, line_buffer_fn fn,
                     void *userdata);

/* Drops any partial line (after a reconnect, a partial line is never completed). */
void line_buffer_reset(struct line_buffer *lb);
