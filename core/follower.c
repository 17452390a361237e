/* follower: the glue of snapshot, stream, pending window, tracker, schema cache and T2.
 *
 * One mutex guards the tracker, the pending window, the asset table and the status. User
 * callbacks are called without it held, so they may call follower_ack. The stream thread
 * blocks in on_record while the window is full: that stops curl reading the socket, which is
 * the TCP back-pressure that bounds memory. */
#include "twin/follower.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asset_table.h"
#include "base64.h"
#include "twin/deadline.h"
#include "event_schema.h"
#include "pending.h"
#include "record.h"
#include "schema_cache.h"
#include "stream.h"
#include "twin/defaults.h"
#include "twin/t2_stream.h"
#include "tracker.h"
#include "twin_client.h"

struct follower {
    struct follower_config cfg; /* strings below are our copies */
    char *url, *token, *ca_file, *tracker_path, *schema_dir;
    struct follower_callbacks cb;

    struct twin_client *client;
    struct schema_cache *schemas;
    struct tracker *tracker;
    struct stream *stream;

    pthread_mutex_t lock;
    pthread_cond_t window; /* signalled on ack, asset deletion and stop */
    bool started, stopping, stopped;
    atomic_bool cancel; /* set by follower_stop: a decode or render under way gives up */
    bool head_behind;   /* the twin's head was last seen below last_seq */
    struct pending *pending;
    struct asset_table *assets;
    uint64_t snapshot_head;
    struct follower_status st;
};

const char *follower_link_name(enum follower_link l)
{
    switch (l) {
    case FOLLOWER_LINK_CONNECTING:
        return "connecting";
    case FOLLOWER_LINK_UP:
        return "up";
    case FOLLOWER_LINK_DOWN:
        return "down";
    }
    return "unknown";
}

const char *follower_url(const struct follower *f)
{
    return f->url;
}

