/* t2_stream: one thread per open stream runs a curl easy transfer of the T2 request.
 *
 * The transfer thread writes the body into a bounded ring; when the ring is full its write
 * callback blocks on a condvar until the reader makes room, which stops curl reading the
 * socket (TCP back-pressure) with no curl_easy_pause cross-thread dance. The opener waits
 * until the headers say 2xx (then reads stream) or the transfer ends with an error body
 * (then the open fails with that error's errno). */
#include "t2_stream.h"

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

#include "twin_client.h"

/* Extra time past the request's own timeout before we give up on the twin ourselves: the
 * twin answers 504 at the timeout, which is the better error to report. */
#define OPEN_MARGIN_S 5.0
/* The error body of a failed request is small JSON; more is not a twin. */
#define MAX_ERROR_BODY 65536
/* The ring size as a size_t (the header's constant is an int expression). */
#define RING_SIZE ((size_t)T2_STREAM_BUFFER)

static atomic_uint open_count;

struct t2_stream {
    pthread_t thread;
    bool thread_started;
    CURL *h;
    struct curl_slist *headers;
    void *body;
    size_t body_len;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned char *ring;
    size_t ring_head; /* index of the oldest unread byte */
    size_t ring_len;  /* unread bytes */
    bool reader_waiting;
    size_t reader_want; /* bytes the waiting reader would like before it is woken */
    bool writer_waiting;

    bool status_known; /* headers of the final answer seen */
    long status;
    bool done; /* the transfer ended */
    CURLcode result;
    long os_errno;  /* the OS error of a failed connect (CURLINFO_OS_ERRNO) */
    bool closing;   /* close: the transfer must end */
    bool cancelled; /* reads return -ESHUTDOWN */
    char *mime;
    char *error_body;
    size_t error_len;
    unsigned long long position;
};

