/* stream: one thread running curl easy transfers of GET /v1/stream, reconnecting forever.
 *
 * Dead-link detection is a timestamp of the last byte received checked from curl's progress
 * callback (called about once a second even when idle). Time spent inside on_record (flow
 * control may block there for long) does not count as silence: the timestamp is refreshed
 * when on_record returns. LOW_SPEED_LIMIT is not used for the same reason. */
#include "stream.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "line_buffer.h"
#include "twin/deadline.h"
#include "twin/defaults.h"
#include "record.h"
#include "twin_client.h"
#include "twin_transfer.h"

#define BACKOFF_MIN_S 0.1
/* Seqs of bad records above last_seq remembered so a replay does not report them twice. */
#define MAX_BAD_SEQS 64

struct stream {
    struct stream_config cfg;
    struct stream_callbacks cb;
    struct line_buffer *lb;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t lock; /* guards the backoff sleep and last_seq for readers */
    pthread_cond_t cond;
    atomic_bool stop;
    uint64_t last_seq;
    /* A refused line's seq is not trusted (a bad record claiming a seq far ahead must not
     * make later records look replayed), so last_seq never moves for one; these remember
     * which were reported. Stream thread only. */
    uint64_t bad_seqs[MAX_BAD_SEQS];
    size_t n_bad_seqs;
    /* The largest seq the twin can have sent by now: the larger of the last seq delivered and
     * the highest head it announced, plus one for every line since (a log without gaps brings
     * at most one new seq per line, and a line refused as bad may stand for one). A record
     * above it is a lie about the log, refused so it can neither hide the records below it nor
     * reach the tracker. Stream thread only. */
    uint64_t ceiling;
    uint64_t head; /* the highest head announced (snapshot, caught_up, heartbeat) */

    /* Per connection, touched only by the stream thread. */
    double last_activity;
    bool dead;          /* cut for silence */
    bool link_up;       /* 200 received on this connection */
    bool got_record;    /* a complete line arrived: the link was healthy */
    int abort_err;      /* on_record's error that cut the connection */
    CURL *cur;          /* the transfer running now */
    bool down_reported; /* on_link(false) said since the link was last up */
    unsigned rng;
};

