/* t2_stream: the T2 request as a curl easy handle in a multi handle of its own, driven by
 * whoever waits on it.
 *
 * There is no transfer thread: t2_stream_open and the reads run curl_multi_perform
 * and curl_multi_poll on the caller's thread until what they wait for is there. During a read
 * the write callback copies the body straight into the reader's buffer; the part of a chunk
 * that does not fit goes to a spill buffer, served first by the next read. Once the reader's
 * buffer is full the next chunk pauses the transfer: curl keeps the rest of the socket read it
 * was delivering (at most its buffer, T2_STREAM_BUFFER) and reads no more until the next read
 * resumes it. Before the first read (the open), chunks go to the spill until it is full. So a
 * stream holds at most curl's buffer, the spill and one paused read, and between reads nothing
 * reads the socket: the twin is held back by TCP. t2_stream_cancel sets a flag and wakes
 * curl_multi_poll (curl_multi_wakeup), so the mutex only guards that flag. */
#include "twin/t2_stream.h"

#include <curl/curl.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "twin/deadline.h"
#include "twin_client.h"
#include "twin_transfer.h"

/* Extra time past the request's own timeout before we give up on the twin ourselves: the
 * twin answers 504 at the timeout, which is the better error to report. */
#define OPEN_MARGIN_S 5.0
/* The error body of a failed request is small JSON; more is not a twin. */
#define MAX_ERROR_BODY 65536
/* The spill's size, and curl's read size, as a size_t. */
#define SPILL_SIZE ((size_t)T2_STREAM_BUFFER)

static atomic_uint open_count;

struct t2_stream {
    CURLM *multi;
    CURL *h;
    bool attached; /* h is in multi */
    struct curl_slist *headers;
    void *body;
    size_t body_len;

    /* Guards cancelled only: the one field another thread touches during a read. */
    pthread_mutex_t lock;
    bool cancelled; /* reads return -ESHUTDOWN */

    /* The rest belongs to whoever drives the transfer (the opener, then the reader). */
    char *dst; /* the reader's buffer while a read drives the transfer, else NULL */
    size_t dst_len, dst_got;
    unsigned char *spill; /* bytes past the end of a reader's buffer */
    size_t spill_off, spill_len, spill_cap;
    bool paused; /* the write callback paused the transfer: curl holds a chunk */

    bool status_known; /* a 2xx answer's headers seen */
    long status;
    bool done;   /* the transfer ended */
    bool failed; /* curl itself failed during a read: the transfer cannot go on */
    CURLcode result;
    long os_errno; /* the OS error of a failed connect (CURLINFO_OS_ERRNO) */
    char *mime;
    char *error_body;
    size_t error_len;
    unsigned long long position;
};

unsigned t2_stream_count_open(void)
{
    return atomic_load(&open_count);
}

static bool is_cancelled(struct t2_stream *s)
{
    pthread_mutex_lock(&s->lock);
    bool c = s->cancelled;
    pthread_mutex_unlock(&s->lock);
    return c;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct t2_stream *s = userdata;
    size_t n = size * nitems;
    if (n > 2 || (n > 0 && buf[0] != '\r' && buf[0] != '\n'))
        return n;
    /* End of one header block. 1xx blocks are followed by the real answer. */
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 100 && status < 200)
        return n;
    char *ct = NULL;
    curl_easy_getinfo(s->h, CURLINFO_CONTENT_TYPE, &ct);
    s->status = status;
    if (status >= 200 && status < 300) {
        s->mime = strdup(ct && *ct ? ct : "application/octet-stream");
        if (!s->mime)
            return 0;
        s->status_known = true; /* non-2xx: known once the error body is in */
    }
    return n;
}

/* An error answer: keep its JSON body for classification. */
static size_t keep_error_body(struct t2_stream *s, const char *ptr, size_t n)
{
    if (s->error_len + n > MAX_ERROR_BODY)
        return 0;
    char *p = realloc(s->error_body, s->error_len + n + 1);
    if (!p)
        return 0;
    memcpy(p + s->error_len, ptr, n);
    s->error_len += n;
    p[s->error_len] = '\0';
    s->error_body = p;
    return n;
}

/* Appends to the spill. Grows it only for a chunk bigger than curl's buffer, which curl does
 * not make, so the spill stays at SPILL_SIZE. Returns false without memory. */
