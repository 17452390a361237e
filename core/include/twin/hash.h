/* hash: FNV-1a (64 bit), the one string hash of core, fs/ and mount/: for hash tables, and for
 * names and numbers that must stay the same across builds and machines (the default tracker's
 * file name, the shard of an asset).
 * Inline, so a part that links no core code (mount/'s option parser) can use it too. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define TWIN_FNV1A_INIT 0xcbf29ce484222325ULL

/* h extended by data[0..len): twin_fnv1a(TWIN_FNV1A_INIT, s, strlen(s)) is FNV-1a of s. */
static inline uint64_t twin_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The shard, from 0 to count - 1, that asset id falls in when a twin's assets are split count
 * ways (follower_config's shard_index and shard_count, twinfs's shard=K/N with K - 1): FNV-1a 64
 * of the id's bytes as the twin sends them (UTF-8, no terminating NUL), mod count. count 0 or 1:
 * 0. Fixed forever: mounts on different machines and of different versions split one twin by
 * it, each on its own, so it depends on nothing but the id's bytes and count (no seed, no byte
 * order, no table size), and a change to it would move assets between shards under running
 * mounts. tests/unit/test_asset_select.c pins known values. */
static inline unsigned twin_asset_shard(const char *id, size_t id_len, unsigned count)
{
    if (count <= 1)
        return 0;
    return (unsigned)(twin_fnv1a(TWIN_FNV1A_INIT, id, id_len) % count);
}
