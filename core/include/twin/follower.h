/* follower: the Follower model in C (see docs/follower.md).
 *
 * A follower takes a snapshot of the twin's assets, then follows GET /v1/stream on its own
 * thread: asset records become on_asset_created / on_asset_deleted, event records become
 * on_event with the data decoded from AVRO, the end of the replayed backlog becomes
 * on_event_internal(FOLLOWER_INTERNAL_EOF_REPLAY). The link is watched (no heartbeat within
 * heartbeat_timeout_s means it is dead), re-established with exponential backoff and jitter,
 * and resumed after the last seq delivered: no event is delivered twice, none is skipped.
 *
 * Acks go to the tracker (durable when follower_ack returns). On start the stream resumes
 * after the tracker's watermark and events already acked are filtered out of the replay.
 * Flow control: at most max_pending events, and max_pending_bytes of them, are delivered and
 * not yet acked; past that the stream thread stops reading (TCP back-pressure) until acks come
 * in. An event's size is the larger of its record's as the twin sent it (one stream line) and
 * its rendering's (render_event, what the file system holds while it is shown): data can
 * render 100 times larger than it was sent.
 *
 * Decoding and rendering one event cost bounded work and memory (event_schema.h's value
 * budget, max_event_bytes of JSON), and stop when follower_stop is called. An event over a
 * bound is delivered like an undecodable one: data_b64 and the reason.
 *
 * Callbacks run on the stream thread (and on the caller's thread inside follower_start for the
 * snapshot); they must not call follower_stop. They may call follower_ack. */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "twin/defaults.h"
#include "twin/twin_error.h"

struct follower;
struct t2_stream;

/* An event as delivered to on_event; every pointer is borrowed for the call only. */
struct follower_event {
    uint64_t seq;
    const char *asset;
    uint64_t offset;
    const char *name;
    int version;
    const char *source;        /* may be NULL */
    const char *time;          /* may be NULL */
    const char *systime;       /* may be NULL */
    const unsigned char *data; /* the AVRO bytes as received */
    size_t data_len;
    const char *data_not_b64; /* NULL, or data as sent when it was not base64 (data is NULL) */
    size_t data_not_b64_len;
    const json_t *data_json;  /* data decoded to JSON, or NULL if it could not be */
    const char *decode_error; /* NULL, or why data_json is NULL (e.g. "unknown schema") */
    /* The event rendered by the render_event callback, as on_event gets it (its size is what
     * the window counts); NULL without that callback, or when out of memory. */
    const char *content;
    size_t content_len;
};

enum follower_internal {
    FOLLOWER_INTERNAL_EOF_REPLAY, /* the backlog up to the head at (re)connect is delivered */
    FOLLOWER_INTERNAL_LINK_UP,
    FOLLOWER_INTERNAL_LINK_DOWN,
};

struct follower_callbacks {
    void (*on_asset_created)(void *userdata, const char *asset);
    void (*on_asset_deleted)(void *userdata, const char *asset);
    void (*on_event)(void *userdata, const struct follower_event *ev);
    void (*on_event_internal)(void *userdata, enum follower_internal what);
    /* Something went wrong that the follower handled (bad record, reconnect, schema fetch
     * failure): a one-line message for the daemon's log. err is a negative errno. */
    void (*on_notice)(void *userdata, int err, const char *message);
    /* Renders an event as the user of the follower shows it, once per event, before it enters
     * the window (ev->content is NULL then): at most max bytes (0: no bound), giving up as
     * soon as *stop is set. Returns 0 (*ret malloc'd and NUL-terminated, *ret_len without the
     * NUL), -EFBIG (over max), -ECANCELED, -ENOMEM. An event whose decoded data does not
     * render within max is rendered again without its data (data_json NULL, decode_error
     * saying why). NULL: events are delivered without content. */
    int (*render_event)(const struct follower_event *ev, size_t max, const atomic_bool *stop,
                        char **ret, size_t *ret_len);
    void *userdata;
};

enum follower_start {
    FOLLOWER_START_BEGINNING, /* a new tracker replays the twin's whole log */
    FOLLOWER_START_NOW,       /* a new tracker starts at the twin's head: live events only */
};

