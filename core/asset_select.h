/* asset_select: which assets a follower follows (follower_config's asset_globs and shard).
 *
 * The one predicate of the selection: the follower asks it before an asset enters its asset
 * table, so an asset it refuses is never listed, never announced, and its event records find
 * no live asset and are skipped as handled. Immutable once made: safe to read from any thread. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct asset_select;

/* A selection of the assets whose id matches one of globs[0..n_globs) (fnmatch(3) with no
 * flags, over the whole id; n_globs 0: every id) and, with shard_count > 1, whose
 * twin_asset_shard is shard_index. Copies the globs. Returns 0 with *ret (NULL when the
 * selection takes every asset), -EINVAL (a NULL glob, or shard_index >= shard_count > 1), or
 * -ENOMEM. */
int asset_select_new(const char *const *globs, size_t n_globs, unsigned shard_index,
                     unsigned shard_count, struct asset_select **ret);

/* Frees s. Accepts NULL. */
void asset_select_free(struct asset_select *s);

/* True if the asset with this id is followed. A NULL s follows every asset. */
bool asset_select_match(const struct asset_select *s, const char *id);
