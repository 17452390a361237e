/* Unit tests of dispatch/queue.c: per-asset order, one item of an asset at a time, backoff,
 * claims held by others, parking, rescans, and a model-based run against a simple reference. */
#include <math.h>
#include <stdbool.h>

#include "queue.h"
#include "unit.h"

static const struct dq_policy policy = {
    .retries = 3, .backoff_s = 1, .backoff_max_s = 3, .held_s = 0.1};

static struct dq *new_queue(const struct dq_policy *p)
{
    struct dq *q = dq_new(p);
    CHECK(q);
    return q;
}

/* Runs the next item at now to completion with r; returns its seq (callbacks: 0). */
static uint64_t run_next(struct dq *q, double now, enum dq_result r)
{
    struct dq_item *it = dq_next(q, now);
    CHECK(it);
    uint64_t seq = dq_item_seq(it);
    dq_done(q, it, r, now);
    return seq;
}

static void test_order_within_asset(void)
{
    struct dq *q = new_queue(&policy);
    CHECK_INT_EQ(dq_add_event(q, "e5", "a", 5), 1);
    CHECK_INT_EQ(dq_add_event(q, "e2", "a", 2), 1);
    CHECK_INT_EQ(dq_add_event(q, "e9", "a", 9), 1);
    CHECK_INT_EQ(dq_add_event(q, "e2", "a", 2), 0); /* known */
    CHECK_INT_EQ(dq_add_callback(q, "a", DQ_ASSET_DELETED), 0);
    CHECK_INT_EQ(dq_add_callback(q, "a", DQ_ASSET_CREATED), 0);

    struct dq_item *it = dq_next(q, 0);
    CHECK_INT_EQ(dq_item_kind(it), DQ_ASSET_CREATED);
    CHECK_STR_EQ(dq_item_asset(it), "a");
    CHECK(dq_item_name(it) == NULL);
    CHECK(dq_next(q, 0) == NULL); /* one at a time per asset */
    dq_done(q, it, DQ_OK, 0);
    CHECK_INT_EQ(run_next(q, 0, DQ_OK), 2);
    CHECK_INT_EQ(run_next(q, 0, DQ_OK), 5);
    CHECK_INT_EQ(run_next(q, 0, DQ_OK), 9);
    it = dq_next(q, 0);
    CHECK_INT_EQ(dq_item_kind(it), DQ_ASSET_DELETED);
    dq_done(q, it, DQ_OK, 0);
    CHECK(dq_next(q, 0) == NULL);
    struct dq_counts c;
    dq_counts(q, &c);
    CHECK_INT_EQ(c.queued + c.running + c.given_up + c.parked, 0);
    dq_free(q);
}

static void test_assets_in_parallel(void)
{
    struct dq *q = new_queue(&policy);
    dq_add_event(q, "a1", "a", 1);
    dq_add_event(q, "a3", "a", 3);
    dq_add_event(q, "b2", "b", 2);
    struct dq_item *x = dq_next(q, 0), *y = dq_next(q, 0);
    CHECK(x && y);
    CHECK_STR_EQ(dq_item_name(x), "a1");
    CHECK_STR_EQ(dq_item_name(y), "b2");
    CHECK(dq_next(q, 0) == NULL); /* a3 waits for a1 */
    CHECK_INT_EQ(dq_add_event(q, "a0", "a", 0), 1);
    CHECK(dq_next(q, 0) == NULL); /* also when more come */
    dq_done(q, y, DQ_OK, 0);
    CHECK(dq_next(q, 0) == NULL);
    dq_done(q, x, DQ_OK, 0);
    CHECK_INT_EQ(run_next(q, 0, DQ_OK), 0);
    CHECK_INT_EQ(run_next(q, 0, DQ_OK), 3);
    dq_free(q);
}

static void test_twin_order_across_assets(void)
{
    struct dq *q = new_queue(&policy);
    static const char *const assets[] = {"a", "b", "a", "c", "c", "b", "a", "a", "c"};
    for (int i = 0; i < 9; i++) {
        char name[8];
        snprintf(name, sizeof(name), "e%d", i + 1);
        CHECK_INT_EQ(dq_add_event(q, name, assets[i], (uint64_t)(i + 1)), 1);
    }
    for (uint64_t seq = 1; seq <= 9; seq++)
        CHECK_INT_EQ(run_next(q, 0, DQ_OK), seq); /* one job: the twin's order */
    dq_free(q);
}

