/* asset_table: a chained hash table of live assets (asset_table.h), grown by doubling. */
#include "asset_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "twin/hash.h"

#define INITIAL_BUCKETS 64

struct asset {
    struct asset *next;
    char *id;
    uint64_t key;
    uint64_t last_offset;
    bool delivered; /* last_offset holds an offset */
};

struct asset_table {
    struct asset **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    uint64_t next_key; /* from 1: 0 means "not live" */
};

static size_t bucket_of(const struct asset_table *t, const char *id)
{
    return (size_t)(twin_fnv1a(TWIN_FNV1A_INIT, id, strlen(id)) & (t->nbuckets - 1));
}

static struct asset *find(const struct asset_table *t, const char *id)
{
    for (struct asset *a = t->buckets[bucket_of(t, id)]; a; a = a->next)
        if (strcmp(a->id, id) == 0)
            return a;
    return NULL;
}

struct asset_table *asset_table_new(void)
{
    struct asset_table *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->buckets = calloc(INITIAL_BUCKETS, sizeof(struct asset *));
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->nbuckets = INITIAL_BUCKETS;
    t->next_key = 1;
    return t;
}

void asset_table_free(struct asset_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct asset *a = t->buckets[i];
        while (a) {
            struct asset *next = a->next;
            free(a->id);
            free(a);
            a = next;
        }
    }
    free(t->buckets);
    free(t);
}

uint64_t asset_table_key(const struct asset_table *t, const char *asset)
{
    const struct asset *a = find(t, asset);

    return a ? a->key : 0;
}

/* Doubles the buckets; on ENOMEM the table stays as it is (only slower). */
static void grow(struct asset_table *t)
{
    size_t n = t->nbuckets * 2;
    struct asset **b = calloc(n, sizeof(struct asset *));

    if (!b)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct asset *a = t->buckets[i];
        while (a) {
            struct asset *next = a->next;
            size_t j = (size_t)(twin_fnv1a(TWIN_FNV1A_INIT, a->id, strlen(a->id)) & (n - 1));
            a->next = b[j];
            b[j] = a;
            a = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

int asset_table_add(struct asset_table *t, const char *asset)
{
    struct asset *a;
    size_t i;

    if (find(t, asset))
        return 0;
    a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->id = strdup(asset);
    if (!a->id) {
        free(a);
        return -ENOMEM;
    }
    a->key = t->next_key++;
    if (t->count >= t->nbuckets)
        grow(t);
    i = bucket_of(t, asset);
    a->next = t->buckets[i];
    t->buckets[i] = a;
    t->count++;
    return 1;
}

uint64_t asset_table_renew(struct asset_table *t, const char *asset)
{
    struct asset *a = find(t, asset);

    if (!a)
        return 0;
    a->key = t->next_key++;
    return a->key;
}

void asset_table_remove(struct asset_table *t, const char *asset)
{
    for (struct asset **pp = &t->buckets[bucket_of(t, asset)]; *pp; pp = &(*pp)->next) {
        struct asset *a = *pp;
        if (strcmp(a->id, asset) != 0)
            continue;
        *pp = a->next;
        free(a->id);
        free(a);
        t->count--;
        return;
    }
}

bool asset_table_last_offset(const struct asset_table *t, const char *asset, uint64_t *ret_offset)
{
    const struct asset *a = find(t, asset);

    if (!a || !a->delivered)
        return false;
    *ret_offset = a->last_offset;
    return true;
}

void asset_table_set_last_offset(struct asset_table *t, const char *asset, uint64_t offset)
{
    struct asset *a = find(t, asset);

    if (!a)
        return;
    a->last_offset = offset;
    a->delivered = true;
}

size_t asset_table_count(const struct asset_table *t)
{
    return t->count;
}