static bool spill_put(struct t2_stream *s, const char *ptr, size_t n)
{
    if (s->spill_len == 0)
        s->spill_off = 0;
    if (s->spill_off + s->spill_len + n > s->spill_cap) {
        memmove(s->spill, s->spill + s->spill_off, s->spill_len);
        s->spill_off = 0;
        if (s->spill_len + n > s->spill_cap) {
            unsigned char *p = realloc(s->spill, s->spill_len + n);
            if (!p)
                return false;
            s->spill = p;
            s->spill_cap = s->spill_len + n;
        }
    }
    memcpy(s->spill + s->spill_off + s->spill_len, ptr, n);
    s->spill_len += n;
    return true;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct t2_stream *s = userdata;
    size_t n = size * nmemb;

    if (s->status < 200 || s->status >= 300)
        return keep_error_body(s, ptr, n);
    size_t room = s->dst ? s->dst_len - s->dst_got : 0;
    if (room > 0) {
        /* The reader's buffer has room, so the spill is empty: the part of the chunk that does
         * not fit goes there. */
        size_t take = n < room ? n : room;
        memcpy(s->dst + s->dst_got, ptr, take);
        s->dst_got += take;
        if (take < n && !spill_put(s, ptr + take, n - take))
            return 0; /* aborts the transfer: no memory */
        return n;
    }
    if (s->dst || (s->spill_len > 0 && s->spill_len + n > s->spill_cap)) {
        /* The reader's buffer is full (or, before the first read, the spill): curl keeps the
         * rest of what it read from the socket until the next read resumes the transfer, and
         * reads no more. */
        s->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    return spill_put(s, ptr, n) ? n : 0;
}

/* Notes the end of the transfer, if it came. */
static void collect(struct t2_stream *s)
{
    struct CURLMsg *m;
    int left;

    for (;;) {
        m = curl_multi_info_read(s->multi, &left);
        if (!m)
            return;
        if (m->msg != CURLMSG_DONE || m->easy_handle != s->h)
            continue;
        CURLcode rc = m->data.result;
        long os_errno = 0;
        /* Why a connect failed: the process out of fds is not the twin being unreachable. */
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
            curl_easy_getinfo(s->h, CURLINFO_OS_ERRNO, &os_errno);
            /* curl keeps no errno when socket() itself failed: ask the same question again. */
            if (os_errno == 0) {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                    os_errno = errno;
                else
                    close(fd);
            }
        }
        s->done = true;
        s->result = rc;
        s->os_errno = os_errno;
        if (!s->status_known && s->status == 0)
            curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    }
}

/* What a drive waits for. */
enum want {
    WANT_STATUS, /* the answer's status (open) */
    WANT_ANY,    /* one byte in the reader's buffer */
    WANT_FULL,   /* the reader's buffer full */
};

static bool satisfied(const struct t2_stream *s, enum want w)
{
    if (s->done)
        return true;
    switch (w) {
    case WANT_STATUS:
        return s->status_known;
    case WANT_ANY:
        return s->dst_got > 0;
    default:
        return s->dst_got == s->dst_len;
    }
}

/* Runs the transfer on this thread until w, the end of the transfer, a cancel or the deadline
 * (end_s on the CLOCK_MONOTONIC scale, < 0: none). Returns 0 when w or the end came, -ETIMEDOUT,
 * -ESHUTDOWN, or -EIO when curl itself failed. */
static int drive(struct t2_stream *s, enum want w, double end_s)
{
    if (satisfied(s, w))
        return 0;
    for (;;) {
        if (is_cancelled(s))
            return -ESHUTDOWN;
        int running = 0;
        if (curl_multi_perform(s->multi, &running) != CURLM_OK)
            return -EIO;
        collect(s);
        if (satisfied(s, w))
            return 0;
        if (s->paused)
            return 0; /* the spill is full: the buffer is as full as it gets */
        int wait_ms = 1000;
        if (end_s >= 0) {
            double left = end_s - monotonic_now_s();
            if (left <= 0)
                return -ETIMEDOUT;
            wait_ms = left * 1000 < 1000 ? (int)(left * 1000) + 1 : 1000;
        }
        /* Returns on data, on curl's own timers, on a wakeup (cancel), or after wait_ms. */
        if (curl_multi_poll(s->multi, NULL, 0, wait_ms, NULL) != CURLM_OK)
            return -EIO;
    }
}

/* The twin_error of a transfer that ended before a 2xx answer. */
static enum twin_error classify_failure(const struct t2_stream *s)
{
    json_t *j = s->status >= 300 && s->error_body ? json_loads(s->error_body, 0, NULL) : NULL;
    enum twin_error e = twin_error_from_transfer(s->result, s->status,
                                                 json_string_value(json_object_get(j, "error")),
                                                 json_string_value(json_object_get(j, "reason")));

