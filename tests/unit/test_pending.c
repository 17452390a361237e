/* Unit tests of pending: fixed cases, then random operation sequences checked against a naive
 * model (an array scanned on every query). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "pending.h"
#include "unit.h"

/* Regression: one event never acked made the ring keep every later acked entry, so memory grew
 * with every event delivered (1M acks: 1M slots, 32 MiB). */
static void test_stuck_event_keeps_memory_bounded(void)
{
    struct pending *p = pending_new(0);
    CHECK(p);
    CHECK_INT_EQ(pending_add(p, 1, 7, 0, 0), 0); /* stuck: never acked */
    for (uint64_t seq = 2; seq < 1000000; seq++) {
        CHECK_INT_EQ(pending_add(p, seq, 7, seq - 1, 0), 0);
        CHECK_INT_EQ(pending_remove(p, seq), 0);
    }
    CHECK_INT_EQ(pending_count(p), 1);
    CHECK_INT_EQ(pending_watermark(p), 0);
    CHECK(pending_ring_capacity(p) <= 128);
    uint64_t key = 0, off = 99;
    CHECK_INT_EQ(pending_find(p, 1, &key, &off), 0);
    CHECK_INT_EQ(key, 7);
    CHECK_INT_EQ(off, 0);
    /* Compaction keeps order: ack the stuck one, then the watermark jumps to the last seq. */
    CHECK_INT_EQ(pending_add(p, 1000000, 7, 999999, 0), 0);
    CHECK_INT_EQ(pending_remove(p, 1), 0);
    CHECK_INT_EQ(pending_watermark(p), 999999);
    CHECK_INT_EQ(pending_remove(p, 1000000), 0);
    CHECK_INT_EQ(pending_watermark(p), 1000000);
    pending_free(p);
}

static void test_empty(void)
{
    struct pending *p = pending_new(41);
    CHECK(p);
    CHECK_INT_EQ(pending_count(p), 0);
    CHECK_INT_EQ(pending_watermark(p), 41);
    CHECK_INT_EQ(pending_last_seq(p), 41);
    CHECK_INT_EQ(pending_remove(p, 42), -ENOENT);
    CHECK_INT_EQ(pending_find(p, 41, NULL, NULL), -ENOENT);
    CHECK_INT_EQ(pending_add(p, 41, 1, 0, 0), -EINVAL); /* not above the start */
    pending_advance(p, 45);
    CHECK_INT_EQ(pending_watermark(p), 45);
    pending_advance(p, 43); /* going back is ignored */
    CHECK_INT_EQ(pending_watermark(p), 45);
    pending_free(p);
    pending_free(NULL);
}

static void test_out_of_order_acks(void)
{
    struct pending *p = pending_new(0);
    uint64_t key, off;
    CHECK_INT_EQ(pending_add(p, 1, 7, 0, 0), 0);
    CHECK_INT_EQ(pending_add(p, 2, 7, 1, 0), 0);
    pending_advance(p, 3); /* an asset record */
    CHECK_INT_EQ(pending_add(p, 5, 8, 0, 0), 0);
    CHECK_INT_EQ(pending_add(p, 5, 8, 1, 0), -EINVAL);
    CHECK_INT_EQ(pending_count(p), 3);
    CHECK_INT_EQ(pending_watermark(p), 0);
    CHECK_INT_EQ(pending_find(p, 2, &key, &off), 0);
    CHECK_INT_EQ(key, 7);
    CHECK_INT_EQ(off, 1);
    CHECK_INT_EQ(pending_remove(p, 2), 0);
    CHECK_INT_EQ(pending_remove(p, 2), -ENOENT);
    CHECK_INT_EQ(pending_watermark(p), 0); /* 1 still pending */
    CHECK_INT_EQ(pending_remove(p, 1), 0);
    CHECK_INT_EQ(pending_watermark(p), 4); /* 5 is the oldest pending */
    CHECK_INT_EQ(pending_count(p), 1);
    CHECK_INT_EQ(pending_drop_asset(p, 8), 1);
    CHECK_INT_EQ(pending_count(p), 0);
    CHECK_INT_EQ(pending_watermark(p), 5);
    CHECK_INT_EQ(pending_find(p, 5, NULL, NULL), -ENOENT);
    pending_free(p);
}

/* The model: every event ever added, with its state. */
struct model_ev {
    uint64_t seq, key, offset;
    bool pending;
};

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void model_check(const struct pending *p, const struct model_ev *m, size_t n, uint64_t last)
{
    size_t count = 0;
    uint64_t wm = last;
    bool found_oldest = false;
    for (size_t i = 0; i < n; i++) {
        if (!m[i].pending)
            continue;
        count++;
        if (!found_oldest) {
            wm = m[i].seq - 1;
            found_oldest = true;
        }
    }
    CHECK_INT_EQ(pending_count(p), count);
    CHECK_INT_EQ(pending_watermark(p), wm);
    CHECK_INT_EQ(pending_last_seq(p), last);
}

