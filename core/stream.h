/* stream: the thread that follows GET /v1/stream (internal to core/, used by follower).
 *
 * It connects with ?after=SEQ, splits the body into lines, parses each with record_parse and
 * hands records to on_record in seq order. A record with seq <= the last one delivered is
 * dropped (no duplicate across reconnects). A record whose seq is beyond what the twin can
 * have logged (the larger of the last seq delivered and the highest head announced, plus one
 * per line received since: the twin's log has no gaps) is a bad record. A link with no bytes
 * for heartbeat_timeout_s is dead: it is cut and re-established with exponential backoff and
 * jitter, resuming after the last seq delivered; a partial line is discarded at reconnect. A
 * bad line is reported and skipped; it never stops the stream. A line that could not be
 * parsed for lack of memory is not bad: the connection is cut and the line read again after
 * the reconnect. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct record;
struct stream;
struct twin_client;

struct stream_callbacks {
    /* A parsed record (heartbeats and caught_up included), borrowed for the call. Returns 0,
     * or a negative errno to drop the connection (the stream reconnects unless stopping, and
     * resumes after the last record for which 0 was returned). May block (flow control). */
    int (*on_record)(void *userdata, const struct record *rec);
    /* A line that is not a valid record: seq is its seq if one could be read, else 0 (only
     * informative: it comes from a record that was refused). Reported once per seq. */
    void (*on_bad_record)(void *userdata, uint64_t seq, const char *reason);
    /* The link is up (answer 200 received) or down (lost or failed to connect). */
    void (*on_link)(void *userdata, bool up);
    /* A handled failure (reconnect, refused token, ...): err and a one-line message. */
    void (*on_notice)(void *userdata, int err, const char *message);
    void *userdata;
};

struct stream_config {
    struct twin_client *client; /* borrowed; must outlive the stream */
    uint64_t after;             /* resume after this seq */
    uint64_t head;              /* the twin's head announced before the stream (the snapshot) */
    double heartbeat_timeout_s; /* 0 means TWIN_DEFAULT_HEARTBEAT_TIMEOUT_S */
    double reconnect_max_s;     /* 0 means TWIN_DEFAULT_RECONNECT_MAX_S */
    size_t max_line;            /* 0 means TWIN_DEFAULT_MAX_RECORD_BYTES */
};

/* Starts the stream thread. Returns 0, -ENOMEM, or -errno from pthread_create. */
int stream_start(const struct stream_config *cfg, const struct stream_callbacks *cb,
                 struct stream **ret);

/* Asks the thread to stop; it leaves any blocking transfer within about a second. Does not
 * wait (on_record may be waiting on a condition the caller must now signal). */
void stream_request_stop(struct stream *s);

/* Stops the thread (if not yet), joins it and frees. Accepts NULL. */
void stream_free(struct stream *s);

/* The last seq delivered through on_record (a bad record's seq is not trusted: it does not
 * count). */
uint64_t stream_last_seq(struct stream *s);
