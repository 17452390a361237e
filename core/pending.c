/* pending: a ring of delivered events in seq order plus an open-addressing hash from seq to
 * the event's position in the ring. Positions are absolute (monotonic), so growing the ring
 * does not invalidate the hash. Acked events stay in the ring, marked done, until every
 * older event is done too: that keeps the watermark O(1). */
#include "pending.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    uint64_t seq;
    uint64_t asset_key;
    uint64_t offset;
    uint64_t bytes;
    bool done;
};

struct slot {
    uint64_t seq; /* 0: empty (seqs start at 1) */
    uint64_t pos;
};

struct pending {
    struct entry *ring;
    size_t ring_cap; /* power of two */
    uint64_t head;   /* absolute position of the oldest entry */
    uint64_t tail;   /* absolute position after the newest */
    struct slot *tab;
    size_t tab_cap; /* power of two, load kept <= 1/2 */
    size_t count;   /* entries not done (== entries in tab) */
    uint64_t bytes; /* their sizes, summed */
    uint64_t last_seq;
};

static size_t slot_of(uint64_t seq, size_t cap)
{
    /* Fibonacci hashing: consecutive seqs spread over the table. */
    return (size_t)((seq * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

struct pending *pending_new(uint64_t start_seq)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->ring_cap = 64;
    p->ring = calloc(p->ring_cap, sizeof(*p->ring));
    if (!p->ring)
        goto fail_ring;
    p->tab_cap = 128;
    p->tab = calloc(p->tab_cap, sizeof(*p->tab));
    if (!p->tab)
        goto fail_tab;
    p->last_seq = start_seq;
    return p;

fail_tab:
    free(p->ring);
fail_ring:
    free(p);
    return NULL;
}

void pending_free(struct pending *p)
{
    if (!p)
        return;
    free(p->tab);
    free(p->ring);
    free(p);
}

static void tab_insert(struct slot *tab, size_t cap, uint64_t seq, uint64_t pos)
{
    size_t i = slot_of(seq, cap);
    while (tab[i].seq != 0)
        i = (i + 1) & (cap - 1);
    tab[i].seq = seq;
    tab[i].pos = pos;
}

static long tab_lookup(const struct pending *p, uint64_t seq)
{
    size_t i = slot_of(seq, p->tab_cap);
    while (p->tab[i].seq != 0) {
        if (p->tab[i].seq == seq)
            return (long)i;
        i = (i + 1) & (p->tab_cap - 1);
    }
    return -1;
}

/* Backward-shift deletion: keeps every probe chain unbroken without tombstones. */
static void tab_delete(struct pending *p, size_t i)
{
    size_t mask = p->tab_cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (p->tab[j].seq == 0)
            break;
        size_t home = slot_of(p->tab[j].seq, p->tab_cap);
        /* The entry at j may move to i only if its home is not cyclically within (i, j]. */
        bool in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (in_range)
            continue;
        p->tab[i] = p->tab[j];
        i = j;
    }
    p->tab[i].seq = 0;
    p->tab[i].pos = 0;
}

static int tab_grow(struct pending *p)
{
    size_t cap = p->tab_cap * 2;
    struct slot *tab = calloc(cap, sizeof(*tab));
    if (!tab)
        return -ENOMEM;
    for (size_t i = 0; i < p->tab_cap; i++)
        if (p->tab[i].seq != 0)
            tab_insert(tab, cap, p->tab[i].seq, p->tab[i].pos);
    free(p->tab);
    p->tab = tab;
    p->tab_cap = cap;
    return 0;
}

static int ring_grow(struct pending *p)
{
    size_t cap = p->ring_cap * 2;
    struct entry *ring = calloc(cap, sizeof(*ring));
    if (!ring)
        return -ENOMEM;
    for (uint64_t pos = p->head; pos < p->tail; pos++)
        ring[pos & (cap - 1)] = p->ring[pos & (p->ring_cap - 1)];
    free(p->ring);
    p->ring = ring;
    p->ring_cap = cap;
    return 0;
}

static struct entry *at(const struct pending *p, uint64_t pos)
{
    return &p->ring[pos & (p->ring_cap - 1)];
}

/* Rewrites the ring with the entries not done, renumbered from 0. Without this, one event
 * that is never acked would keep every later (acked) entry in the ring: memory would grow with
 * every event delivered, not with the events pending. */
static int ring_compact(struct pending *p)
{
    struct entry *ring = calloc(p->ring_cap, sizeof(*ring));
    uint64_t w = 0;

    if (!ring)
        return -ENOMEM;
    memset(p->tab, 0, p->tab_cap * sizeof(*p->tab));
    for (uint64_t pos = p->head; pos < p->tail; pos++) {
        const struct entry *e = at(p, pos);
        if (e->done)
            continue;
        ring[w & (p->ring_cap - 1)] = *e;
        tab_insert(p->tab, p->tab_cap, e->seq, w);
        w++;
    }
    free(p->ring);
    p->ring = ring;
    p->head = 0;
    p->tail = w;
    return 0;
}

/* Drops the done entries at the head so the oldest entry is pending (or the ring is empty). */
static void pop_done(struct pending *p)
{
    while (p->head < p->tail && at(p, p->head)->done)
        p->head++;
}

int pending_add(struct pending *p, uint64_t seq, uint64_t asset_key, uint64_t offset,
                uint64_t bytes)
{
    int r;

    if (seq <= p->last_seq)
        return -EINVAL;
    if (p->tail - p->head == p->ring_cap) {
        /* Grow only when at least half the ring is really pending: amortized O(1) either way. */
        r = p->count * 2 <= p->ring_cap ? ring_compact(p) : ring_grow(p);
        if (r < 0)
            return r;
    }
    if ((p->count + 1) * 2 > p->tab_cap) {
        r = tab_grow(p);
        if (r < 0)
            return r;
    }
    struct entry *e = at(p, p->tail);
    e->seq = seq;
    e->asset_key = asset_key;
    e->offset = offset;
    e->bytes = bytes;
    e->done = false;
    tab_insert(p->tab, p->tab_cap, seq, p->tail);
    p->tail++;
    p->count++;
    p->bytes += bytes;
    p->last_seq = seq;
    return 0;
}

void pending_advance(struct pending *p, uint64_t seq)
{
    if (seq > p->last_seq)
        p->last_seq = seq;
}

int pending_find(const struct pending *p, uint64_t seq, uint64_t *ret_asset_key,
                 uint64_t *ret_offset)
{
    long i = tab_lookup(p, seq);
    if (i < 0)
        return -ENOENT;
    const struct entry *e = at(p, p->tab[i].pos);
    if (ret_asset_key)
        *ret_asset_key = e->asset_key;
    if (ret_offset)
        *ret_offset = e->offset;
    return 0;
}

int pending_remove(struct pending *p, uint64_t seq)
{
    long i = tab_lookup(p, seq);
    if (i < 0)
        return -ENOENT;
    struct entry *e = at(p, p->tab[i].pos);
    e->done = true;
    p->bytes -= e->bytes;
    tab_delete(p, (size_t)i);
    p->count--;
    pop_done(p);
    return 0;
}

size_t pending_drop_asset(struct pending *p, uint64_t asset_key)
{
    size_t n = 0;
    for (uint64_t pos = p->head; pos < p->tail; pos++) {
        struct entry *e = at(p, pos);
        if (e->done || e->asset_key != asset_key)
            continue;
        long i = tab_lookup(p, e->seq);
        if (i >= 0)
            tab_delete(p, (size_t)i);
        e->done = true;
        p->count--;
        p->bytes -= e->bytes;
        n++;
    }
    pop_done(p);
    return n;
}

size_t pending_ring_capacity(const struct pending *p)
{
    return p->ring_cap;
}

size_t pending_count(const struct pending *p)
{
    return p->count;
}

uint64_t pending_bytes(const struct pending *p)
{
    return p->bytes;
}

uint64_t pending_watermark(const struct pending *p)
{
    if (p->head < p->tail)
        return at(p, p->head)->seq - 1;
    return p->last_seq;
}

uint64_t pending_last_seq(const struct pending *p)
{
    return p->last_seq;
}
