/* test_asset_table: the live-asset table against a plain array model over random operations
 * (enough ids to make it grow), and the rules: keys never reused, a renewed asset keeps its
 * last offset, a removed one forgets it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "asset_table.h"
#include "unit.h"

#define IDS 3000

static struct {
    uint64_t key; /* 0: not live */
    bool delivered;
    uint64_t last;
} model[IDS];

static void id_of(unsigned i, char *buf, size_t size)
{
    snprintf(buf, size, "asset-%u", i);
}

static void check_all(const struct asset_table *t)
{
    size_t live = 0;
    char id[32];

    for (unsigned i = 0; i < IDS; i++) {
        uint64_t off = 0;
        id_of(i, id, sizeof(id));
        CHECK(asset_table_key(t, id) == model[i].key);
        bool has = asset_table_last_offset(t, id, &off);
        CHECK(has == (model[i].key && model[i].delivered));
        if (has)
            CHECK(off == model[i].last);
        live += model[i].key != 0;
    }
    CHECK_INT_EQ(asset_table_count(t), live);
}

static void test_model(void)
{
    struct asset_table *t = asset_table_new();
    uint64_t max_key = 0;
    char id[32];

    CHECK(t != NULL);
    for (int step = 0; step < 200000; step++) {
        unsigned i = (unsigned)unit_rand(IDS);
        id_of(i, id, sizeof(id));
        switch (unit_rand(8)) {
        case 0:
        case 1:
        case 2: { /* add */
            int r = asset_table_add(t, id);
            CHECK_INT_EQ(r, model[i].key ? 0 : 1);
            if (r == 1) {
                model[i].key = asset_table_key(t, id);
                CHECK(model[i].key > max_key); /* never reused */
                max_key = model[i].key;
                model[i].delivered = false;
            }
            break;
        }
        case 3: { /* renew */
            uint64_t k = asset_table_renew(t, id);
            if (!model[i].key) {
                CHECK(k == 0);
            } else {
                CHECK(k > max_key);
                max_key = k;
                model[i].key = k; /* the last offset stays */
            }
            break;
        }
        case 4: /* remove */
            asset_table_remove(t, id);
            model[i].key = 0;
            model[i].delivered = false;
            break;
        default: { /* deliver */
            uint64_t off = unit_rand(1u << 20);
            asset_table_set_last_offset(t, id, off);
            if (model[i].key) {
                model[i].delivered = true;
                model[i].last = off;
            }
            break;
        }
        }
        if (step % 20000 == 0)
            check_all(t);
    }
    check_all(t);
    asset_table_free(t);
}

static void test_edges(void)
{
    struct asset_table *t = asset_table_new();
    uint64_t off = 7;

    CHECK(t != NULL);
    CHECK(asset_table_key(t, "a") == 0);
    CHECK(!asset_table_last_offset(t, "a", &off));
    CHECK_INT_EQ(off, 7);       /* untouched */
    asset_table_remove(t, "a"); /* not live: nothing */
    CHECK(asset_table_renew(t, "a") == 0);
    asset_table_set_last_offset(t, "a", 3); /* not live: nothing */
    CHECK(!asset_table_last_offset(t, "a", &off));

    CHECK_INT_EQ(asset_table_add(t, "a"), 1);
    uint64_t k1 = asset_table_key(t, "a");
    CHECK(k1 != 0);
    asset_table_set_last_offset(t, "a", 5);
    uint64_t k2 = asset_table_renew(t, "a");
    CHECK(k2 > k1);
    CHECK(asset_table_last_offset(t, "a", &off) && off == 5);
    asset_table_remove(t, "a");
    CHECK_INT_EQ(asset_table_add(t, "a"), 1);
    CHECK(asset_table_key(t, "a") > k2);
    CHECK(!asset_table_last_offset(t, "a", &off));
    CHECK_INT_EQ(asset_table_count(t), 1);
    asset_table_free(t);
    asset_table_free(NULL);
}

int main(void)
{
    RUN(test_edges);
    RUN(test_model);
    return 0;
}
