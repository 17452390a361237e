/* dir_index: the entries of a directory in key order (events by offset, assets by creation
 * serial), an ordered map of uint64_t keys to pointers with O(log n) search.
 *
 * Entries mostly arrive in increasing key order and append at the end. Removal leaves a
 * tombstone, so removing the oldest entries one by one stays O(1) amortized, and the vector
 * compacts when tombstones outnumber live entries. Readdir cookies are keys, so removals during
 * a listing neither skip nor repeat an entry. Not thread-safe: the caller holds the tree lock. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct dir_index;

/* An empty index, or NULL on ENOMEM. */
struct dir_index *dir_index_new(void);

/* Frees the index (not the pointers). Accepts NULL. */
void dir_index_free(struct dir_index *l);

/* Inserts ptr (not NULL) under key. Returns 0, -EEXIST if a live entry has the key, -ENOMEM. */
int dir_index_insert(struct dir_index *l, uint64_t key, void *ptr);

/* The live pointer stored under key, or NULL. */
void *dir_index_get(const struct dir_index *l, uint64_t key);

/* Removes the live entry under key. Returns 0 or -ENOENT. */
int dir_index_remove(struct dir_index *l, uint64_t key);

/* The live entry with the smallest key >= from (its key in *ret_key), or NULL if none. */
void *dir_index_next(const struct dir_index *l, uint64_t from, uint64_t *ret_key);

/* The number of live entries. */
size_t dir_index_count(const struct dir_index *l);
