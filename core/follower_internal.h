/* follower_internal: the follower's state, shared by its three files (internal to core).
 *
 * follower.c owns the life cycle (new, start with the snapshot, stop, free), acks, T2 and
 * status; follower_records.c is where a record from the stream enters (the window, the asset
 * table, decoding, rendering through the render_event callback, on_event).
 *
 * One mutex guards the tracker, the pending window, the asset table and the status. User
 * callbacks are called without it held, so they may call follower_ack. The stream thread
 * blocks in its record handler while the window is full: that stops curl reading the socket,
 * which is the TCP back-pressure that bounds memory. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "twin/follower.h"

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
    struct asset_select *select; /* NULL: every asset is followed */
    uint64_t snapshot_head;
    struct follower_status st;
};

/* Records the message as last_error and passes it to on_notice. Called without the lock. */
void follower_notice(struct follower *f, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes asset live if this follower follows it (asset_select): the one way into the asset
 * table, so an asset it does not follow is never listed or announced and its events are skipped
 * as handled. Returns 1 (made live), 0 (live already, or not followed), -ENOMEM. Lock held. */
int follower_add_asset(struct follower *f, const char *asset);

/* Moves the tracker's watermark up to the window's. Lock held. */
void follower_advance_watermark(struct follower *f);

/* Starts the stream thread, resuming after seq after; head is the snapshot's. Returns 0 or the
 * error of stream_start. */
int follower_stream_start(struct follower *f, uint64_t after, uint64_t head);
