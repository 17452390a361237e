/* htab: a chained hash table of nodes keyed by a string (FNV-1a), for queue.c.
 *
 * A node is embedded as the first member of its owner, which keeps the key alive while the node
 * is in the table. The table grows (doubling) and never shrinks. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct hnode {
    struct hnode *next;
    uint64_t h;
    const char *key;
};

struct htab {
    struct hnode **b;
    size_t nb; /* a power of two, or 0 before the first insert */
    size_t n;
};

/* The node with key, or NULL. */
struct hnode *htab_find(const struct htab *t, const char *key);

/* Adds node (its key set); the key must not be in t. 0 or -ENOMEM. */
int htab_insert(struct htab *t, struct hnode *node);

/* Removes node, which is in t. */
void htab_remove(struct htab *t, struct hnode *node);
