/* test_dir_index: the directory index against a plain array over random operations (in order
 * appends with removals from the front, as events come and are acked, and scattered ones),
 * and its edges. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "dir_index.h"
#include "unit.h"

#define UNIVERSE 3000

static void *model[UNIVERSE];

static void *ptr_of(uint64_t key)
{
    return (void *)(uintptr_t)(key * 16 + 8); /* never NULL, distinct per key */
}

/* Every key's entry, the count, and dir_index_next from every key (and from past the end). */
static void check_against_model(const struct dir_index *l)
{
    size_t count = 0;
    uint64_t next_key = UINT64_MAX; /* the smallest live key >= k, walking k downwards */

    for (uint64_t k = UNIVERSE; k-- > 0;) {
        CHECK(dir_index_get(l, k) == model[k]);
        if (model[k]) {
            count++;
            next_key = k;
        }
        uint64_t got = 0;
        void *p = dir_index_next(l, k, &got);
        if (next_key == UINT64_MAX) {
            CHECK(p == NULL);
        } else {
            CHECK(p == model[next_key]);
            CHECK_INT_EQ(got, next_key);
        }
    }
    uint64_t dummy;
    CHECK(dir_index_next(l, UNIVERSE, &dummy) == NULL);
    CHECK_INT_EQ(dir_index_count(l), count);
}

static void apply_insert(struct dir_index *l, uint64_t k)
{
    int r = dir_index_insert(l, k, ptr_of(k));
    if (model[k]) {
        CHECK_INT_EQ(r, -EEXIST);
    } else {
        CHECK_INT_EQ(r, 0);
        model[k] = ptr_of(k);
    }
}

static void apply_remove(struct dir_index *l, uint64_t k)
{
    int r = dir_index_remove(l, k);
    CHECK_INT_EQ(r, model[k] ? 0 : -ENOENT);
    model[k] = NULL;
}

/* Pattern 0: a queue (append in order, remove the oldest); 1: append in order, remove at
 * random; 2: insert and remove at random (tombstones reused, compaction mid-vector). */
static void test_random_against_model(void)
{
    for (int round = 0; round < 30; round++) {
        struct dir_index *l = dir_index_new();
        CHECK(l != NULL);
        memset(model, 0, sizeof(model));
        int pattern = round % 3;
        uint64_t head = 0, tail = 0;
        for (int op = 0; op < 4000; op++) {
            bool add = unit_rand(100) < (pattern == 2 ? 50 : 60);
            if (pattern == 2) {
                uint64_t k = unit_rand(UNIVERSE);
                if (add)
                    apply_insert(l, k);
                else
                    apply_remove(l, k);
            } else if (add && tail < UNIVERSE) {
                apply_insert(l, tail++);
            } else if (pattern == 0 && head < tail) {
                apply_remove(l, head++);
            } else if (tail > 0) {
                apply_remove(l, unit_rand(tail));
            }
            if (op % 500 == 499)
                check_against_model(l);
        }
        check_against_model(l);
        dir_index_free(l);
    }
}

static void test_edges(void)
{
    struct dir_index *l = dir_index_new();
    uint64_t key = 7;

    CHECK(l != NULL);
    CHECK(dir_index_next(l, 0, &key) == NULL);
    CHECK_INT_EQ(key, 7); /* untouched when there is none */
    CHECK_INT_EQ(dir_index_remove(l, 0), -ENOENT);
    CHECK_INT_EQ(dir_index_insert(l, UINT64_MAX, ptr_of(1)), 0);
    CHECK_INT_EQ(dir_index_insert(l, 0, ptr_of(2)), 0); /* before the first: not an append */
    CHECK(dir_index_next(l, 1, &key) == ptr_of(1));
    CHECK(key == UINT64_MAX);
    CHECK_INT_EQ(dir_index_remove(l, UINT64_MAX), 0);
    CHECK_INT_EQ(dir_index_remove(l, UINT64_MAX), -ENOENT);
    CHECK_INT_EQ(dir_index_count(l), 1);
    CHECK_INT_EQ(dir_index_remove(l, 0), 0);
    CHECK_INT_EQ(dir_index_count(l), 0);
    dir_index_free(l);
    dir_index_free(NULL);
}

int main(void)
{
    RUN(test_edges);
    RUN(test_random_against_model);
    return 0;
}