static void test_backoff_and_give_up(void)
{
    struct dq *q = new_queue(&policy);
    dq_add_event(q, "e1", "a", 1);
    dq_add_event(q, "e2", "a", 2);
    struct dq_item *it = dq_next(q, 10);
    CHECK(!dq_done(q, it, DQ_FAILED, 10)); /* attempt 1: retry after 1 s */
    CHECK_INT_EQ(dq_item_attempts(it), 1);
    CHECK(dq_next_wakeup(q) == 11);
    CHECK(dq_next(q, 10.9) == NULL); /* e2 waits behind e1 */
    it = dq_next(q, 11);
    CHECK_STR_EQ(dq_item_name(it), "e1");
    CHECK(!dq_done(q, it, DQ_FAILED, 11)); /* attempt 2: 2 s */
    CHECK(dq_next_wakeup(q) == 13);
    CHECK(dq_next(q, 12.9) == NULL);
    it = dq_next(q, 13);
    CHECK(dq_done(q, it, DQ_FAILED, 13)); /* attempt 3 of 3: given up, reported */
    CHECK(isinf(dq_next_wakeup(q)));
    CHECK_INT_EQ(run_next(q, 13, DQ_OK), 2); /* the next one runs at once */
    struct dq_counts c;
    dq_counts(q, &c);
    CHECK_INT_EQ(c.given_up, 1);
    CHECK_INT_EQ(dq_add_event(q, "e1", "a", 1), 0); /* a rescan does not bring it back */
    CHECK(dq_next(q, 100) == NULL);
    dq_free(q);
}

