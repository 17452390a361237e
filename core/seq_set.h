/* seq_set: a set of seqs (uint64, >= 1) held as sorted ranges of consecutive seqs.
 *
 * What the tracker keeps for the acks above its watermark. Acks come mostly in order, so they
 * extend one range and the set stays small however many there are; any order works, each
 * operation costs O(log n) plus a move of at most one small chunk. Not thread-safe. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct seq_set;

/* Returns a new empty set, or NULL (out of memory). */
struct seq_set *seq_set_new(void);

/* Accepts NULL. */
void seq_set_free(struct seq_set *s);

bool seq_set_contains(const struct seq_set *s, uint64_t seq);

/* Makes sure the next seq_set_add cannot fail. Returns 0 or -ENOMEM. */
int seq_set_reserve(struct seq_set *s);

/* Adds every seq in lo..hi (1 <= lo <= hi), merging what it overlaps or touches. Returns 0,
 * -EINVAL for a bad range, or -ENOMEM (never after seq_set_reserve returned 0). */
int seq_set_add(struct seq_set *s, uint64_t lo, uint64_t hi);

/* Removes every seq <= w. */
void seq_set_drop_through(struct seq_set *s, uint64_t w);

/* The number of seqs in the set (saturates at UINT64_MAX). */
uint64_t seq_set_count(const struct seq_set *s);

/* The number of ranges that hold them. */
size_t seq_set_ranges(const struct seq_set *s);

/* Calls fn for each range in order; stops at and returns the first non-zero result. */
int seq_set_each(const struct seq_set *s, int (*fn)(void *userdata, uint64_t lo, uint64_t hi),
                 void *userdata);
