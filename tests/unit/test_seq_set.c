/* test_seq_set: the range set against a plain bitmap over random operations, and its edges. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "seq_set.h"
#include "unit.h"

#define UNIVERSE 6000

static bool model[UNIVERSE + 2];

struct walk {
    uint64_t last_hi;
    size_t ranges;
    uint64_t count;
};

static int check_range(void *userdata, uint64_t lo, uint64_t hi)
{
    struct walk *w = userdata;
    CHECK(lo <= hi);
    CHECK(w->ranges == 0 || lo > w->last_hi + 1); /* sorted, disjoint, never touching */
    for (uint64_t s = lo; s <= hi; s++)
        CHECK(model[s]);
    w->last_hi = hi;
    w->ranges++;
    w->count += hi - lo + 1;
    return 0;
}

static void check_against_model(const struct seq_set *s)
{
    uint64_t count = 0;
    size_t runs = 0;
    for (uint64_t i = 1; i <= UNIVERSE; i++) {
        CHECK(seq_set_contains(s, i) == model[i]);
        count += model[i];
        runs += model[i] && !model[i - 1];
    }
    CHECK(!seq_set_contains(s, UNIVERSE + 1) || model[UNIVERSE + 1]);
    struct walk w = {0};
    CHECK_INT_EQ(seq_set_each(s, check_range, &w), 0);
    CHECK_INT_EQ(w.count, count);
    CHECK_INT_EQ(w.ranges, runs);
    CHECK_INT_EQ(seq_set_count(s), count);
    CHECK_INT_EQ(seq_set_ranges(s), runs);
}

/* Random singles, ranges and drops (in every order: ascending, descending, scattered), checked
 * against the bitmap after each round. */
static void test_random_against_model(void)
{
    for (int round = 0; round < 40; round++) {
        struct seq_set *s = seq_set_new();
        CHECK(s != NULL);
        memset(model, 0, sizeof(model));
        uint64_t dropped = 0;
        int pattern = round % 4;
        for (int op = 0; op < 3000; op++) {
            uint64_t lo, hi;
            if (pattern == 0) { /* ascending with holes */
                lo = hi = 1 + (uint64_t)op * 2 % UNIVERSE;
            } else if (pattern == 1) { /* descending */
                lo = hi = UNIVERSE - (uint64_t)op * 2 % UNIVERSE;
            } else {
                lo = 1 + unit_rand(UNIVERSE);
                hi = lo + (unit_rand(4) == 0 ? unit_rand(200) : 0);
                if (hi > UNIVERSE)
                    hi = UNIVERSE;
            }
            if (lo <= dropped)
                lo = dropped + 1;
            if (lo > hi)
                continue;
            CHECK_INT_EQ(seq_set_add(s, lo, hi), 0);
            for (uint64_t i = lo; i <= hi; i++)
                model[i] = true;
            if (pattern == 3 && unit_rand(100) == 0) {
                dropped += unit_rand(400);
                seq_set_drop_through(s, dropped);
                for (uint64_t i = 1; i <= dropped && i <= UNIVERSE; i++)
                    model[i] = false;
            }
            if (op % 500 == 499)
                check_against_model(s);
        }
        check_against_model(s);
        seq_set_drop_through(s, UNIVERSE);
        CHECK_INT_EQ(seq_set_count(s), 0);
        CHECK_INT_EQ(seq_set_ranges(s), 0);
        CHECK(!seq_set_contains(s, 1));
        CHECK_INT_EQ(seq_set_add(s, 3, 3), 0); /* usable after emptying */
        CHECK(seq_set_contains(s, 3));
        seq_set_free(s);
    }
}

/* In-order seqs above one missing seq are one range however many there are: what keeps the
 * tracker small while one event is never acked. */
static void test_in_order_is_one_range(void)
{
    struct seq_set *s = seq_set_new();
    for (uint64_t i = 2; i <= 1000000; i++)
        CHECK_INT_EQ(seq_set_add(s, i, i), 0);
    CHECK_INT_EQ(seq_set_ranges(s), 1);
    CHECK_INT_EQ(seq_set_count(s), 999999);
    CHECK(!seq_set_contains(s, 1));
    CHECK_INT_EQ(seq_set_add(s, 1, 1), 0);
    CHECK_INT_EQ(seq_set_ranges(s), 1);
    seq_set_free(s);
}

static void test_edges(void)
{
    struct seq_set *s = seq_set_new();
    CHECK_INT_EQ(seq_set_add(s, 0, 5), -EINVAL);
    CHECK_INT_EQ(seq_set_add(s, 7, 6), -EINVAL);
    CHECK_INT_EQ(seq_set_add(s, UINT64_MAX, UINT64_MAX), 0);
    CHECK_INT_EQ(seq_set_add(s, 1, UINT64_MAX - 1), 0);
    CHECK_INT_EQ(seq_set_ranges(s), 1);
    CHECK_INT_EQ(seq_set_count(s), UINT64_MAX);
    seq_set_drop_through(s, UINT64_MAX - 1);
    CHECK_INT_EQ(seq_set_count(s), 1);
    CHECK(seq_set_contains(s, UINT64_MAX));
    seq_set_drop_through(s, UINT64_MAX);
    CHECK_INT_EQ(seq_set_count(s), 0);
    /* one range swallowing many, across chunks */
    for (uint64_t i = 10; i < 10000; i += 2)
        CHECK_INT_EQ(seq_set_add(s, i, i), 0);
    CHECK_INT_EQ(seq_set_ranges(s), 4995);
    CHECK_INT_EQ(seq_set_add(s, 5, 20000), 0);
    CHECK_INT_EQ(seq_set_ranges(s), 1);
    CHECK_INT_EQ(seq_set_count(s), 19996);
    CHECK_INT_EQ(seq_set_reserve(s), 0);
    seq_set_free(s);
    seq_set_free(NULL);
}

int main(void)
{
    RUN(test_random_against_model);
    RUN(test_in_order_is_one_range);
    RUN(test_edges);
    return 0;
}