static void test_random_vs_model(void)
{
    enum { ROUNDS = 40, OPS = 6000, KEYS = 5 };
    static struct model_ev m[OPS];
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t start = rnd() % 1000;
        struct pending *p = pending_new(start);
        CHECK(p);
        size_t n = 0;
        uint64_t last = start;
        uint64_t offsets[KEYS] = {0};
        /* Rounds differ in how eagerly they ack, so the window both grows and drains. */
        unsigned ack_weight = 20 + (unsigned)(rnd() % 60);
        for (int op = 0; op < OPS; op++) {
            unsigned r = (unsigned)(rnd() % 100);
            if (r < 100 - ack_weight - 6) {
                uint64_t seq = last + 1 + rnd() % 3; /* seq is global: gaps are normal */
                uint64_t key = rnd() % KEYS;
                CHECK_INT_EQ(pending_add(p, seq, key, offsets[key], 0), 0);
                m[n++] = (struct model_ev){seq, key, offsets[key]++, true};
                last = seq;
            } else if (r < 100 - ack_weight - 1) {
                last += 1 + rnd() % 2;
                pending_advance(p, last);
            } else if (r < 99 && n > 0) {
                /* Ack a random event: sometimes one already acked or never added. */
                size_t i = (size_t)(rnd() % n);
                int want = m[i].pending ? 0 : -ENOENT;
                CHECK_INT_EQ(pending_remove(p, m[i].seq), want);
                m[i].pending = false;
                if (rnd() % 10 == 0)
                    CHECK_INT_EQ(pending_remove(p, last + 1 + rnd() % 5), -ENOENT);
            } else {
                uint64_t key = rnd() % KEYS;
                size_t dropped = 0;
                for (size_t i = 0; i < n; i++)
                    if (m[i].pending && m[i].key == key) {
                        m[i].pending = false;
                        dropped++;
                    }
                CHECK_INT_EQ(pending_drop_asset(p, key), dropped);
            }
            model_check(p, m, n, last);
            if (n > 0) {
                size_t i = (size_t)(rnd() % n);
                uint64_t key = 99, off = 99;
                int r2 = pending_find(p, m[i].seq, &key, &off);
                if (m[i].pending) {
                    CHECK_INT_EQ(r2, 0);
                    CHECK_INT_EQ(key, m[i].key);
                    CHECK_INT_EQ(off, m[i].offset);
                } else {
                    CHECK_INT_EQ(r2, -ENOENT);
                }
            }
        }
        /* Drain in random order, then sweep what is left: the watermark ends at the last
         * seq. */
        for (size_t k = 0; k < n; k++) {
            size_t i = (size_t)(rnd() % n);
            if (m[i].pending)
                CHECK_INT_EQ(pending_remove(p, m[i].seq), 0);
            m[i].pending = false;
        }
        for (size_t i = 0; i < n; i++)
            if (m[i].pending)
                CHECK_INT_EQ(pending_remove(p, m[i].seq), 0);
        CHECK_INT_EQ(pending_count(p), 0);
        CHECK_INT_EQ(pending_watermark(p), last);
        pending_free(p);
    }
}

/* A large window acked newest first: the ring and the hash both grow and shrink. */
static void test_large_reverse(void)
{
    enum { N = 200000 };
    struct pending *p = pending_new(0);
    for (uint64_t s = 1; s <= N; s++)
        CHECK_INT_EQ(pending_add(p, s * 2, s % 3, s, 0), 0);
    CHECK_INT_EQ(pending_count(p), N);
    for (uint64_t s = N; s >= 2; s--) {
        CHECK_INT_EQ(pending_remove(p, s * 2), 0);
        CHECK_INT_EQ(pending_watermark(p), 1);
    }
    CHECK_INT_EQ(pending_remove(p, 2), 0);
    CHECK_INT_EQ(pending_watermark(p), 2 * N);
    pending_free(p);
}

/* The window counts the sizes of its events: what they add, an ack and an asset's deletion
 * take away (the follower's byte budget rests on it). */
static void test_bytes(void)
{
    struct pending *p = pending_new(0);
    CHECK_INT_EQ(pending_bytes(p), 0);
    CHECK_INT_EQ(pending_add(p, 1, 7, 0, 100), 0);
    CHECK_INT_EQ(pending_add(p, 2, 8, 0, 2000), 0);
    CHECK_INT_EQ(pending_add(p, 3, 7, 1, 30000), 0);
    CHECK_INT_EQ(pending_bytes(p), 32100);
    CHECK_INT_EQ(pending_remove(p, 2), 0);
    CHECK_INT_EQ(pending_bytes(p), 30100);
    CHECK_INT_EQ(pending_remove(p, 2), -ENOENT);
    CHECK_INT_EQ(pending_bytes(p), 30100);
    CHECK_INT_EQ(pending_drop_asset(p, 7), 2);
    CHECK_INT_EQ(pending_bytes(p), 0);
    pending_free(p);
}

int main(void)
{
    RUN(test_stuck_event_keeps_memory_bounded);
    RUN(test_empty);
    RUN(test_out_of_order_acks);
    RUN(test_random_vs_model);
    RUN(test_large_reverse);
    RUN(test_bytes);
    return 0;
}