    json_decref(j);
    return e;
}

static char *escape(const char *s)
{
    return curl_easy_escape(NULL, s, 0);
}

static void stream_destroy(struct t2_stream *s)
{
    if (s->attached)
        curl_multi_remove_handle(s->multi, s->h);
    if (s->h)
        curl_easy_cleanup(s->h);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    curl_slist_free_all(s->headers);
    pthread_mutex_destroy(&s->lock);
    free(s->spill);
    free(s->body);
    free(s->mime);
    free(s->error_body);
    free(s);
    atomic_fetch_sub(&open_count, 1);
}

/* Why curl_multi_init found no fds for its wakeup pipe (curl does not keep errno): asks for a
 * pair again. EMFILE or ENFILE when the process or the system is out of fds, else ENOMEM. */
static int pair_errno(void)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return errno == EMFILE || errno == ENFILE ? errno : ENOMEM;
    close(fds[0]);
    close(fds[1]);
    return ENOMEM;
}

int t2_stream_open(struct twin_client *c, const char *asset, const char *type, const void *data,
                   size_t len, double timeout_s, struct t2_stream **ret, enum twin_error *ret_error)
{
    enum twin_error e = TWIN_FAILED;
    struct t2_stream *s;
    char *ea = NULL, *et = NULL;
    char path[2048];
    struct curl_slist *tmp;

    if (ret_error)
        *ret_error = TWIN_FAILED;
    if (!c || !asset || !*asset || !type || !*type || (!data && len > 0))
        return -EINVAL;
    if (timeout_s <= 0)
        timeout_s = 10;
    if (atomic_fetch_add(&open_count, 1) >= T2_STREAM_MAX_OPEN) {
        atomic_fetch_sub(&open_count, 1);
        return -EMFILE;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        atomic_fetch_sub(&open_count, 1);
        return -ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->spill = malloc(SPILL_SIZE);
    s->spill_cap = SPILL_SIZE;
    s->body = malloc(len ? len : 1);
    ea = escape(asset);
    et = escape(type);
    if (!s->spill || !s->body || !ea || !et)
        goto fail_nomem;
    if (len)
        memcpy(s->body, data, len);
    s->body_len = len;
    int n = snprintf(path, sizeof(path), "/v1/assets/%s/t2/%s?timeout=%g", ea, et, timeout_s);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        curl_free(ea);
        curl_free(et);
        stream_destroy(s);
        return -ENAMETOOLONG;
    }
    s->h = twin_client_new_handle(c, path, &s->headers);
    if (!s->h)
        goto fail_nomem;
    /* No "Expect: 100-continue" round trip; the body is small and always wanted. */
    tmp = curl_slist_append(s->headers, "Expect:");
    if (!tmp)
        goto fail_nomem;
    s->headers = tmp;
    tmp = curl_slist_append(s->headers, "Content-Type: application/octet-stream");
    if (!tmp)
        goto fail_nomem;
    s->headers = tmp;
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->h, CURLOPT_POST, 1L);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    /* Bigger reads from the socket: fewer calls into curl per MiB. */
    curl_easy_setopt(s->h, CURLOPT_BUFFERSIZE, (long)SPILL_SIZE);
    curl_free(ea);
    curl_free(et);
    ea = et = NULL;

    /* The multi handle needs fds for its wakeup pipe, which cancel needs: without them it
     * fails, or quietly does without the pipe (trying it once here costs one spurious return
     * of the first poll). */
    s->multi = curl_multi_init();
    if (!s->multi || curl_multi_wakeup(s->multi) != CURLM_OK) {
        int r = pair_errno();
        stream_destroy(s);
        return -r; /* *ret_error stays TWIN_FAILED */
    }
    if (curl_multi_add_handle(s->multi, s->h) != CURLM_OK)
        goto fail_nomem;
    s->attached = true;

    /* Wait for the answer's status, bounded by the request's timeout plus a margin. */
    int r = drive(s, WANT_STATUS, monotonic_now_s() + timeout_s + OPEN_MARGIN_S);
    if (r == 0 && s->status_known) {
        if (ret_error)
            *ret_error = TWIN_OK;
        *ret = s;
        return 0;
    }
    if (r == -ETIMEDOUT)
        e = TWIN_T2_TIMEOUT;
    else if (r == 0)
        e = classify_failure(s);
    long os_errno = r == 0 ? s->os_errno : 0;
    stream_destroy(s);
    if (os_errno == EMFILE || os_errno == ENFILE)
        return -(int)os_errno; /* *ret_error stays TWIN_FAILED */
    if (r == -ESHUTDOWN)
        e = TWIN_SHUTDOWN;
    if (ret_error)
        *ret_error = e;
    return -twin_error_errno(e);

