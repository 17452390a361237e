/* dir_index: see dir_index.h. */
#include "dir_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    uint64_t key;
    void *ptr; /* NULL: tombstone */
};

struct dir_index {
    struct slot *v;
    size_t len; /* slots in use, tombstones included; keys strictly increase over them */
    size_t cap;
    size_t live; /* slots whose ptr is not NULL */
};

struct dir_index *dir_index_new(void)
{
    return calloc(1, sizeof(struct dir_index));
}

void dir_index_free(struct dir_index *l)
{
    if (!l)
        return;
    free(l->v);
    free(l);
}

/* Index of the first slot whose key is >= key (may be len). */
static size_t lower_bound(const struct dir_index *l, uint64_t key)
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

/* Drops the tombstones; keys stay sorted. */
static void compact(struct dir_index *l)
{
    size_t w = 0;

    for (size_t r = 0; r < l->len; r++)
        if (l->v[r].ptr)
            l->v[w++] = l->v[r];
    l->len = w;
}

int dir_index_insert(struct dir_index *l, uint64_t key, void *ptr)
{
    size_t i;

    if (l->len > 0 && l->v[l->len - 1].key < key) {
        i = l->len; /* the common case: keys arrive in order */
    } else {
        i = lower_bound(l, key);
        if (i < l->len && l->v[i].key == key) {
            if (l->v[i].ptr)
                return -EEXIST;
            l->v[i].ptr = ptr; /* reuse the tombstone */
            l->live++;
            return 0;
        }
    }
    if (l->len == l->cap && l->len > 0 && l->len - l->live >= l->live) {
        compact(l);
        i = lower_bound(l, key);
    }
    if (l->len == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        struct slot *nv = realloc(l->v, ncap * sizeof(*nv));
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

void *dir_index_get(const struct dir_index *l, uint64_t key)
{
    size_t i = lower_bound(l, key);

    if (i < l->len && l->v[i].key == key)
        return l->v[i].ptr;
    return NULL;
}

int dir_index_remove(struct dir_index *l, uint64_t key)
{
    size_t i = lower_bound(l, key);

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
        compact(l);
    }
    return 0;
}

void *dir_index_next(const struct dir_index *l, uint64_t from, uint64_t *ret_key)
{
    for (size_t i = lower_bound(l, from); i < l->len; i++) {
        if (l->v[i].ptr) {
            *ret_key = l->v[i].key;
            return l->v[i].ptr;
        }
    }
    return NULL;
}

size_t dir_index_count(const struct dir_index *l)
{
    return l->live;
}
