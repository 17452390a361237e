/* follower_records: where a record from the stream enters the follower. Asset records change
 * the asset table, which only a selected asset enters (follower_add_asset); an event record is
 * filtered (asset not live: deleted or not selected; acked already; offset not above the last),
 * decoded and rendered outside the lock, waits for room in the window, then enters it and goes
 * to on_event. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "asset_select.h"
#include "asset_table.h"
#include "event_schema.h"
#include "follower_internal.h"
#include "pending.h"
#include "record.h"
#include "schema_cache.h"
#include "stream.h"
#include "tracker.h"
#include "twin/deadline.h"

void follower_advance_watermark(struct follower *f)
{
    uint64_t w = pending_watermark(f->pending);
    if (w > f->st.watermark) {
        tracker_advance(f->tracker, w);
        f->st.watermark = tracker_watermark(f->tracker);
    }
}

int follower_add_asset(struct follower *f, const char *asset)
{
    if (!asset_select_match(f->select, asset))
        return 0;
    return asset_table_add(f->assets, asset);
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
    follower_notice(userdata, err, "%s", message);
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
        follower_notice(f, -EBADMSG, "stream: bad record seq %" PRIu64 " skipped: %s", seq, reason);
    else
        follower_notice(f, -EBADMSG, "stream: bad record skipped: %s", reason);
}

/* Passes a record that needs no ack (an asset record, an acked or unwanted event): the window
 * and the watermark move past it. Lock held. */
static void move_past_record(struct follower *f, uint64_t seq)
{
    pending_advance(f->pending, seq);
    follower_advance_watermark(f);
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
            int r = follower_add_asset(f, rec->asset);
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
    move_past_record(f, rec->seq);
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

/* Renders ev through the render_event callback (follower.h). */
static int render(struct follower *f, const struct follower_event *ev, size_t max, char **ret,
                  size_t *ret_len)
{
    return f->cb.render_event(ev, max, &f->cancel, ret, ret_len);
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
    if (!f->cb.render_event) {
        p->err = r;
        return 0;
    }
    if (p->data) {
        struct follower_event ev = event_of(rec, p->data, NULL);
        r = render(f, &ev, f->cfg.max_event_bytes, &p->content, &p->content_len);
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
        if (render(f, &ev, 0, &p->content, &p->content_len) == -ECANCELED)
            return -ESHUTDOWN;
    }
    return 0;
}

/* False for an event seen already, or (then it is handled) of an asset that is not live or
 * acked already. */
static bool event_wanted(struct follower *f, const struct record *rec)
{
    bool wanted = false;

    pthread_mutex_lock(&f->lock);
    /* A seq seen already is left alone: the stream drops replays, this guards the order. */
    if (rec->seq > pending_last_seq(f->pending)) {
        wanted = asset_table_key(f->assets, rec->asset) && !tracker_is_acked(f->tracker, rec->seq);
        if (!wanted)
            move_past_record(f, rec->seq);
    }
    pthread_mutex_unlock(&f->lock);
    return wanted;
}

static int on_event_record(struct follower *f, const struct record *rec)
{
    struct prepared prep = {0};
    uint64_t key;

    if (!event_wanted(f, rec))
        return 0;
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
        move_past_record(f, rec->seq);
        pthread_mutex_unlock(&f->lock);
        prepared_done(&prep);
        return 0;
    }
    /* An asset's offsets only grow. A repeated one would name the file of an event already
     * shown, so the file system could not show it and no one could ever ack it: it would
     * hold a slot of the window (and the watermark) for good. */
    uint64_t prev;
    if (asset_table_last_offset(f->assets, rec->asset, &prev) && rec->offset <= prev) {
        move_past_record(f, rec->seq);
        f->st.bad_records++;
        pthread_mutex_unlock(&f->lock);
        prepared_done(&prep);
        follower_notice(f, -EBADMSG,
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
        follower_notice(f, prep.err,
                        "event seq %" PRIu64 " (%s offset %" PRIu64 " %s v%d): cannot decode: %s",
                        rec->seq, rec->asset, rec->offset, rec->name, rec->version, prep.why);
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
        follower_notice(
            f, -ESTALE,
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

int follower_stream_start(struct follower *f, uint64_t after, uint64_t head)
{
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

    return stream_start(&sc, &scb, &f->stream);
}
