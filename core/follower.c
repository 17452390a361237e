/* follower: the life cycle (new, start with the snapshot, stop, free), acks, T2 requests and
 * status; follower_internal.h says how the work is split and locked. */
#include "twin/follower.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asset_select.h"
#include "asset_table.h"
#include "follower_internal.h"
#include "pending.h"
#include "record.h"
#include "schema_cache.h"
#include "stream.h"
#include "tracker.h"
#include "twin/defaults.h"
#include "twin/t2_stream.h"
#include "twin_client.h"

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

void follower_notice(struct follower *f, int err, const char *fmt, ...)
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
    r = asset_select_new(cfg->asset_globs, cfg->n_asset_globs, cfg->shard_index, cfg->shard_count,
                         &f->select);
    if (r < 0)
        goto fail;
    /* The caller's strings are not kept: the selection holds its own copies. */
    f->cfg.asset_globs = NULL;
    f->cfg.n_asset_globs = 0;
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

/* Adds the snapshot's assets to the table; created gets the ids that were new. Lock held. */
static void add_snapshot_assets(struct follower *f, const json_t *list, json_t *created)
{
    size_t i;
    json_t *a;

    json_array_foreach(list, i, a)
    {
        const char *id = json_string_value(json_object_get(a, "id"));
        if (!id || !record_name_is_safe(id))
            continue; /* an id that cannot be a directory name; the stream would refuse it */
        if (follower_add_asset(f, id) > 0)
            json_array_append_new(created, json_string(id));
    }
}

/* The seq the stream resumes after: the tracker's watermark, or, for a new tracker that starts
 * now, the snapshot's head (the backlog is handled by decision). Lock held. */
static uint64_t resume_after(struct follower *f, uint64_t head)
{
    uint64_t after = tracker_watermark(f->tracker);

    if (f->cfg.start == FOLLOWER_START_NOW && after == 0 && tracker_acked_above(f->tracker) == 0 &&
        head > 0) {
        tracker_advance(f->tracker, head);
        after = head;
    }
    return after;
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
        follower_notice(
            f, -EPROTO,
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
    add_snapshot_assets(f, list, created);
    uint64_t after = resume_after(f, head);
    if (head < after) {
        /* Resuming after a seq the twin never reached would skip every record it sends up to
         * there: the twin was reset or restored, or the tracker belongs to another twin. */
        pthread_mutex_unlock(&f->lock);
        json_decref(snap);
        json_decref(created);
        follower_notice(
            f, -ESTALE,
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

    r = follower_stream_start(f, after, head);
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
    asset_select_free(f->select);
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
        follower_advance_watermark(f);
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
    else if (asset && !asset_select_match(f->select, asset))
        e = TWIN_ASSET_UNKNOWN; /* to this follower it does not exist: never listed or shown */
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