fail_nomem:
    curl_free(ea);
    curl_free(et);
    stream_destroy(s);
    return -ENOMEM;
}

/* Moves spilled bytes to buf; returns the count. */
static size_t take_spill(struct t2_stream *s, char *buf, size_t len)
{
    size_t n = s->spill_len < len ? s->spill_len : len;
    memcpy(buf, s->spill + s->spill_off, n);
    s->spill_off += n;
    s->spill_len -= n;
    if (s->spill_len == 0)
        s->spill_off = 0;
    return n;
}

/* Reads into buf: drives the transfer until w or end_s (< 0: none), then, when fill_ms >= 0
 * and some but not len bytes are there, until len or fill_ms more. Returns the count, 0 at the
 * end, -EAGAIN when end_s passed with none, -EIO (cut, or curl failed), -ESHUTDOWN. A failure
 * after some bytes is returned by the next read, and by every read after it. */
static ssize_t stream_read(struct t2_stream *s, void *buf, size_t len, enum want w, double end_s,
                           int fill_ms)
{
    size_t got;
    int r = 0;

    if (is_cancelled(s))
        return -ESHUTDOWN;
    if (len == 0)
        return 0;
    got = take_spill(s, buf, len);
    if (got < len && !s->failed && (!s->done || s->paused)) {
        /* The spill is empty: curl writes straight into buf from here on. */
        s->dst = buf;
        s->dst_len = len;
        s->dst_got = got;
        if (s->paused) {
            /* Hands over the chunk curl kept, through on_write, which may pause again. */
            s->paused = false;
            if (curl_easy_pause(s->h, CURLPAUSE_CONT) != CURLE_OK)
                r = -EIO;
        }
        if (r == 0)
            r = drive(s, w, end_s);
        if (r == 0 && fill_ms >= 0 && s->dst_got > 0)
            r = drive(s, WANT_FULL, monotonic_now_s() + fill_ms / 1000.0);
        got = s->dst_got;
        s->dst = NULL;
        s->dst_len = s->dst_got = 0;
        if (r == -EIO)
            s->failed = true;
    }
    s->position += got;
    if (got > 0)
        return (ssize_t)got;
    if (r == -ETIMEDOUT)
        return -EAGAIN;
    if (r < 0)
        return r;
    if (s->failed)
        return -EIO;
    if (s->done && s->result != CURLE_OK && s->spill_len == 0 && !s->paused)
        return -EIO; /* cut without the last chunk: TWIN_CUT */
    return 0;
}

ssize_t t2_stream_read(struct t2_stream *s, void *buf, size_t len)
{
    return stream_read(s, buf, len, WANT_ANY, -1, -1);
}

ssize_t t2_stream_read_timed(struct t2_stream *s, void *buf, size_t len, int timeout_ms)
{
    /* Untimed: any byte will do. Timed: wait for a full buffer until the deadline, then take
     * what is there, so bytes that arrived are never held back for long. */
    if (timeout_ms < 0)
        return t2_stream_read(s, buf, len);
    return stream_read(s, buf, len, WANT_FULL, monotonic_now_s() + timeout_ms / 1000.0, -1);
}

ssize_t t2_stream_read_fill(struct t2_stream *s, void *buf, size_t len, int idle_ms, int fill_ms)
{
    double end_s = idle_ms < 0 ? -1 : monotonic_now_s() + idle_ms / 1000.0;
    return stream_read(s, buf, len, WANT_ANY, end_s, fill_ms < 0 ? 0 : fill_ms);
}

const char *t2_stream_mime(const struct t2_stream *s)
{
    return s->mime ? s->mime : "application/octet-stream";
}

unsigned long long t2_stream_position(const struct t2_stream *s)
{
    return s->position;
}

void t2_stream_cancel(struct t2_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->cancelled = true;
    pthread_mutex_unlock(&s->lock);
    curl_multi_wakeup(s->multi);
}

void t2_stream_close(struct t2_stream *s)
{
    if (!s)
        return;
    stream_destroy(s);
}