struct follower_config {
    const char *url;          /* required */
    const char *token;        /* bearer token or NULL (the caller reads the token file) */
    const char *ca_file;      /* NULL: the system's CAs */
    const char *tracker_path; /* required */
    const char *schema_dir;   /* NULL: schemas only from the twin */
    bool t2_enabled;
    double t2_timeout_s;        /* 0 means TWIN_DEFAULT_T2_TIMEOUT_S (twin/defaults.h) */
    unsigned max_pending;       /* 0 means TWIN_DEFAULT_MAX_PENDING */
    uint64_t max_pending_bytes; /* 0: TWIN_DEFAULT_MAX_PENDING_BYTES; one event passes whatever its
                                   size */
    enum follower_start start;  /* only matters for a new tracker */
    double heartbeat_timeout_s; /* 0 means TWIN_DEFAULT_HEARTBEAT_TIMEOUT_S */
    double reconnect_max_s;     /* cap of the backoff; 0 means TWIN_DEFAULT_RECONNECT_MAX_S */
    size_t max_record_bytes;    /* longest stream line; 0 means TWIN_DEFAULT_MAX_RECORD_BYTES */
    /* Largest event file with its data decoded (the rendered JSON); 0 means
     * TWIN_DEFAULT_MAX_EVENT_BYTES. An event whose data renders larger is shown with data_b64 and
     * error (about its line's size). */
    size_t max_event_bytes;
    /* The assets this follower follows; the others' records are skipped and count as handled,
     * so the watermark moves past them. An asset is followed when its id matches one of
     * asset_globs (fnmatch(3) patterns with no flags over the whole id; none: every id) and,
     * with shard_count > 1, when twin_asset_shard (twin/hash.h) of its id is shard_index (0 to
     * shard_count - 1). An asset not followed is not in the snapshot's on_asset_created calls,
     * gets no on_asset_created or on_asset_deleted, none of its events, and follower_t2_request
     * answers it AssetUnknown. Skipped records are handled for this tracker: once the
     * watermark passes them, a follower with another selection on the same tracker does not
     * see them. follower_new copies the globs. */
    const char *const *asset_globs;
    size_t n_asset_globs;
    unsigned shard_index;
    unsigned shard_count; /* 0 or 1: no sharding */
};

/* Copies cfg, opens the tracker. Returns 0, -EINVAL (bad URL or config, e.g. shard_index >=
 * shard_count > 1 or a NULL glob), -EBUSY (tracker in use by another process), -errno. */
int follower_new(const struct follower_config *cfg, const struct follower_callbacks *cb,
                 struct follower **ret);

/* Checks tracker_path against the rules the tracker holds its journal and the directories on
 * the way to it to (docs/follower.md, "Acks and the tracker") without creating anything. Returns 0
 * (also when the journal does not exist yet), or -EPERM (or the errno of the step that failed) with
 * why set to "PATH: reason"; for the message after follower_new failed with -EPERM. */
int follower_check_tracker(const char *tracker_path, char *why, size_t why_size);

/* Takes the snapshot (GET /v1/assets, on_asset_created for each asset, on this thread), then
 * starts the stream thread. Returns 0, or the snapshot's error, classified like every failure
 * of the link (twin_error.h): -EHOSTUNREACH (no twin there), -ECONNRESET (the connection was
 * dropped before the answer was complete), -EKEYREJECTED (TLS: the twin's certificate failed
 * verification), -EPERM (token refused, 401), -ETIMEDOUT, -EPROTO (not a twin: not HTTP, not
 * the protocol, another TLS failure, or a head beyond 2^53 - 1); the errno of twin_error_from_http
 * for another error status; -ESTALE when the twin's log ends before the seq the tracker resumes
 * after (a twin reset or restored, or another twin's tracker: following it would skip records);
 * -ENOMEM. */
int follower_start(struct follower *f);

/* Stops the stream thread and flushes the tracker. Idempotent. */
void follower_stop(struct follower *f);

/* Stops if needed and frees. Accepts NULL. */
void follower_free(struct follower *f);

/* Acknowledges the event (seq, asset, offset) delivered by on_event. When it returns 0 the
 * ack is on disk (survives kill -9). Returns 0; -EALREADY if already acked; 0 without effect
 * if the asset was deleted; -ENOENT if no such event was delivered; -errno from the tracker. */
int follower_ack(struct follower *f, uint64_t seq, const char *asset, uint64_t offset);

/* Starts a T2 request through this follower's twin (see t2_stream_open). Fails without asking
 * the twin: -EACCES/TWIN_T2_UNAVAILABLE when T2 is off, -ESHUTDOWN while stopping,
 * -ENOENT/TWIN_ASSET_UNKNOWN for an asset this follower does not follow. timeout_s <= 0 means the
 * configured default. */
int follower_t2_request(struct follower *f, const char *asset, const char *type, const void *data,
                        size_t len, double timeout_s, struct t2_stream **ret,
                        enum twin_error *ret_error);

enum follower_link {
    FOLLOWER_LINK_CONNECTING,
    FOLLOWER_LINK_UP,
    FOLLOWER_LINK_DOWN,
};

struct follower_status {
    enum follower_link link;
    uint64_t last_seq;  /* last record delivered */
    uint64_t head;      /* twin's head as last heard */
    uint64_t watermark; /* tracker's watermark */
    bool replay_done;
    size_t pending;         /* delivered, not acked */
    uint64_t pending_bytes; /* their sizes (as sent or as rendered, the larger) */
    uint64_t delivered;     /* events delivered since start */
    uint64_t acked;         /* acks since start */
    uint64_t bad_records;
    uint64_t decode_errors;
    uint64_t reconnects;
    char last_error[256]; /* "" if none */
};

void follower_get_status(struct follower *f, struct follower_status *ret);
const char *follower_link_name(enum follower_link l);
const char *follower_url(const struct follower *f);
