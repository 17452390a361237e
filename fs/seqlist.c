/* seqlist: see seqlist.h. */
#include "seqlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void seqlist_init(struct seqlist *l)
{
    memset(l, 0, sizeof(*l));
}

void seqlist_free(struct seqlist *l)
{
    free(l->v);
    seqlist_init(l);
}

size_t seqlist_lower_bound(const struct seqlist *l, uint64_t key)
{
    size_t lo = 0, hi = l->len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t seqlist_next_live(const struct seqlist *l, size_t i)
{
    while (i < l->len && !l->v[i].ptr)
        i++;
    return i;
}

/* Drops the tombstones; keys stay sorted. */
static void seqlist_compact(struct seqlist *l)
{
    size_t w = 0;

    for (size_t r = 0; r < l->len; r++)
        if (l->v[r].ptr)
            l->v[w++] = l->v[r];
    l->len = w;
}

int seqlist_insert(struct seqlist *l, uint64_t key, void *ptr)
{
    size_t i;

    if (l->len > 0 && l->v[l->len - 1].key < key) {
        i = l->len; /* the common case: keys arrive in order */
    } else {
        i = seqlist_lower_bound(l, key);
        if (i < l->len && l->v[i].key == key) {
            if (l->v[i].ptr)
                return -EEXIST;
            l->v[i].ptr = ptr; /* reuse the tombstone */
            l->live++;
            return 0;
        }
    }
    if (l->len == l->cap) {
        if (l->len - l->live >= l->live && l->len > 0) {
            seqlist_compact(l);
            i = seqlist_lower_bound(l, key);
        }
    }
    if (l->len == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        struct seqlist_slot *nv = realloc(l->v, ncap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        l->v = nv;
        l->cap = ncap;
    }
    memmove(&l->v[i + 1], &l->v[i], (l->len - i) * sizeof(*l->v));
    l->v[i].key = key;
    l->v[i].ptr = ptr;
    l->len++;
    l->live++;
    return 0;
}

void *seqlist_get(const struct seqlist *l, uint64_t key)
{
    size_t i = seqlist_lower_bound(l, key);

    if (i < l->len && l->v[i].key == key)
        return l->v[i].ptr;
    return NULL;
}

int seqlist_remove(struct seqlist *l, uint64_t key)
{
    size_t i = seqlist_lower_bound(l, key);

    if (i >= l->len || l->v[i].key != key || !l->v[i].ptr)
        return -ENOENT;
    l->v[i].ptr = NULL;
    l->live--;
    if (l->live == 0) {
        l->len = 0; /* nothing left: start over without a pass */
    } else if (i == l->len - 1) {
        while (l->len > 0 && !l->v[l->len - 1].ptr)
            l->len--;
    } else if (l->len > 64 && l->len - l->live > 2 * l->live) {
        seqlist_compact(l);
    }
    return 0;
}