static void notice(struct stream *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void notice(struct stream *s, int err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (!s->cb.on_notice)
        return;
    va_start(ap, fmt);
    /* clang 14's analyzer misses the va_start just above. */
    vsnprintf(msg, sizeof(msg), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    s->cb.on_notice(s->cb.userdata, err, msg);
}

/* The seq of a line that did not parse as a record, if it is JSON with an integer seq. */
static uint64_t salvage_seq(const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    uint64_t seq = 0;
    json_t *v = json_object_get(j, "seq");
    if (json_is_integer(v) && json_integer_value(v) > 0)
        seq = (uint64_t)json_integer_value(v);
    json_decref(j);
    return seq;
}

static void set_last_seq(struct stream *s, uint64_t seq)
{
    pthread_mutex_lock(&s->lock);
    s->last_seq = seq;
    pthread_mutex_unlock(&s->lock);
    /* Bad records at or below the last good one are never sent again. */
    size_t j = 0;
    for (size_t i = 0; i < s->n_bad_seqs; i++)
        if (s->bad_seqs[i] > seq)
            s->bad_seqs[j++] = s->bad_seqs[i];
    s->n_bad_seqs = j;
}

/* True if the bad record seq was reported already; else remembers it (forgetting the
 * highest when full: the one least likely to be replayed soon). */
static bool bad_seq_seen(struct stream *s, uint64_t seq)
{
    size_t top = 0;
    for (size_t i = 0; i < s->n_bad_seqs; i++) {
        if (s->bad_seqs[i] == seq)
            return true;
        if (s->bad_seqs[i] > s->bad_seqs[top])
            top = i;
    }
    if (s->n_bad_seqs < MAX_BAD_SEQS)
        s->bad_seqs[s->n_bad_seqs++] = seq;
    else if (seq < s->bad_seqs[top])
        s->bad_seqs[top] = seq;
    return false;
}

static int on_line(void *userdata, const char *line, size_t len)
{
    struct stream *s = userdata;
    struct record rec;
    const char *why = NULL;
    int r;

    s->got_record = true;
    if (s->ceiling < UINT64_MAX)
        s->ceiling++;
    if (!line) {
        if (s->cb.on_bad_record)
            s->cb.on_bad_record(s->cb.userdata, 0, "line too long");
        return 0;
    }
    r = record_parse(line, len, &rec, &why);
    if (r == -ENOMEM) {
        /* Not the record's fault: skipping it would lose it. Cut the connection; the
         * reconnect (after a backoff that lets memory come back) reads it again. */
        record_clear(&rec);
        s->abort_err = r;
        return r;
    }
    if (r < 0) {
        uint64_t seq = salvage_seq(line, len);
        /* Reported once: a bad record at or below the last good seq, or one reported since,
         * is a replay after a reconnect. */
        if (seq == 0 || (seq > s->last_seq && !bad_seq_seen(s, seq))) {
            if (s->cb.on_bad_record)
                s->cb.on_bad_record(s->cb.userdata, seq, why ? why : "bad record");
        }
        record_clear(&rec);
        return 0;
    }
    if (rec.seq == 0) { /* caught_up or heartbeat: the twin announces its head */
        if (rec.head > s->head)
            s->head = rec.head;
        if (rec.head > s->ceiling)
            s->ceiling = rec.head;
    }
    if (rec.seq != 0 && rec.seq <= s->last_seq) {
        record_clear(&rec); /* replayed after a reconnect: already delivered */
        return 0;
    }
    if (rec.seq > s->ceiling) {
        char why_buf[160];
        if (!bad_seq_seen(s, rec.seq) && s->cb.on_bad_record) {
            snprintf(why_buf, sizeof(why_buf),
                     "seq beyond %" PRIu64 ", the twin's announced head (or last seq) plus one "
                     "per line since",
                     s->ceiling);
            s->cb.on_bad_record(s->cb.userdata, rec.seq, why_buf);
        }
        record_clear(&rec);
        return 0;
    }
    r = s->cb.on_record(s->cb.userdata, &rec);
    if (r == 0 && rec.seq != 0) {
        set_last_seq(s, rec.seq);
        s->ceiling = rec.seq > s->head ? rec.seq : s->head;
    }
    record_clear(&rec);
    /* Blocking in on_record (flow control) is not silence from the twin. */
    s->last_activity = monotonic_now_s();
    if (r < 0) {
        s->abort_err = r;
        return r;
    }
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct stream *s = userdata;
    size_t n = size * nmemb;
    if (atomic_load(&s->stop))
        return 0;
    s->last_activity = monotonic_now_s();
    if (line_buffer_feed(s->lb, ptr, n, on_line, s) < 0)
        return 0; /* cuts the transfer: CURLE_WRITE_ERROR */
    return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct stream *s = userdata;
    size_t n = size * nitems;
    s->last_activity = monotonic_now_s();
    /* The blank line ends the headers: a 200 means the link is up. */
    if (n <= 2 && (n == 0 || buf[0] == '\r' || buf[0] == '\n') && !s->link_up) {
        long status = 0;
        curl_easy_getinfo(s->cur, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            s->link_up = true;
            s->down_reported = false;
            if (s->cb.on_link)
                s->cb.on_link(s->cb.userdata, true);
        }
    }
    return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct stream *s = userdata;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (atomic_load(&s->stop))
        return 1;
    if (monotonic_now_s() - s->last_activity > s->cfg.heartbeat_timeout_s) {
        s->dead = true;
        return 1;
    }
    return 0;
}

/* Sleeps up to secs, waking early on stop. */
static void backoff_sleep(struct stream *s, double secs)
{
    struct timespec ts = deadline_after_s(secs);
    pthread_mutex_lock(&s->lock);
    while (!atomic_load(&s->stop)) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&s->lock);
}

/* One connection. Returns a negative errno and a reason describing how it ended. */
static int run_once(struct stream *s, CURL **ret_h, char *reason, size_t reason_len)
{
    char path[64];
    struct curl_slist *headers = NULL;
    long status = 0;
    enum twin_error e;

    snprintf(path, sizeof(path), "/v1/stream?after=%" PRIu64, s->last_seq);
    CURL *h = twin_client_new_handle(s->cfg.client, path, &headers);
    if (!h) {
        snprintf(reason, reason_len, "out of memory");
        return -ENOMEM;
    }
    *ret_h = h;
    s->cur = h;
    line_buffer_reset(s->lb);
    s->dead = false;
    s->link_up = false;
    s->got_record = false;
    s->abort_err = 0;
    s->last_activity = monotonic_now_s();

    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    /* The connect phase is bounded by the silence limit too. */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(s->cfg.heartbeat_timeout_s * 1000));

    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);

    if (atomic_load(&s->stop)) {
        snprintf(reason, reason_len, "stopped");
        return -ESHUTDOWN;
    }
    if (s->dead) {
        snprintf(reason, reason_len, "no data for %.0f s: link dead", s->cfg.heartbeat_timeout_s);
        return -ETIMEDOUT;
    }
    if (s->abort_err < 0) {
        snprintf(reason, reason_len, "record handler failed: %s", strerror(-s->abort_err));
        return s->abort_err;
    }
    /* A stream never ends by itself: an end without a failure is a lost link too. */
    e = rc == CURLE_OK ? TWIN_LINK_LOST : twin_error_from_transfer(rc, status, NULL, NULL);
    if (rc == CURLE_HTTP_RETURNED_ERROR)
        snprintf(reason, reason_len, "twin answered HTTP %ld%s", status,
                 e == TWIN_UNAUTHORIZED ? " (token refused)" : "");
    else
        snprintf(reason, reason_len, "%s",
                 rc == CURLE_OK ? "the twin ended the stream" : curl_easy_strerror(rc));
    return -twin_error_errno(e);
}