static void notice(struct follower *f, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the message as last_error and passes it on. Called without the lock held. */
static void notice(struct follower *f, int err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    /* clang 14's analyzer misses the va_start just above. */
    vsnprintf(msg, sizeof(msg), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    pthread_mutex_lock(&f->lock);
    /* Truncation is fine: status shows the start of the message. */
    size_t n = strnlen(msg, sizeof(f->st.last_error) - 1);
    memcpy(f->st.last_error, msg, n);
    f->st.last_error[n] = '\0';
    pthread_mutex_unlock(&f->lock);
    if (f->cb.on_notice)
        f->cb.on_notice(f->cb.userdata, err, msg);
}

static int dup_opt(const char *s, char **ret)
{
    *ret = NULL;
    if (!s)
        return 0;
    *ret = strdup(s);
    return *ret ? 0 : -ENOMEM;
}

int follower_check_tracker(const char *tracker_path, char *why, size_t why_size)
{
    return tracker_check(tracker_path, why, why_size);
}

int follower_new(const struct follower_config *cfg, const struct follower_callbacks *cb,
                 struct follower **ret)
{
    struct follower *f;
    int r;

    if (!cfg || !cfg->url || !cfg->tracker_path || !*cfg->tracker_path)
        return -EINVAL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->cfg = *cfg;
    if (cb)
        f->cb = *cb;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->window, NULL);
    if (dup_opt(cfg->url, &f->url) < 0 || dup_opt(cfg->token, &f->token) < 0 ||
        dup_opt(cfg->ca_file, &f->ca_file) < 0 ||
        dup_opt(cfg->tracker_path, &f->tracker_path) < 0 ||
        dup_opt(cfg->schema_dir, &f->schema_dir) < 0) {
        r = -ENOMEM;
        goto fail;
    }
    f->cfg.url = f->url;
    f->cfg.token = f->token;
    f->cfg.ca_file = f->ca_file;
    f->cfg.tracker_path = f->tracker_path;
    f->cfg.schema_dir = f->schema_dir;
    if (f->cfg.t2_timeout_s <= 0)
        f->cfg.t2_timeout_s = TWIN_DEFAULT_T2_TIMEOUT_S;
    if (f->cfg.max_pending == 0)
        f->cfg.max_pending = TWIN_DEFAULT_MAX_PENDING;
    if (f->cfg.max_pending_bytes == 0)
        f->cfg.max_pending_bytes = TWIN_DEFAULT_MAX_PENDING_BYTES;
    if (f->cfg.heartbeat_timeout_s <= 0)
        f->cfg.heartbeat_timeout_s = TWIN_DEFAULT_HEARTBEAT_TIMEOUT_S;
    if (f->cfg.reconnect_max_s <= 0)
        f->cfg.reconnect_max_s = TWIN_DEFAULT_RECONNECT_MAX_S;
    if (f->cfg.max_record_bytes == 0)
        f->cfg.max_record_bytes = TWIN_DEFAULT_MAX_RECORD_BYTES;
    if (f->cfg.max_event_bytes == 0)
        f->cfg.max_event_bytes = TWIN_DEFAULT_MAX_EVENT_BYTES;

    struct twin_client_config tc = {.url = f->url,
                                    .token = f->token,
                                    .ca_file = f->ca_file,
                                    .timeout_ms = TWIN_DEFAULT_CALL_TIMEOUT_MS};
    r = twin_client_new(&tc, &f->client);
    if (r < 0)
        goto fail;
    r = schema_cache_new(f->schema_dir, twin_client_schema_fetch, f->client, &f->schemas);
    if (r < 0)
        goto fail;
    f->assets = asset_table_new();
    if (!f->assets) {
        r = -ENOMEM;
        goto fail;
    }
    r = tracker_open(f->tracker_path, &f->tracker);
    if (r < 0)
        goto fail;
    f->st.link = FOLLOWER_LINK_CONNECTING;
    f->st.watermark = tracker_watermark(f->tracker);
    *ret = f;
    return 0;

fail:
    follower_free(f);
    return r;
}

/* Moves the tracker's watermark up to the window's. Lock held. */
static void advance_watermark(struct follower *f)
{
    uint64_t w = pending_watermark(f->pending);
    if (w > f->st.watermark) {
        tracker_advance(f->tracker, w);
        f->st.watermark = tracker_watermark(f->tracker);
    }
}

static void on_link(void *userdata, bool up)
{
    struct follower *f = userdata;
    pthread_mutex_lock(&f->lock);
    enum follower_link old = f->st.link;
    f->st.link = up ? FOLLOWER_LINK_UP : FOLLOWER_LINK_DOWN;
    if (up && old != FOLLOWER_LINK_CONNECTING)
        f->st.reconnects++;
    pthread_mutex_unlock(&f->lock);
    if (f->cb.on_event_internal)
        f->cb.on_event_internal(f->cb.userdata,
                                up ? FOLLOWER_INTERNAL_LINK_UP : FOLLOWER_INTERNAL_LINK_DOWN);
}

static void on_stream_notice(void *userdata, int err, const char *message)
{
    notice(userdata, err, "%s", message);
}

static void on_bad_record(void *userdata, uint64_t seq, const char *reason)
{
    struct follower *f = userdata;
    /* The seq of a refused record is not trusted, so it moves neither the window nor the
     * watermark: a bad line claiming a seq far ahead would otherwise hide every record
     * below it, on disk too. The next good record moves them past it. */
    pthread_mutex_lock(&f->lock);
    f->st.bad_records++;
    pthread_mutex_unlock(&f->lock);
    if (seq > 0)
        notice(f, -EBADMSG, "stream: bad record seq %" PRIu64 " skipped: %s", seq, reason);
    else
        notice(f, -EBADMSG, "stream: bad record skipped: %s", reason);
}

/* A record that needs no ack. Lock held. */
static void handled(struct follower *f, uint64_t seq)
{
    pending_advance(f->pending, seq);
    advance_watermark(f);
    /* Above an event still waiting for its ack, this seq would split the acks around it. */
    if (seq > f->st.watermark)
        (void)tracker_note_handled(f->tracker, seq);
    f->st.last_seq = seq;
}

static int on_asset_record(struct follower *f, const struct record *rec)
{
    bool call = false, recreated = false;
    pthread_mutex_lock(&f->lock);
    if (rec->seq <= pending_last_seq(f->pending)) {
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    if (rec->kind == RECORD_ASSET_CREATED) {
        /* Replayed records up to the snapshot's head describe the past: an asset missing from
         * the snapshot was deleted by then, so its creation is not news. */
        if (rec->seq > f->snapshot_head || asset_table_key(f->assets, rec->asset)) {
            int r = asset_table_add(f->assets, rec->asset);
            if (r < 0) {
                pthread_mutex_unlock(&f->lock);
                return r; /* not handled: the record comes again after a reconnect */
            }
            call = r > 0;
        }
    } else {
        uint64_t key = asset_table_key(f->assets, rec->asset);
        if (key) {
            f->st.pending -= pending_drop_asset(f->pending, key);
            f->st.pending_bytes = pending_bytes(f->pending);
            pthread_cond_broadcast(&f->window);
            call = true;
            if (rec->seq <= f->snapshot_head) {
                /* The snapshot lists the asset, so it was re-created after this deletion:
                 * the old incarnation's events go, the asset stays under a new key (acks of
                 * old events become no-ops) and is announced again. Dropping it instead
                 * would discard every event of the new incarnation for good. */
                asset_table_renew(f->assets, rec->asset);
                recreated = true;
            } else {
                asset_table_remove(f->assets, rec->asset);
            }
        }
    }
    handled(f, rec->seq);
    pthread_mutex_unlock(&f->lock);
    if (call && rec->kind == RECORD_ASSET_CREATED && f->cb.on_asset_created)
        f->cb.on_asset_created(f->cb.userdata, rec->asset);
    if (call && rec->kind == RECORD_ASSET_DELETED && f->cb.on_asset_deleted)
        f->cb.on_asset_deleted(f->cb.userdata, rec->asset);
    if (recreated && f->cb.on_asset_created)
        f->cb.on_asset_created(f->cb.userdata, rec->asset);
    return 0;
}

/* Waits ms milliseconds unless the follower stops first; true if it is stopping. */
static bool wait_unless_stopping(struct follower *f, int ms)
{
    struct timespec ts = deadline_after_ms(ms);
    pthread_mutex_lock(&f->lock);
    while (!f->stopping && pthread_cond_timedwait(&f->window, &f->lock, &ts) != ETIMEDOUT)
        ;
    bool stopping = f->stopping;
    pthread_mutex_unlock(&f->lock);
    return stopping;
}

/* schema_wait_fn for the schema cache's retries. */
static bool schema_wait(void *userdata, int ms)
{
    return wait_unless_stopping(userdata, ms);
}

/* No room in the window for one more event of this size. Lock held. An event larger than the
 * whole byte budget still goes once the window is empty, or it would never go. */
static bool window_full(struct follower *f, uint64_t bytes)
{
    size_t n = pending_count(f->pending);
    return n >= f->cfg.max_pending ||
           (n > 0 && pending_bytes(f->pending) + bytes > f->cfg.max_pending_bytes);
}

static int render(const struct follower_event *ev, size_t max, const atomic_bool *stop, char **ret,
                  size_t *ret_len);

/* An event's data decoded and rendered, before it enters the window. */
struct prepared {
    int err;         /* 0, or why data did not decode (negative errno) */
    const char *why; /* NULL, or the reason shown in the event's error */
    char why_buf[128];
    json_t *data;  /* NULL, or the decoded data (within the event_schema budget) */
    char *content; /* the rendered event, NULL when out of memory */
    size_t content_len;
};

static void prepared_done(struct prepared *p)
{
    json_decref(p->data);
    free(p->content);
}

static struct follower_event event_of(const struct record *rec, const json_t *data, const char *why)
{
    return (struct follower_event){
        .seq = rec->seq,
        .asset = rec->asset,
        .offset = rec->offset,
        .name = rec->name,
        .version = rec->version,
        .source = rec->source,
        .time = rec->time,
        .systime = rec->systime,
        .data = rec->data,
        .data_len = rec->data_len,
        .data_not_b64 = rec->data_not_b64,
        .data_not_b64_len = rec->data_not_b64_len,
        .data_json = data,
        .decode_error = data ? NULL : why,
    };
}

/* Decodes and renders rec's event, each within its bounds; an event over one is rendered
 * with data_b64 and the reason. Called without the lock (a schema fetch may take a while).
 * Returns 0, or -ESHUTDOWN when stopped; *p is to be prepared_done either way. */
static int prepare_event(struct follower *f, const struct record *rec, struct prepared *p)
{
    const struct event_schema *schema = NULL;
    const struct event_schema_limits lim = {.max_json_bytes = f->cfg.max_event_bytes,
                                            .stop = &f->cancel};
    int r;

    if (rec->data_not_b64) {
        r = -EBADMSG;
        p->why = "data is not valid base64";
    } else if ((r = schema_cache_get_retrying(f->schemas, rec->name, rec->version, schema_wait, f,
                                              &schema)) == 0) {
        r = event_schema_decode_limited(schema, rec->data, rec->data_len, &lim, &p->data, &p->why);
        schema_cache_put(f->schemas, schema);
        if (r < 0 && !p->why)
            p->why = "bad data";
    } else if (r == -ENOENT) {
        p->why = "unknown schema";
    } else if (r == -EINVAL) {
        p->why = "bad schema";
    } else if (r == -EFBIG) {
        p->why = "schema too large";
    } else {
        snprintf(p->why_buf, sizeof(p->why_buf), "schema fetch failed: %s", strerror(-r));
        p->why = p->why_buf;
    }
    if (r == -ECANCELED)
        return -ESHUTDOWN;
    if (p->data) {
        struct follower_event ev = event_of(rec, p->data, NULL);
        r = render(&ev, f->cfg.max_event_bytes, &f->cancel, &p->content, &p->content_len);
        if (r == -ECANCELED)
            return -ESHUTDOWN;
        if (r < 0) {
            json_decref(p->data);
            p->data = NULL;
            p->why = r == -EFBIG ? "data renders to more JSON than one event file may hold"
                                 : "out of memory";
        }
    }
    p->err = r;
    if (!p->content) {
        /* data_b64 is about as long as the record's line: no bound needed */
        struct follower_event ev = event_of(rec, NULL, p->why);
        if (render(&ev, 0, &f->cancel, &p->content, &p->content_len) == -ECANCELED)
            return -ESHUTDOWN;
    }
    return 0;
}

static int on_event_record(struct follower *f, const struct record *rec)
{
    struct prepared prep = {0};

    pthread_mutex_lock(&f->lock);
    if (rec->seq <= pending_last_seq(f->pending)) {
        /* Seen already (the stream drops replays; this guards the window's order). */
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    uint64_t key = asset_table_key(f->assets, rec->asset);
    if (!key || tracker_is_acked(f->tracker, rec->seq)) {
        handled(f, rec->seq);
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    pthread_mutex_unlock(&f->lock);

    int r = prepare_event(f, rec, &prep);
    if (r < 0) {
        prepared_done(&prep);
        return r;
    }
    /* The window counts the larger of what the event cost as sent (its line) and what it
     * costs once shown (its file): data can render 100 times larger than its line. */
    uint64_t bytes = rec->wire_len;
    if (prep.content && prep.content_len > bytes)
        bytes = prep.content_len;

    pthread_mutex_lock(&f->lock);
    /* Flow control: wait for room (the asset may go meanwhile, dropping its events). */
    while (!f->stopping && window_full(f, bytes))
        pthread_cond_wait(&f->window, &f->lock);
    if (f->stopping) {
        pthread_mutex_unlock(&f->lock);
        prepared_done(&prep);
        return -ESHUTDOWN;
    }
    key = asset_table_key(f->assets, rec->asset);
    if (!key) {
        handled(f, rec->seq);
        pthread_mutex_unlock(&f->lock);
        prepared_done(&prep);
        return 0;
    }
    /* An asset's offsets only grow. A repeated one would name the file of an event already
     * shown, so the file system could not show it and no one could ever ack it: it would
     * hold a slot of the window (and the watermark) for good. */
    uint64_t prev;
    if (asset_table_last_offset(f->assets, rec->asset, &prev) && rec->offset <= prev) {
        handled(f, rec->seq);
        f->st.bad_records++;
        pthread_mutex_unlock(&f->lock);
        prepared_done(&prep);
        notice(f, -EBADMSG,
               "stream: bad record seq %" PRIu64 " skipped: offset %" PRIu64
               " of %s is not above %" PRIu64 ", the last one delivered",
               rec->seq, rec->offset, rec->asset, prev);
        return 0;
    }
    r = pending_add(f->pending, rec->seq, key, rec->offset, bytes);
    if (r < 0) {
        pthread_mutex_unlock(&f->lock);
        prepared_done(&prep);
        return r;
    }
    asset_table_set_last_offset(f->assets, rec->asset, rec->offset);
    f->st.pending = pending_count(f->pending);
    f->st.pending_bytes = pending_bytes(f->pending);
    f->st.last_seq = rec->seq;
    f->st.delivered++;
    if (prep.err < 0)
        f->st.decode_errors++;
    pthread_mutex_unlock(&f->lock);

    if (prep.err < 0)
        notice(f, prep.err,
               "event seq %" PRIu64 " (%s offset %" PRIu64 " %s v%d): cannot decode: %s", rec->seq,
               rec->asset, rec->offset, rec->name, rec->version, prep.why);
    struct follower_event ev = event_of(rec, prep.data, prep.why);
    ev.content = prep.content;
    ev.content_len = prep.content_len;
    if (f->cb.on_event)
        f->cb.on_event(f->cb.userdata, &ev);
    prepared_done(&prep);
    return 0;
}

/* A twin whose log ends before what was delivered was reset or restored while we followed it:
 * the stream sends nothing until its log passes that seq again, and what it logs up to there
 * is never seen. Nothing here can get it back; say so once per incident (log and status). */
static void check_head(struct follower *f, uint64_t head)
{
    pthread_mutex_lock(&f->lock);
    uint64_t last = f->st.last_seq;
    bool report = head < last && !f->head_behind;
    f->head_behind = head < last;
    pthread_mutex_unlock(&f->lock);
    if (report)
        notice(f, -ESTALE,
               "the twin's log now ends at seq %" PRIu64 ", before seq %" PRIu64
               " already followed: the twin was reset or restored; what it logs up to seq %" PRIu64
               " will not be seen (remount with a new tracker to follow it from its start)",
               head, last, last);
}

static int on_record(void *userdata, const struct record *rec)
{
    struct follower *f = userdata;
    bool first_caught_up = false;

    switch (rec->kind) {
    case RECORD_ASSET_CREATED:
    case RECORD_ASSET_DELETED:
        return on_asset_record(f, rec);
    case RECORD_EVENT:
        return on_event_record(f, rec);
    case RECORD_CAUGHT_UP:
        pthread_mutex_lock(&f->lock);
        f->st.head = rec->head;
        first_caught_up = !f->st.replay_done;
        f->st.replay_done = true;
        pthread_mutex_unlock(&f->lock);
        check_head(f, rec->head);
        if (first_caught_up && f->cb.on_event_internal)
            f->cb.on_event_internal(f->cb.userdata, FOLLOWER_INTERNAL_EOF_REPLAY);
        return 0;
    case RECORD_HEARTBEAT:
        pthread_mutex_lock(&f->lock);
        f->st.head = rec->head;
        pthread_mutex_unlock(&f->lock);
        check_head(f, rec->head);
        return 0;
    }
    return 0;
}

int follower_start(struct follower *f)
{
    json_t *snap = NULL;
    size_t i;
    json_t *a;
    int r;

    if (f->started)
        return -EALREADY;
    r = twin_client_get_assets(f->client, &snap);
    if (r < 0)
        return r;
    uint64_t head = (uint64_t)json_integer_value(json_object_get(snap, "head"));
    json_t *list = json_object_get(snap, "assets");
    if (head > RECORD_MAX_SEQ) {
        /* No log reaches it; as a new tracker's starting point it would hide the twin's log. */
        json_decref(snap);
        notice(f, -EPROTO,
               "the twin's snapshot names head %" PRIu64 ", beyond the protocol's 2^53 - 1", head);
        return -EPROTO;
    }

    /* Collect first, call after: callbacks run without the lock. */
    json_t *created = json_array();
    if (!created) {
        json_decref(snap);
        return -ENOMEM;
    }
    pthread_mutex_lock(&f->lock);
    f->snapshot_head = head;
    f->st.head = head;
    json_array_foreach(list, i, a)
    {
        const char *id = json_string_value(json_object_get(a, "id"));
        if (!id || !record_name_is_safe(id))
            continue; /* an id that cannot be a directory name; the stream would refuse it */
        if (asset_table_add(f->assets, id) > 0)
            json_array_append_new(created, json_string(id));
    }
    uint64_t after = tracker_watermark(f->tracker);
    if (f->cfg.start == FOLLOWER_START_NOW && after == 0 && tracker_acked_above(f->tracker) == 0 &&
        head > 0) {
        /* A new tracker starting now: the backlog is handled by decision. */
        tracker_advance(f->tracker, head);
        after = head;
    }
    if (head < after) {
        /* Resuming after a seq the twin never reached would skip every record it sends up to
         * there: the twin was reset or restored, or the tracker belongs to another twin. */
        pthread_mutex_unlock(&f->lock);
        json_decref(snap);
        json_decref(created);
        notice(f, -ESTALE,
               "the twin's log ends at seq %" PRIu64 ", before seq %" PRIu64
               " that this tracker has handled: the twin was reset or restored, or the tracker "
               "belongs to another twin; not following it, so nothing is skipped",
               head, after);
        return -ESTALE;
    }
    f->pending = pending_new(after);
    f->st.watermark = after;
    f->st.last_seq = after;
    pthread_mutex_unlock(&f->lock);
    json_decref(snap);
    if (!f->pending) {
        json_decref(created);
        return -ENOMEM;
    }

    json_array_foreach(created, i, a)
    {
        if (f->cb.on_asset_created)
            f->cb.on_asset_created(f->cb.userdata, json_string_value(a));
    }
    json_decref(created);

    struct stream_config sc = {
        .client = f->client,
        .after = after,
        .head = head,
        .heartbeat_timeout_s = f->cfg.heartbeat_timeout_s,
        .reconnect_max_s = f->cfg.reconnect_max_s,
        .max_line = f->cfg.max_record_bytes,
    };
    struct stream_callbacks scb = {
        .on_record = on_record,
        .on_bad_record = on_bad_record,
        .on_link = on_link,
        .on_notice = on_stream_notice,
        .userdata = f,
    };
    r = stream_start(&sc, &scb, &f->stream);
    if (r < 0)
        return r;
    f->started = true;
    return 0;
}

void follower_stop(struct follower *f)
{
    if (!f || f->stopped)
        return;
    atomic_store(&f->cancel, true);
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    pthread_cond_broadcast(&f->window);
    pthread_mutex_unlock(&f->lock);
    if (f->stream) {
        stream_request_stop(f->stream);
        stream_free(f->stream);
        f->stream = NULL;
    }
    pthread_mutex_lock(&f->lock);
    if (f->tracker)
        tracker_flush(f->tracker);
    pthread_mutex_unlock(&f->lock);
    f->stopped = true;
}

void follower_free(struct follower *f)
{
    if (!f)
        return;
    follower_stop(f);
    tracker_close(f->tracker);
    schema_cache_free(f->schemas);
    twin_client_free(f->client);
    pending_free(f->pending);
    asset_table_free(f->assets);
    pthread_cond_destroy(&f->window);
    pthread_mutex_destroy(&f->lock);
    free(f->url);
    if (f->token) {
        memset(f->token, 0, strlen(f->token));
        free(f->token);
    }
    free(f->ca_file);
    free(f->tracker_path);
    free(f->schema_dir);
    free(f);
}

int follower_ack(struct follower *f, uint64_t seq, const char *asset, uint64_t offset)
{
    uint64_t key, p_key, p_offset;
    int r;

    if (!asset)
        return -EINVAL;
    pthread_mutex_lock(&f->lock);
    if (!f->pending) {
        r = -ENOENT;
        goto out;
    }
    key = asset_table_key(f->assets, asset);
    if (pending_find(f->pending, seq, &p_key, &p_offset) == 0 && p_key == key &&
        p_offset == offset) {
        r = tracker_ack(f->tracker, seq);
        if (r < 0 && r != -EALREADY)
            goto out; /* not on disk: the event stays pending */
        pending_remove(f->pending, seq);
        f->st.pending = pending_count(f->pending);
        f->st.pending_bytes = pending_bytes(f->pending);
        if (r == 0)
            f->st.acked++;
        advance_watermark(f);
        pthread_cond_broadcast(&f->window);
        goto out;
    }
    if (!key)
        r = 0; /* the asset is gone: acking its events is a no-op */
    else if (tracker_is_acked(f->tracker, seq))
        r = -EALREADY;
    else
        r = -ENOENT;
out:
    pthread_mutex_unlock(&f->lock);
    return r;
}

int follower_t2_request(struct follower *f, const char *asset, const char *type, const void *data,
                        size_t len, double timeout_s, struct t2_stream **ret,
                        enum twin_error *ret_error)
{
    enum twin_error e = TWIN_OK;
    bool stopping;

    pthread_mutex_lock(&f->lock);
    stopping = f->stopping;
    pthread_mutex_unlock(&f->lock);
    if (!f->cfg.t2_enabled)
        e = TWIN_T2_UNAVAILABLE;
    else if (stopping)
        e = TWIN_SHUTDOWN;
    if (e != TWIN_OK) {
        if (ret_error)
            *ret_error = e;
        return -twin_error_errno(e);
    }
    if (timeout_s <= 0)
        timeout_s = f->cfg.t2_timeout_s;
    return t2_stream_open(f->client, asset, type, data, len, timeout_s, ret, ret_error);
}

void follower_get_status(struct follower *f, struct follower_status *ret)
{
    pthread_mutex_lock(&f->lock);
    *ret = f->st;
    if (f->pending)
        ret->pending = pending_count(f->pending);
    pthread_mutex_unlock(&f->lock);
}

static int set_str(json_t *o, const char *key, const char *s)
{
    return json_object_set_new(o, key, s ? json_string(s) : json_null());
}

/* The text being rendered, with a bound. */
struct render_buf {
    char *p;
    size_t len, cap;
    size_t max; /* the most bytes of text, the final newline included; 0: no bound */
    const atomic_bool *stop;
    int err; /* why the dump stopped: -EFBIG, -ECANCELED, -ENOMEM */
};

static int render_put(const char *buf, size_t size, void *userdata)
{
    struct render_buf *b = userdata;

    if (b->stop && atomic_load_explicit(b->stop, memory_order_relaxed)) {
        b->err = -ECANCELED;
        return -1;
    }
    /* the final newline counts in max; room is kept for it and the NUL */
    if (b->max && b->len + size >= b->max) {
        b->err = -EFBIG;
        return -1;
    }
    if (size > b->cap - b->len || b->cap - b->len - size < 2) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < size + 2)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = -ENOMEM;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, size);
    b->len += size;
    return 0;
}

/* Renders ev (see follower_event_render) into *ret (malloc'd, NUL-terminated; *ret_len
 * without the NUL), at most max bytes (0: no bound). The dump stops as soon as it passes max
 * or *stop is set. Returns 0, -EFBIG, -ECANCELED, -ENOMEM; *ret is untouched on failure. */
static int render(const struct follower_event *ev, size_t max, const atomic_bool *stop, char **ret,
                  size_t *ret_len)
{
    struct render_buf b = {.max = max, .stop = stop};
    json_t *o = json_object();
    int r = 0;

    if (!o)
        return -ENOMEM;
    r |= set_str(o, "asset", ev->asset);
    r |= json_object_set_new(o, "offset", json_integer((json_int_t)ev->offset));
    r |= set_str(o, "name", ev->name);
    r |= json_object_set_new(o, "version", json_integer(ev->version));
    r |= set_str(o, "source", ev->source);
    r |= set_str(o, "time", ev->time);
    r |= set_str(o, "systime", ev->systime);
    if (ev->data_json) {
        /* shared, not copied: a reference is taken and given back with o */
        r |= json_object_set(o, "data", (json_t *)ev->data_json);
    } else {
        json_t *b64 = NULL;
        if (ev->data_not_b64) {
            b64 = json_stringn(ev->data_not_b64, ev->data_not_b64_len); /* shown as sent */
        } else {
            char *enc = NULL;
            if (base64_encode(ev->data ? (const void *)ev->data : "", ev->data_len, &enc) == 0)
                b64 = json_string(enc);
            free(enc);
        }
        r |= json_object_set_new(o, "data_b64", b64);
        r |= set_str(o, "error", ev->decode_error ? ev->decode_error : "cannot decode");
    }
    if (r != 0) {
        json_decref(o);
        return -ENOMEM;
    }
    b.err = -ENOMEM;
    r = json_dump_callback(o, render_put, &b, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    b.max = 0; /* room for the newline was kept */
    if (r == 0 && render_put("\n", 1, &b) == 0) {
        b.p[b.len] = '\0';
        char *fit = realloc(b.p, b.len + 1); /* the buffer grew by doubling */
        if (fit)
            b.p = fit;
        *ret = b.p;
        *ret_len = b.len;
        return 0;
    }
    free(b.p);
    return b.err;
}

char *follower_event_render(const struct follower_event *ev, size_t *ret_len)
{
    char *out = NULL;
    size_t len = 0;

    if (render(ev, 0, NULL, &out, &len) < 0)
        return NULL;
    if (ret_len)
        *ret_len = len;
    return out;
}
