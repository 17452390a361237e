/* seq_set: sorted, disjoint, non-touching ranges in chunks of at most CHUNK_RANGES, found
 * through a sorted directory of chunks (a B-tree of one level). A sorted array alone would
 * move the whole array for an ack far from its end; here an insertion moves at most one chunk,
 * and a full chunk splits in two (one move of the directory, which is CHUNK_RANGES/2 times
 * smaller than the set). */
#include "seq_set.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_RANGES 128

struct range {
    uint64_t lo, hi;
};

struct chunk {
    size_t n; /* >= 1 while in the directory */
    struct range r[CHUNK_RANGES];
};

struct seq_set {
    struct chunk **chunks; /* in order of their ranges */
    size_t n_chunks, cap_chunks;
    struct chunk *spare; /* reserved for the next split or first chunk */
    uint64_t count;
    size_t n_ranges;
};

/* A position: range i of chunk c. */
struct pos {
    size_t c, i;
};

static uint64_t length(const struct range *r)
{
    return r->hi - r->lo + 1;
}

/* True if r overlaps lo..hi or is next to it. */
static bool touches(const struct range *r, uint64_t lo, uint64_t hi)
{
    bool left_of = r->hi < lo && lo - r->hi > 1;
    bool right_of = r->lo > hi && r->lo - hi > 1;
    return !left_of && !right_of;
}

struct seq_set *seq_set_new(void)
{
    return calloc(1, sizeof(struct seq_set));
}

void seq_set_free(struct seq_set *s)
{
    if (!s)
        return;
    for (size_t c = 0; c < s->n_chunks; c++)
        free(s->chunks[c]);
    free(s->chunks);
    free(s->spare);
    free(s);
}

/* The last chunk whose first range starts at or below seq, or chunk 0. Set not empty. */
static size_t chunk_for(const struct seq_set *s, uint64_t seq)
{
    size_t a = 0, b = s->n_chunks;

    while (b - a > 1) {
        size_t mid = a + (b - a) / 2;
        if (s->chunks[mid]->r[0].lo <= seq)
            a = mid;
        else
            b = mid;
    }
    return a;
}

/* The first range of chunk k starting above seq (k->n if none). */
static size_t upper_in(const struct chunk *k, uint64_t seq)
{
    size_t a = 0, b = k->n;

    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (k->r[mid].lo <= seq)
            a = mid + 1;
        else
            b = mid;
    }
    return a;
}

static struct range *at(const struct seq_set *s, struct pos p)
{
    return &s->chunks[p.c]->r[p.i];
}

/* The range after p, if any. */
static bool next_pos(const struct seq_set *s, struct pos p, struct pos *ret)
{
    if (p.i + 1 < s->chunks[p.c]->n) {
        *ret = (struct pos){p.c, p.i + 1};
        return true;
    }
    if (p.c + 1 < s->n_chunks) {
        *ret = (struct pos){p.c + 1, 0};
        return true;
    }
    return false;
}

bool seq_set_contains(const struct seq_set *s, uint64_t seq)
{
    if (s->n_chunks == 0)
        return false;
    const struct chunk *k = s->chunks[chunk_for(s, seq)];
    size_t i = upper_in(k, seq);
    return i > 0 && seq <= k->r[i - 1].hi;
}

int seq_set_reserve(struct seq_set *s)
{
    if (!s->spare) {
        s->spare = malloc(sizeof(struct chunk));
        if (!s->spare)
            return -ENOMEM;
    }
    if (s->n_chunks == s->cap_chunks) {
        size_t cap = s->cap_chunks ? s->cap_chunks * 2 : 8;
        struct chunk **d = realloc(s->chunks, cap * sizeof(struct chunk *));
        if (!d)
            return -ENOMEM;
        s->chunks = d;
        s->cap_chunks = cap;
    }
    return 0;
}

/* Removes the range at p (its chunk too if that empties). */
static void remove_at(struct seq_set *s, struct pos p)
{
    struct chunk *k = s->chunks[p.c];

    s->count -= length(&k->r[p.i]);
    s->n_ranges--;
    memmove(&k->r[p.i], &k->r[p.i + 1], (k->n - p.i - 1) * sizeof(struct range));
    if (--k->n > 0)
        return;
    if (s->spare)
        free(k);
    else
        s->spare = k;
    memmove(&s->chunks[p.c], &s->chunks[p.c + 1], (s->n_chunks - p.c - 1) * sizeof(struct chunk *));
    s->n_chunks--;
}