static void test_backoff_cap_and_unbounded(void)
{
    struct dq_policy p = policy;
    p.retries = 0;
    struct dq *q = new_queue(&p);
    dq_add_event(q, "e1", "a", 1);
    double now = 0, delays[] = {1, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    for (int i = 0; i < 10; i++) {
        struct dq_item *it = dq_next(q, now);
        CHECK(it);
        CHECK(!dq_done(q, it, DQ_FAILED, now));
        CHECK(dq_next_wakeup(q) == now + delays[i]);
        now += delays[i];
    }
    dq_free(q);
}

static void test_held_and_removed_head(void)
{
    struct dq *q = new_queue(&policy);
    dq_add_event(q, "e1", "a", 1);
    dq_add_event(q, "e2", "a", 2);
    struct dq_item *it = dq_next(q, 0);
    CHECK(!dq_done(q, it, DQ_HELD, 0));
    CHECK_INT_EQ(dq_item_attempts(it), 0); /* a held claim is no attempt */
    CHECK(dq_next(q, 0.05) == NULL);
    dq_remove(q, "e1"); /* the holder acked it: e2 may run now */
    CHECK_INT_EQ(run_next(q, 0.05, DQ_OK), 2);
    dq_free(q);
}

static void test_removed_while_running(void)
{
    struct dq *q = new_queue(&policy);
    dq_add_event(q, "e1", "a", 1);
    struct dq_item *it = dq_next(q, 0);
    dq_remove(q, "e1");
    CHECK(dq_item_gone(it));
    CHECK(!dq_done(q, it, DQ_FAILED, 0)); /* gone: no retry */
    CHECK(dq_next(q, 100) == NULL);
    CHECK_INT_EQ(dq_add_event(q, "e1", "a", 1), 1); /* forgotten */
    dq_free(q);
}

static void test_parking(void)
{
    struct dq *q = new_queue(&policy);
    dq_add_event(q, "e1", "a", 1);
    dq_add_event(q, "e2", "a", 2);
    struct dq_item *it = dq_next(q, 0);
    CHECK(dq_done(q, it, DQ_NO_HANDLER, 0)); /* reported once */
    CHECK_INT_EQ(run_next(q, 0, DQ_OK), 2);  /* the asset goes on */
    struct dq_counts c;
    dq_counts(q, &c);
    CHECK_INT_EQ(c.parked, 1);
    dq_unpark(q);
    it = dq_next(q, 0);
    CHECK_STR_EQ(dq_item_name(it), "e1");
    CHECK(!dq_done(q, it, DQ_NO_HANDLER, 0)); /* not reported again */
    dq_remove(q, "e1");
    dq_counts(q, &c);
    CHECK_INT_EQ(c.parked, 0);
    dq_free(q);
}

static int gone_calls;
static void on_gone(const char *asset, void *arg)
{
    CHECK_STR_EQ(asset, "b");
    CHECK_INT_EQ(dq_add_callback(arg, asset, DQ_ASSET_DELETED), 0);
    gone_calls++;
}

static void test_rescan(void)
{
    struct dq *q = new_queue(&policy);
    CHECK_INT_EQ(dq_asset_seen(q, "a"), 1);
    CHECK_INT_EQ(dq_asset_seen(q, "a"), 0);
    CHECK_INT_EQ(dq_asset_seen(q, "b"), 1);
    dq_add_event(q, "e1", "a", 1);
    dq_add_event(q, "e2", "a", 2);
    dq_scan_begin(q);
    CHECK_INT_EQ(dq_asset_seen(q, "a"), 0);
    CHECK_INT_EQ(dq_add_event(q, "e2", "a", 2), 0);
    CHECK_INT_EQ(dq_add_event(q, "e3", "a", 3), 1);
    dq_scan_end(q, true, on_gone, q);
    CHECK_INT_EQ(gone_calls, 1);
    CHECK_INT_EQ(dq_asset_gone(q, "b"), 0); /* already reported */
    CHECK_INT_EQ(dq_asset_gone(q, "a"), 1);
    CHECK_INT_EQ(run_next(q, 0, DQ_OK), 0); /* b's deleted callback (callbacks go first) */
    CHECK_INT_EQ(run_next(q, 0, DQ_OK), 2); /* e1 was acked while unseen */
    CHECK_INT_EQ(run_next(q, 0, DQ_OK), 3);
    CHECK(dq_next(q, 0) == NULL);
    dq_free(q);
}

/* Random adds, removes, runs and results against the rules: never two items of an asset at
 * once, each asset's successful events in seq order, everything accounted for at the end. */
static void test_model(void)
{
    enum { ASSETS = 5, EVENTS = 400, SLOTS = 3 };
    struct dq_policy p = {.retries = 0, .backoff_s = 0.5, .backoff_max_s = 2, .held_s = 0.1};
    struct dq *q = new_queue(&p);
    struct dq_item *running[SLOTS] = {0};
    uint64_t last_ok[ASSETS] = {0};
    bool busy[ASSETS] = {0}, done[EVENTS + 1] = {0};
    int added = 0, finished = 0;
    double now = 0;

    while (finished < EVENTS) {
        now += 0.05;
        if (added < EVENTS && unit_rand(3) == 0) {
            added++;
            char name[32], asset[8];
            snprintf(name, sizeof(name), "e%d", added);
            snprintf(asset, sizeof(asset), "a%d", (int)unit_rand(ASSETS));
            CHECK_INT_EQ(dq_add_event(q, name, asset, (uint64_t)added), 1);
        }
        for (int s = 0; s < SLOTS; s++) {
            if (!running[s]) {
                running[s] = dq_next(q, now);
                if (running[s]) {
                    int a = dq_item_asset(running[s])[1] - '0';
                    CHECK(!busy[a]);
                    busy[a] = true;
                }
                continue;
            }
            struct dq_item *it = running[s];
            int a = dq_item_asset(it)[1] - '0';
            uint64_t seq = dq_item_seq(it);
            enum dq_result r = (enum dq_result)unit_rand(3); /* OK, FAILED or HELD */
            if (r == DQ_OK) {
                CHECK(seq > last_ok[a]);
                last_ok[a] = seq;
                done[seq] = true;
                finished++;
            }
            busy[a] = false;
            dq_done(q, it, r, now);
            running[s] = NULL;
        }
    }
    for (int i = 1; i <= EVENTS; i++)
        CHECK(done[i]);
    struct dq_counts c;
    dq_counts(q, &c);
    CHECK_INT_EQ(c.queued + c.running + c.given_up + c.parked, 0);
    dq_free(q);
}

int main(void)
{
    RUN(test_order_within_asset);
    RUN(test_assets_in_parallel);
    RUN(test_twin_order_across_assets);
    RUN(test_backoff_and_give_up);
    RUN(test_backoff_cap_and_unbounded);
    RUN(test_held_and_removed_head);
    RUN(test_removed_while_running);
    RUN(test_parking);
    RUN(test_rescan);
    RUN(test_model);
    return 0;
}
