/* asset_table: the follower's live assets by id.
 *
 * Each live asset has a key, never reused, so the acks of a re-created asset's old events stay
 * apart from its new ones, and the offset of the last event delivered (an asset's offsets only
 * grow). Not thread-safe: the follower's lock covers it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct asset_table;

/* Returns an empty table, or NULL on ENOMEM. */
struct asset_table *asset_table_new(void);

/* Frees t and every id in it. Accepts NULL. */
void asset_table_free(struct asset_table *t);

/* The key of asset, or 0 if it is not live. */
uint64_t asset_table_key(const struct asset_table *t, const char *asset);

/* Makes asset live under a new key. Returns 1, 0 if it was live already (its key unchanged),
 * or -ENOMEM. */
int asset_table_add(struct asset_table *t, const char *asset);

/* Gives the live asset a new key (a new incarnation); its last offset stays. Returns the new
 * key, or 0 if asset is not live. */
uint64_t asset_table_renew(struct asset_table *t, const char *asset);

/* Forgets asset, its key and its last offset. Nothing happens if it is not live. */
void asset_table_remove(struct asset_table *t, const char *asset);

/* True, with *ret_offset, if an event of the live asset was delivered. */
bool asset_table_last_offset(const struct asset_table *t, const char *asset, uint64_t *ret_offset);

/* Notes offset as the last delivered of the live asset (nothing happens if it is not live). */
void asset_table_set_last_offset(struct asset_table *t, const char *asset, uint64_t offset);

/* How many assets are live. */
size_t asset_table_count(const struct asset_table *t);