static void *stream_main(void *arg)
{
    struct stream *s = arg;
    double backoff = BACKOFF_MIN_S;
    char reason[256];

    while (!atomic_load(&s->stop)) {
        CURL *h = NULL;
        int err = run_once(s, &h, reason, sizeof(reason));
        bool was_up = s->link_up;
        if (h)
            curl_easy_cleanup(h);
        if (atomic_load(&s->stop))
            break;
        s->cur = NULL;
        if (!s->down_reported) {
            if (s->cb.on_link)
                s->cb.on_link(s->cb.userdata, false);
            s->down_reported = true;
        }
        /* A connection that carried records was healthy: start the backoff again. */
        if (was_up && s->got_record)
            backoff = BACKOFF_MIN_S;
        /* Full jitter in [backoff/2, backoff] keeps many followers from reconnecting in step. */
        double wait = backoff / 2 + (backoff / 2) * ((double)(rand_r(&s->rng) % 1000) / 1000.0);
        notice(s, err, "stream: %s; reconnecting after seq %" PRIu64 " in %.1f s", reason,
               s->last_seq, wait);
        backoff_sleep(s, wait);
        backoff *= 2;
        if (backoff > s->cfg.reconnect_max_s)
            backoff = s->cfg.reconnect_max_s;
    }
    return NULL;
}

int stream_start(const struct stream_config *cfg, const struct stream_callbacks *cb,
                 struct stream **ret)
{
    struct stream *s;
    int r;

    if (!cfg || !cfg->client || !cb || !cb->on_record)
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    if (s->cfg.heartbeat_timeout_s <= 0)
        s->cfg.heartbeat_timeout_s = TWIN_DEFAULT_HEARTBEAT_TIMEOUT_S;
    if (s->cfg.reconnect_max_s <= 0)
        s->cfg.reconnect_max_s = TWIN_DEFAULT_RECONNECT_MAX_S;
    if (s->cfg.reconnect_max_s < BACKOFF_MIN_S)
        s->cfg.reconnect_max_s = BACKOFF_MIN_S;
    if (s->cfg.max_line == 0)
        s->cfg.max_line = TWIN_DEFAULT_MAX_RECORD_BYTES;
    s->cb = *cb;
    s->last_seq = cfg->after;
    s->head = cfg->head;
    s->ceiling = cfg->after > cfg->head ? cfg->after : cfg->head;
    s->rng = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)s;
    atomic_init(&s->stop, false);
    s->lb = line_buffer_new(s->cfg.max_line);
    if (!s->lb) {
        free(s);
        return -ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    r = pthread_create(&s->thread, NULL, stream_main, s);
    if (r != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        line_buffer_free(s->lb);
        free(s);
        return -r;
    }
    s->thread_started = true;
    *ret = s;
    return 0;
}

void stream_request_stop(struct stream *s)
{
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void stream_free(struct stream *s)
{
    if (!s)
        return;
    stream_request_stop(s);
    if (s->thread_started)
        pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    line_buffer_free(s->lb);
    free(s);
}

uint64_t stream_last_seq(struct stream *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t seq = s->last_seq;
    pthread_mutex_unlock(&s->lock);
    return seq;
}