unsigned t2_stream_count_open(void)
{
    return atomic_load(&open_count);
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
    pthread_mutex_lock(&s->lock);
    s->status = status;
    if (status >= 200 && status < 300) {
        s->mime = strdup(ct && *ct ? ct : "application/octet-stream");
        s->status_known = true; /* non-2xx: known once the error body is in */
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct t2_stream *s = userdata;
    size_t n = size * nmemb;
    size_t off = 0;

    pthread_mutex_lock(&s->lock);
    if (s->status < 200 || s->status >= 300) {
        /* An error answer: keep its JSON body for classification. */
        if (s->error_len + n > MAX_ERROR_BODY) {
            pthread_mutex_unlock(&s->lock);
            return 0;
        }
        char *p = realloc(s->error_body, s->error_len + n + 1);
        if (!p) {
            pthread_mutex_unlock(&s->lock);
            return 0;
        }
        memcpy(p + s->error_len, ptr, n);
        s->error_len += n;
        p[s->error_len] = '\0';
        s->error_body = p;
        pthread_mutex_unlock(&s->lock);
        return n;
    }
    while (off < n) {
        while (!s->closing && s->ring_len == RING_SIZE) {
            s->writer_waiting = true;
            pthread_cond_wait(&s->cond, &s->lock);
            s->writer_waiting = false;
        }
        if (s->closing) {
            pthread_mutex_unlock(&s->lock);
            return 0; /* aborts the transfer */
        }
        size_t tail = (s->ring_head + s->ring_len) % RING_SIZE;
        size_t room = RING_SIZE - s->ring_len;
        size_t chunk = n - off;
        if (chunk > room)
            chunk = room;
        if (chunk > RING_SIZE - tail)
            chunk = RING_SIZE - tail;
        memcpy(s->ring + tail, ptr + off, chunk);
        s->ring_len += chunk;
        off += chunk;
        /* Wake the reader once it can fill its request (or the ring is full): one switch per
         * request rather than one per network read. */
        if (s->reader_waiting && (s->ring_len >= s->reader_want || s->ring_len == RING_SIZE))
            pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct t2_stream *s = userdata;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    pthread_mutex_lock(&s->lock);
    bool closing = s->closing;
    pthread_mutex_unlock(&s->lock);
    return closing ? 1 : 0;
}

static void *transfer_main(void *arg)
{
    struct t2_stream *s = arg;
    CURLcode rc = curl_easy_perform(s->h);
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
    pthread_mutex_lock(&s->lock);
    s->done = true;
    s->result = rc;
    s->os_errno = os_errno;
    if (!s->status_known && s->status == 0)
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* The twin_error of a transfer that ended before a 2xx answer. Lock held. */
static enum twin_error classify_failure(const struct t2_stream *s)
{
    if (s->status >= 300) {
        json_t *j = s->error_body ? json_loads(s->error_body, 0, NULL) : NULL;
        enum twin_error e =
            twin_error_from_http(s->status, json_string_value(json_object_get(j, "error")),
                                 json_string_value(json_object_get(j, "reason")));
        json_decref(j);
        return e;
    }
    switch (s->result) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return TWIN_NOT_CONNECTED;
    case CURLE_OPERATION_TIMEDOUT:
        return TWIN_T2_TIMEOUT;
    default:
        return TWIN_FAILED;
    }
}

static char *escape(const char *s)
{
    return curl_easy_escape(NULL, s, 0);
}

static void stream_destroy(struct t2_stream *s)
{
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        s->closing = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    if (s->h)
        curl_easy_cleanup(s->h);
    curl_slist_free_all(s->headers);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->ring);
    free(s->body);
    free(s->mime);
    free(s->error_body);
    free(s);
    atomic_fetch_sub(&open_count, 1);
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
    pthread_cond_init(&s->cond, NULL);
    s->ring = malloc(RING_SIZE);
    s->body = malloc(len ? len : 1);
    ea = escape(asset);
    et = escape(type);
    if (!s->ring || !s->body || !ea || !et)
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
    curl_easy_setopt(s->h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(s->h, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(s->h, CURLOPT_NOPROGRESS, 0L);
    /* Bigger reads from the socket: fewer wake-ups of the reader per MiB. */
    curl_easy_setopt(s->h, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_free(ea);
    curl_free(et);
    ea = et = NULL;

    int r = pthread_create(&s->thread, NULL, transfer_main, s);
    if (r != 0) {
        stream_destroy(s);
        return -r;
    }
    s->thread_started = true;

    /* Wait for the answer's status, bounded by the request's timeout plus a margin. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + timeout_s + OPEN_MARGIN_S;
    ts.tv_sec = (time_t)end;
    ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&s->lock);
    bool timed_out = false;
    while (!s->status_known && !s->done) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT) {
            timed_out = !s->status_known && !s->done;
            break;
        }
    }
    if (s->status_known) {
        pthread_mutex_unlock(&s->lock);
        if (ret_error)
            *ret_error = TWIN_OK;
        *ret = s;
        return 0;
    }
    e = timed_out ? TWIN_T2_TIMEOUT : classify_failure(s);
    long os_errno = timed_out ? 0 : s->os_errno;
    pthread_mutex_unlock(&s->lock);
    if (os_errno == EMFILE || os_errno == ENFILE) {
        stream_destroy(s);
        return -(int)os_errno; /* *ret_error stays TWIN_FAILED */
    }
    stream_destroy(s);
    if (ret_error)
        *ret_error = e;
    return -twin_error_errno(e);

fail_nomem:
    curl_free(ea);
    curl_free(et);
    stream_destroy(s);
    return -ENOMEM;
}

ssize_t t2_stream_read_timed(struct t2_stream *s, void *buf, size_t len, int timeout_ms)
{
    struct timespec deadline;
    size_t got = 0;

    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->cancelled) {
            pthread_mutex_unlock(&s->lock);
            return -ESHUTDOWN;
        }
        /* Untimed: any byte will do. Timed: wait for a full request until the deadline, then
         * take what is there, so bytes that arrived are never held back for long. */
        size_t want = timeout_ms < 0 ? 1 : len;
        if (s->ring_len >= want || s->ring_len == RING_SIZE || s->done || len == 0)
            break;
        s->reader_waiting = true;
        s->reader_want = want;
        int r = timeout_ms < 0 ? pthread_cond_wait(&s->cond, &s->lock)
                               : pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
        s->reader_waiting = false;
        if (r == ETIMEDOUT) {
            if (s->ring_len > 0)
                break;
            pthread_mutex_unlock(&s->lock);
            return -EAGAIN;
        }
    }
    while (got < len && s->ring_len > 0) {
        size_t chunk = s->ring_len;
        if (chunk > len - got)
            chunk = len - got;
        if (chunk > RING_SIZE - s->ring_head)
            chunk = RING_SIZE - s->ring_head;
        memcpy((char *)buf + got, s->ring + s->ring_head, chunk);
        s->ring_head = (s->ring_head + chunk) % RING_SIZE;
        s->ring_len -= chunk;
        got += chunk;
    }
    s->position += got;
    /* Wake the writer only once half the ring is free: fewer switches per MiB. */
    if (got > 0 && s->writer_waiting && s->ring_len <= RING_SIZE / 2)
        pthread_cond_broadcast(&s->cond);
    if (got == 0 && len > 0 && s->done && s->result != CURLE_OK) {
        pthread_mutex_unlock(&s->lock);
        return -EIO; /* cut without the last chunk: TWIN_CUT */
    }
    pthread_mutex_unlock(&s->lock);
    return (ssize_t)got;
}

ssize_t t2_stream_read(struct t2_stream *s, void *buf, size_t len)
{
    return t2_stream_read_timed(s, buf, len, -1);
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
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void t2_stream_close(struct t2_stream *s)
{
    if (!s)
        return;
    stream_destroy(s);
}
