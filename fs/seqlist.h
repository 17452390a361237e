/* seqlist: an ordered vector of (key, pointer) with O(log n) search and tombstones.
 *
 * Directories whose entries arrive in increasing key order (events by offset, assets by
 * creation serial) append at the end; removal leaves a tombstone so that removing the oldest
 * entries one by one stays O(1) amortized, and the vector compacts when tombstones outnumber
 * live entries. Readdir cookies are keys, so removals during a listing neither skip nor repeat
 * an entry. Not thread-safe: the caller holds the tree lock. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct seqlist_slot {
    uint64_t key;
    void *ptr; /* NULL: tombstone */
};

struct seqlist {
    struct seqlist_slot *v;
    size_t len; /* slots in use, tombstones included */
    size_t cap;
    size_t live; /* slots whose ptr is not NULL */
};

/* Initializes an empty list (no allocation). */
void seqlist_init(struct seqlist *l);

/* Frees the vector (not the pointers). Accepts an initialized empty list. */
void seqlist_free(struct seqlist *l);

/* Inserts ptr (not NULL) under key. Returns 0, -EEXIST if a live entry has the key, -ENOMEM. */
int seqlist_insert(struct seqlist *l, uint64_t key, void *ptr);

/* The live pointer stored under key, or NULL. */
void *seqlist_get(const struct seqlist *l, uint64_t key);

/* Removes the live entry under key. Returns 0 or -ENOENT. */
int seqlist_remove(struct seqlist *l, uint64_t key);

/* Index of the first slot whose key is >= key (may be len); walk on with seqlist_next. */
size_t seqlist_lower_bound(const struct seqlist *l, uint64_t key);

/* From slot index i (inclusive), the index of the first live slot, or len. */
size_t seqlist_next_live(const struct seqlist *l, size_t i);
