/* queue: what the dispatcher has to run, per asset, in order; no I/O.
 *
 * An item is an event (known by its flat name under MNT/events, ordered by its seq) or an asset
 * callback. Each asset has its own list: events in seq order, an asset's "created" callback
 * before its events, its "deleted" callback after them. At most one item of an asset runs at a
 * time (dq_next marks the asset busy until dq_done). Across assets, the ready asset whose next
 * item has the lowest seq goes first (callbacks count as seq 0; an event that becomes an
 * asset's head while the asset waits in line keeps the asset's place).
 *
 * A failed item is tried again after a backoff (policy.backoff_s, doubling per attempt, at most
 * policy.backoff_max_s) and blocks its asset's later items meanwhile; after policy.retries
 * attempts (0: unbounded) it is given up: it leaves its asset's list but stays known, so a
 * rescan does not bring it back. An item whose claim another consumer holds is tried again after
 * policy.held_s. An event with no handler is parked until dq_unpark. Times are seconds of a
 * monotonic clock, passed in by the caller. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct dq;
struct dq_item;

enum dq_kind {
    DQ_EVENT,
    DQ_ASSET_CREATED,
    DQ_ASSET_DELETED,
};

enum dq_result {
    DQ_OK,         /* handled (acked, or gone): the item goes */
    DQ_FAILED,     /* the handler failed: retry after the backoff, or give up */
    DQ_HELD,       /* another consumer holds the claim: try again after held_s */
    DQ_NO_HANDLER, /* parked until dq_unpark */
};

struct dq_policy {
    unsigned retries; /* attempts before giving up; 0 = unbounded */
    double backoff_s; /* the first retry's delay */
    double backoff_max_s;
    double held_s;
};

struct dq_counts {
    unsigned long queued; /* waiting in some asset's list (not running) */
    unsigned long running;
    unsigned long given_up; /* events and callbacks that failed every attempt */
    unsigned long parked;   /* events without a handler */
};

/* NULL on ENOMEM. */
struct dq *dq_new(const struct dq_policy *policy);
void dq_free(struct dq *q);

/* Adds the event named name (a flat name) of asset with seq. Returns 1 if added, 0 if the name
 * is known already (queued, running, parked or given up; its scan mark is refreshed), -ENOMEM. */
int dq_add_event(struct dq *q, const char *name, const char *asset, uint64_t seq);

/* Adds a callback of asset (DQ_ASSET_CREATED or DQ_ASSET_DELETED). 0 or -ENOMEM. */
int dq_add_callback(struct dq *q, const char *asset, enum dq_kind kind);

/* The event named name is gone (acked by anyone, or its asset deleted): it leaves the queue; a
 * running one goes at its dq_done. If it was the head its asset waited on, the asset is ready. */
void dq_remove(struct dq *q, const char *name);

/* Asset presence, for the created/deleted callbacks. dq_asset_seen returns 1 if asset was not
 * present (the caller adds its created callback), 0 if it was, -ENOMEM. dq_asset_gone returns 1
 * if it was present (the caller adds its deleted callback), 0 if not. */
int dq_asset_seen(struct dq *q, const char *asset);
int dq_asset_gone(struct dq *q, const char *asset);

/* A rescan: dq_scan_begin, then dq_add_event / dq_asset_seen for everything listed, then
 * dq_scan_end, which removes the events that were not listed (acked while unseen) and, with
 * assets true, calls gone(asset, arg) for each present asset that was not listed (after marking
 * it absent). */
void dq_scan_begin(struct dq *q);
void dq_scan_end(struct dq *q, bool assets, void (*gone)(const char *asset, void *arg), void *arg);

/* The next item to run at time now, or NULL. Its asset is busy until dq_done. */
struct dq_item *dq_next(struct dq *q, double now);

/* Ends a run of item (from dq_next) with result r at time now. Returns true if the item was given
 * up (DQ_FAILED on its last attempt) or newly parked, so the caller logs it once. */
bool dq_done(struct dq *q, struct dq_item *item, enum dq_result r, double now);

/* Brings parked events back to their assets' lists (a new handler may take them). */
void dq_unpark(struct dq *q);

/* The earliest time an asset waiting for a retry becomes ready; INFINITY if none waits. */
double dq_next_wakeup(const struct dq *q);

void dq_counts(const struct dq *q, struct dq_counts *ret);

enum dq_kind dq_item_kind(const struct dq_item *item);
const char *dq_item_name(const struct dq_item *item); /* NULL for a callback */
const char *dq_item_asset(const struct dq_item *item);
uint64_t dq_item_seq(const struct dq_item *item);
unsigned dq_item_attempts(const struct dq_item *item); /* failed attempts so far */
bool dq_item_gone(const struct dq_item *item);         /* removed while it ran */