/* Inserts r at p (reserved: a spare chunk and room in the directory). */
static void insert_at(struct seq_set *s, struct pos p, struct range r)
{
    if (s->n_chunks == 0) {
        s->chunks[0] = s->spare;
        s->spare = NULL;
        s->chunks[0]->n = 0;
        s->n_chunks = 1;
        p = (struct pos){0, 0};
    }
    struct chunk *k = s->chunks[p.c];
    if (k->n == CHUNK_RANGES) {
        struct chunk *upper = s->spare;
        size_t half = CHUNK_RANGES / 2;
        s->spare = NULL;
        upper->n = k->n - half;
        memcpy(upper->r, &k->r[half], upper->n * sizeof(struct range));
        k->n = half;
        memmove(&s->chunks[p.c + 2], &s->chunks[p.c + 1],
                (s->n_chunks - p.c - 1) * sizeof(struct chunk *));
        s->chunks[p.c + 1] = upper;
        s->n_chunks++;
        if (p.i > half) {
            k = upper;
            p.i -= half;
        }
    }
    memmove(&k->r[p.i + 1], &k->r[p.i], (k->n - p.i) * sizeof(struct range));
    k->r[p.i] = r;
    k->n++;
    s->count += length(&r);
    s->n_ranges++;
}

/* Widens the range at p to cover lo..hi, then swallows the ranges after it that it now
 * overlaps or touches. */
static void widen_at(struct seq_set *s, struct pos p, uint64_t lo, uint64_t hi)
{
    struct range *r = at(s, p);
    struct pos q;

    s->count -= length(r);
    if (lo < r->lo)
        r->lo = lo;
    if (hi > r->hi)
        r->hi = hi;
    s->count += length(r);
    while (next_pos(s, p, &q) && touches(at(s, q), r->lo, r->hi)) {
        uint64_t next_hi = at(s, q)->hi;
        remove_at(s, q); /* never p's chunk emptied: p is before q */
        r = at(s, p);
        if (next_hi > r->hi) {
            s->count += next_hi - r->hi;
            r->hi = next_hi;
        }
    }
}

int seq_set_add(struct seq_set *s, uint64_t lo, uint64_t hi)
{
    if (lo == 0 || hi < lo)
        return -EINVAL;
    int err = seq_set_reserve(s);
    if (err < 0)
        return err;
    if (s->n_chunks == 0) {
        insert_at(s, (struct pos){0, 0}, (struct range){lo, hi});
        return 0;
    }
    struct pos p = {chunk_for(s, lo), 0};
    p.i = upper_in(s->chunks[p.c], lo);
    /* The range before p starts at or below lo: the only one before p that can touch. */
    if (p.i > 0 && touches(&s->chunks[p.c]->r[p.i - 1], lo, hi)) {
        widen_at(s, (struct pos){p.c, p.i - 1}, lo, hi);
        return 0;
    }
    /* The range at p (or the next chunk's first) starts above lo. */
    struct pos q = p;
    bool have_q = p.i < s->chunks[p.c]->n;
    if (!have_q && p.c + 1 < s->n_chunks) {
        q = (struct pos){p.c + 1, 0};
        have_q = true;
    }
    if (have_q && touches(at(s, q), lo, hi)) {
        widen_at(s, q, lo, hi);
        return 0;
    }
    insert_at(s, p, (struct range){lo, hi});
    return 0;
}

void seq_set_drop_through(struct seq_set *s, uint64_t w)
{
    size_t whole = 0;

    if (s->n_chunks == 0 || s->chunks[0]->r[0].lo > w)
        return;
    /* Chunks entirely at or below w go at once. */
    while (whole < s->n_chunks) {
        struct chunk *k = s->chunks[whole];
        if (k->r[k->n - 1].hi > w)
            break;
        for (size_t i = 0; i < k->n; i++)
            s->count -= length(&k->r[i]);
        s->n_ranges -= k->n;
        if (s->spare)
            free(k);
        else
            s->spare = k;
        whole++;
    }
    memmove(&s->chunks[0], &s->chunks[whole], (s->n_chunks - whole) * sizeof(struct chunk *));
    s->n_chunks -= whole;
    if (s->n_chunks == 0)
        return;
    /* Then the ranges of the first chunk that end at or below w, and the start of the next. */
    struct chunk *k = s->chunks[0];
    size_t gone = 0;
    while (gone < k->n && k->r[gone].hi <= w) {
        s->count -= length(&k->r[gone]);
        gone++;
    }
    memmove(&k->r[0], &k->r[gone], (k->n - gone) * sizeof(struct range));
    k->n -= gone;
    s->n_ranges -= gone;
    if (k->r[0].lo <= w) {
        s->count -= w - k->r[0].lo + 1;
        k->r[0].lo = w + 1;
    }
}

uint64_t seq_set_count(const struct seq_set *s)
{
    return s->count;
}

size_t seq_set_ranges(const struct seq_set *s)
{
    return s->n_ranges;
}

int seq_set_each(const struct seq_set *s, int (*fn)(void *userdata, uint64_t lo, uint64_t hi),
                 void *userdata)
{
    for (size_t c = 0; c < s->n_chunks; c++) {
        const struct chunk *k = s->chunks[c];
        for (size_t i = 0; i < k->n; i++) {
            int r = fn(userdata, k->r[i].lo, k->r[i].hi);
            if (r != 0)
                return r;
        }
    }
    return 0;
}
