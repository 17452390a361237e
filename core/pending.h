/* pending: the window of events delivered but not yet acknowledged.
 *
 * Events are added in increasing seq order; acks (removals) come in any order. The window
 * gives the count of events still pending (flow control) and the watermark: every record with
 * seq <= watermark is handled, i.e. (smallest pending seq) - 1, or the last seq seen when
 * nothing is pending. Records that need no ack (asset records, events filtered out, bad
 * records) only advance the last seq seen. Add, find and remove are O(1) amortized; dropping
 * the events of one asset is O(window). Not thread-safe: the caller serializes. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct pending;

/* A new, empty window whose watermark starts at start_seq. Returns NULL on ENOMEM. */
struct pending *pending_new(uint64_t start_seq);

/* Accepts NULL. */
void pending_free(struct pending *p);

/* Adds a delivered event. asset_key is the caller's number for the event's asset, bytes its
 * size (counted in pending_bytes until it goes). Returns 0, -EINVAL if seq is not above every
 * seq seen so far, -ENOMEM. */
int pending_add(struct pending *p, uint64_t seq, uint64_t asset_key, uint64_t offset,
                uint64_t bytes);

/* A record that needs no ack: the last seq seen moves to seq (ignored if not above it). */
void pending_advance(struct pending *p, uint64_t seq);

/* Looks up a pending event. Returns 0 with *ret_asset_key and *ret_offset (either may be
 * NULL), or -ENOENT. */
int pending_find(const struct pending *p, uint64_t seq, uint64_t *ret_asset_key,
                 uint64_t *ret_offset);

/* Removes a pending event (it was acked). Returns 0 or -ENOENT. */
int pending_remove(struct pending *p, uint64_t seq);

/* Removes every pending event of asset_key (the asset was deleted). Returns how many. */
size_t pending_drop_asset(struct pending *p, uint64_t asset_key);

/* Events still pending. */
size_t pending_count(const struct pending *p);

/* The sizes of the events still pending, summed. */
uint64_t pending_bytes(const struct pending *p);

/* Slots allocated for the window: bounded by about twice the events pending, however many
 * were delivered and acked meanwhile (for tests and status). */
size_t pending_ring_capacity(const struct pending *p);

/* (smallest pending seq) - 1, or the last seq seen when nothing is pending. */
uint64_t pending_watermark(const struct pending *p);

/* The highest seq added or advanced to (or start_seq). */
uint64_t pending_last_seq(const struct pending *p);
