/* line_buffer: NDJSON framing with a hard bound on the memory a line may take. */
#include "line_buffer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct line_buffer {
    size_t max_line;  /* longest line delivered, without "\n" and a trailing "\r" */
    size_t cap;       /* max_line + 1: room for the "\r" before it is stripped */
    size_t len;       /* bytes of the partial line held in buf */
    size_t allocated; /* size of buf; grows up to cap */
    bool dropping;    /* the current line is too long: skip to its end */
    size_t dropped;   /* bytes of the current line skipped so far */
    bool last_cr;     /* the last byte skipped was "\r" (not counted in the report) */
    char *buf;
};

struct line_buffer *line_buffer_new(size_t max_line)
{
    struct line_buffer *lb;

    if (max_line >= SIZE_MAX / 2)
        return NULL;
    lb = calloc(1, sizeof(*lb));
    if (!lb)
        return NULL;
    lb->max_line = max_line;
    lb->cap = max_line + 1;
    /* buf is allocated lazily and grown on demand: most lines are far below the bound. */
    return lb;
}

void line_buffer_free(struct line_buffer *lb)
{
    if (!lb)
        return;
    free(lb->buf);
    free(lb);
}

void line_buffer_reset(struct line_buffer *lb)
{
    lb->len = 0;
    lb->dropping = false;
    lb->dropped = 0;
}

/* Hands one complete line (no "\n") to fn, after stripping one trailing "\r". */
static int deliver(const struct line_buffer *lb, const char *line, size_t len, line_buffer_fn fn,
                   void *userdata)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > lb->max_line)
        return fn(userdata, NULL, len);
    if (len == 0)
        return 0; /* blank lines carry nothing in NDJSON */
    return fn(userdata, line, len);
}

/* Appends n bytes to the partial line (the caller checked the bound), growing buf
 * geometrically so a long line costs O(n) copies. */
static int append(struct line_buffer *lb, const char *data, size_t n)
{
    size_t need = lb->len + n;

    if (need > lb->allocated) {
        size_t want = lb->allocated ? lb->allocated : 256;
        while (want < need)
            want *= 2;
        if (want > lb->cap)
            want = lb->cap;
        char *nb = realloc(lb->buf, want);
        if (!nb)
            return -ENOMEM;
        lb->buf = nb;
        lb->allocated = want;
    }
    memcpy(lb->buf + lb->len, data, n);
    lb->len = need;
    return 0;
}

static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

int line_buffer_feed(struct line_buffer *lb, const char *data, size_t len, line_buffer_fn fn,
                     void *userdata)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t chunk = nl ? (size_t)(nl - data) : len;
        size_t used = nl ? chunk + 1 : chunk;
        int r = 0;

        if (!lb->dropping && lb->len + chunk > lb->cap) {
            /* Too long: forget what we hold and skip to the end of the line. */
            lb->dropping = true;
            lb->dropped = lb->len;
            lb->last_cr = lb->len > 0 && lb->buf[lb->len - 1] == '\r';
            lb->len = 0;
        }
        if (lb->dropping) {
            lb->dropped = add_sat(lb->dropped, chunk);
            if (chunk > 0)
                lb->last_cr = data[chunk - 1] == '\r';
            if (nl) {
                size_t dropped = lb->dropped - (lb->last_cr ? 1 : 0);
                lb->dropping = false;
                lb->dropped = 0;
                r = fn(userdata, NULL, dropped);
            }
        } else if (nl && lb->len == 0) {
            r = deliver(lb, data, chunk, fn, userdata); /* whole line in data: no copy */
        } else {
            r = append(lb, data, chunk);
            if (r == 0 && nl) {
                size_t n = lb->len;
                lb->len = 0;
                r = deliver(lb, lb->buf, n, fn, userdata);
            }
        }
        if (r < 0)
            return r;
        data += used;
        len -= used;
    }
    return 0;
}
