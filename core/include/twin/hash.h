/* hash: FNV-1a (64 bit), the one string hash of core, fs/ and mount/: for hash tables, and for
 * names that must stay the same across builds and machines (the default tracker's file name).
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
