/* asset_select: the follower's asset selection, globs and shard (see asset_select.h). */
#include "asset_select.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "twin/hash.h"

struct asset_select {
    char **globs;
    size_t n_globs;
    unsigned shard_index;
    unsigned shard_count; /* 0: no sharding */
};

void asset_select_free(struct asset_select *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_globs; i++)
        free(s->globs[i]);
    free(s->globs);
    free(s);
}

static int copy_globs(struct asset_select *s, const char *const *globs, size_t n)
{
    s->globs = calloc(n, sizeof(*s->globs));
    if (!s->globs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        s->globs[i] = strdup(globs[i]);
        if (!s->globs[i])
            return -ENOMEM;
        s->n_globs = i + 1;
    }
    return 0;
}

int asset_select_new(const char *const *globs, size_t n_globs, unsigned shard_index,
                     unsigned shard_count, struct asset_select **ret)
{
    struct asset_select *s;
    int r;

    *ret = NULL;
    if (n_globs > 0 && !globs)
        return -EINVAL;
    for (size_t i = 0; i < n_globs; i++)
        if (!globs[i])
            return -EINVAL;
    if (shard_count > 1 && shard_index >= shard_count)
        return -EINVAL;
    if (n_globs == 0 && shard_count <= 1)
        return 0; /* every asset */
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (n_globs > 0) {
        r = copy_globs(s, globs, n_globs);
        if (r < 0) {
            asset_select_free(s);
            return r;
        }
    }
    if (shard_count > 1) {
        s->shard_index = shard_index;
        s->shard_count = shard_count;
    }
    *ret = s;
    return 0;
}

bool asset_select_match(const struct asset_select *s, const char *id)
{
    if (!s)
        return true;
    if (s->shard_count > 1 && twin_asset_shard(id, strlen(id), s->shard_count) != s->shard_index)
        return false;
    if (s->n_globs == 0)
        return true;
    for (size_t i = 0; i < s->n_globs; i++)
        if (fnmatch(s->globs[i], id, 0) == 0)
            return true;
    return false;
}
