/* test_tree: the node state machine (PENDING -> VISIBLE -> ACKING -> gone, or back to VISIBLE)
 * and the counters against a model over random transitions, then the lifetime of nodes the
 * kernel still holds. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_file.h"
#include "tree.h"
#include "unit.h"

#define ASSETS  6
#define OFFSETS 40
#define FIXED   5 /* root, assets, .twinfs, status, events */

enum mstate { M_NONE, M_PENDING, M_VISIBLE, M_ACKING };

struct masset {
    enum mstate state; /* M_NONE, M_PENDING or M_VISIBLE */
    uint64_t order;    /* creation order among the assets */
    enum mstate ev[OFFSETS];
};

static struct masset model[ASSETS];
static uint64_t created;

static void asset_name(int i, char *buf, size_t size)
{
    snprintf(buf, size, "asset-%d", i);
}

static struct node *find_asset(struct tree *t, int i)
{
    char name[32];
    asset_name(i, name, sizeof(name));
    return tree_asset_find(t, name);
}

static struct node *find_event(struct tree *t, int i, uint64_t off)
{
    char fname[300];
    struct node *a = find_asset(t, i);
    CHECK(event_file_name(off, "Ev", fname, sizeof(fname)) > 0);
    return a ? tree_event_find(t, a->asset.events_dir, fname) : NULL;
}

static struct node *add_asset(struct tree *t, int i)
{
    char name[32];
    bool is_new = false;
    asset_name(i, name, sizeof(name));
    struct node *a = NULL;
    CHECK_INT_EQ(tree_asset_get_or_add(t, name, &is_new, &a), 0);
    CHECK(a != NULL);
    CHECK(is_new == (model[i].state == M_NONE));
    if (is_new) {
        model[i].state = M_PENDING;
        model[i].order = created++;
    }
    return a;
}

static void add_event(struct tree *t, int i, uint64_t off)
{
    struct node *a = add_asset(t, i);
    char fname[300];
    struct node *n = NULL;
    CHECK(event_file_name(off, "Ev", fname, sizeof(fname)) > 0);
    char flat[64];
    uint64_t seq = (uint64_t)i * OFFSETS + off + 1;
    snprintf(flat, sizeof(flat), "%020llu-asset-%d-Ev.json", (unsigned long long)seq, i);
    struct node_event ev = {
        .seq = seq, .offset = off, .type_name = strdup("Ev"), .flat_name = strdup(flat)};
    int r = tree_event_add(t, a, fname, &ev, &n);
    if (model[i].ev[off] != M_NONE) {
        CHECK_INT_EQ(r, -EEXIST);
        free(ev.type_name); /* not taken on failure */
        free(ev.flat_name);
        return;
    }
    CHECK_INT_EQ(r, 0);
    CHECK(n != NULL && n->state == NODE_PENDING && n->event.offset == off);
    model[i].ev[off] = M_PENDING;
}

static void show(struct tree *t, int i, int off) /* off < 0: the asset */
{
    struct node *n = off < 0 ? find_asset(t, i) : find_event(t, i, (uint64_t)off);
    enum mstate *m = off < 0 ? &model[i].state : &model[i].ev[off];
    if (!n) {
        CHECK(*m == M_NONE);
        return;
    }
    int r = tree_show(t, n);
    if (*m != M_PENDING)
        CHECK_INT_EQ(r, -EEXIST);
    else if (off >= 0 && model[i].state != M_VISIBLE)
        CHECK_INT_EQ(r, -ENOENT); /* an event is shown after its asset */
    else
        CHECK_INT_EQ(r, 0);
    if (r == 0)
        *m = M_VISIBLE;
}

static void ack(struct tree *t, int i, uint64_t off, int how) /* 0: begin, 1: fails, 2: done */
{
    enum mstate *m = &model[i].ev[off];
    if (how == 0) {
        struct node *n = find_event(t, i, off);
        if (!n) {
            CHECK(*m == M_NONE);
            return;
        }
        int r = tree_ack_begin(t, n);
        CHECK_INT_EQ(r, *m == M_VISIBLE ? 0 : -ENOENT);
        if (r == 0)
            *m = M_ACKING;
        return;
    }
    struct node *n = find_event(t, i, off);
    if (n && n->state == NODE_ACKING)
        CHECK_INT_EQ(tree_ack_end(t, n, NODE_LINK_MAIN, how == 2), how == 2 ? 0 : NODE_LINK_MAIN);
    if (*m == M_ACKING)
        *m = how == 2 ? M_NONE : M_VISIBLE;
}

/* What the materializer does after a drop: every name the kernel had goes. */
static void remove_names(struct tree *t, struct node *a)
{
    struct node *events = a->asset.events_dir; /* held by its name, as a is */
    uint64_t key = 0;
    for (struct node *n = tree_dir_next(t, events, 0, &key); n;
         n = tree_dir_next(t, events, key + 1, &key)) {
        CHECK(n->state == NODE_REMOVED && n->links != 0); /* only names the kernel has stay */
        tree_name_gone(t, n, NODE_LINK_MAIN);
    }
    tree_name_gone(t, a->asset.events_dir, NODE_LINK_MAIN);
    tree_name_gone(t, a->asset.t2_dir, NODE_LINK_MAIN);
    tree_name_gone(t, a, NODE_LINK_MAIN); /* may free a */
}

static void drop(struct tree *t, int i)
{
    struct node *a = find_asset(t, i);
    CHECK((a != NULL) == (model[i].state != M_NONE));
    if (a) {
        bool linked = a->links != 0; /* else nothing holds it: the drop may free it */
        tree_asset_drop(t, a);
        if (linked)
            remove_names(t, a);
    }
    memset(&model[i], 0, sizeof(model[i]));
}

static void check_asset(struct tree *t, int i, const struct node *a)
{
    const struct masset *m = &model[i];
    uint64_t key = 0, want = 0;
    CHECK(a->kind == NODE_ASSET);
    CHECK(node_shown(a) == (m->state == M_VISIBLE));
    CHECK(node_shown(a->asset.events_dir) == (m->state == M_VISIBLE));
    CHECK(node_shown(a->asset.t2_dir) == (m->state == M_VISIBLE));
    for (struct node *n = tree_dir_next(t, a->asset.events_dir, 0, &key); n;
         n = tree_dir_next(t, a->asset.events_dir, key + 1, &key)) {
        while (want < OFFSETS && m->ev[want] == M_NONE)
            want++;
        CHECK_INT_EQ(key, want); /* in offset order, none missing, none extra */
        static const enum node_state of[] = {
            [M_PENDING] = NODE_PENDING, [M_VISIBLE] = NODE_VISIBLE, [M_ACKING] = NODE_ACKING};
        CHECK(n->state == of[m->ev[want]]);
        CHECK(find_event(t, i, want) == n);
        want++;
    }
    while (want < OFFSETS)
        CHECK(m->ev[want++] == M_NONE);
}

/* The counters, the node count (nothing leaks, nothing held is freed), the assets in
 * creation order and every asset's events. */
static void check_against_model(struct tree *t)
{
    size_t visible_events = 0, visible_assets = 0, nodes = FIXED, assets = 0;
    for (int i = 0; i < ASSETS; i++) {
        if (model[i].state == M_NONE) {
            CHECK(find_asset(t, i) == NULL);
            continue;
        }
        assets++;
        nodes += 3; /* the asset, its events/ and t2/ */
        visible_assets += model[i].state == M_VISIBLE;
        for (int o = 0; o < OFFSETS; o++) {
            nodes += model[i].ev[o] != M_NONE;
            visible_events += model[i].ev[o] == M_VISIBLE;
        }
        check_asset(t, i, find_asset(t, i));
    }
    CHECK_INT_EQ(t->visible_events, visible_events);
    CHECK_INT_EQ(t->visible_assets, visible_assets);
    CHECK_INT_EQ(t->ino_count, nodes);
    uint64_t key = 0, last = 0;
    size_t listed = 0;
    for (struct node *a = tree_dir_next(t, t->assets_dir, 0, &key); a;
         a = tree_dir_next(t, t->assets_dir, key + 1, &key)) {
        int i = a->name[6] - '0';
        CHECK(listed == 0 || model[i].order > last);
        last = model[i].order;
        listed++;
    }
    CHECK_INT_EQ(listed, assets);
}

static void test_random_against_model(void)
{
    for (int round = 0; round < 20; round++) {
        struct tree t;
        CHECK_INT_EQ(tree_init(&t, true), 0);
        memset(model, 0, sizeof(model));
        for (int op = 0; op < 3000; op++) {
            int i = (int)unit_rand(ASSETS);
            uint64_t off = unit_rand(OFFSETS);
            uint64_t what = unit_rand(100);
            if (what < 3)
                drop(&t, i);
            else if (what < 8)
                add_asset(&t, i);
            else if (what < 35)
                add_event(&t, i, off);
            else if (what < 45)
                show(&t, i, -1);
            else if (what < 65)
                show(&t, i, (int)off);
            else if (what < 80)
                ack(&t, i, off, 0);
            else
                ack(&t, i, off, what < 85 ? 1 : 2);
            check_against_model(&t);
        }
        tree_destroy(&t);
    }
}

/* A node the kernel holds (nlookup) outlives its ack and its asset's deletion; forget frees
 * it and then what waited for it. */
static void test_held_nodes(void)
{
    struct tree t;
    CHECK_INT_EQ(tree_init(&t, true), 0);
    memset(model, 0, sizeof(model));
    add_event(&t, 0, 5);
    add_event(&t, 0, 6);
    show(&t, 0, -1);
    show(&t, 0, 5);
    show(&t, 0, 6);
    struct node *n5 = find_event(&t, 0, 5), *n6 = find_event(&t, 0, 6);
    uint64_t ino5 = n5->ino, ino6 = n6->ino;
    n5->nlookup = 2;
    n6->nlookup = 1;
    ack(&t, 0, 5, 0);
    ack(&t, 0, 5, 2);
    CHECK_INT_EQ(t.visible_events, 1);
    CHECK_INT_EQ(t.ino_count, FIXED + 3 + 2); /* acked, but held */
    CHECK(tree_get(&t, ino5) == n5 && n5->state == NODE_REMOVED);
    CHECK(find_event(&t, 0, 5) == NULL);
    tree_forget(&t, n5, 1);
    CHECK(tree_get(&t, ino5) == n5);
    tree_forget(&t, n5, 1);
    CHECK(tree_get(&t, ino5) == NULL);
    CHECK_INT_EQ(t.ino_count, FIXED + 3 + 1);

    struct node *a = find_asset(&t, 0);
    uint64_t asset_ino = a->ino;
    a->nlookup = 1;
    drop(&t, 0);
    CHECK_INT_EQ(t.visible_events, 0);
    CHECK_INT_EQ(t.visible_assets, 0);
    CHECK(find_asset(&t, 0) == NULL);
    CHECK(tree_get(&t, ino6) == n6 && n6->state == NODE_REMOVED);
    CHECK(tree_get(&t, asset_ino) == a); /* held, and its events/ has a live child */
    tree_forget(&t, a, 1);
    CHECK(tree_get(&t, asset_ino) == a); /* still the parent of n6's directory */
    tree_forget(&t, n6, 1);
    CHECK(tree_get(&t, asset_ino) == NULL);
    CHECK_INT_EQ(t.ino_count, FIXED);
    tree_destroy(&t);
}

/* An event with both names: either unlink acks it, the other name stays (for the caller) until
 * it goes through the mount; a deleted asset's names stay until they go too. */
static void test_two_names(void)
{
    struct tree t;
    CHECK_INT_EQ(tree_init(&t, true), 0);
    memset(model, 0, sizeof(model));
    add_event(&t, 0, 1);
    add_event(&t, 0, 2);
    show(&t, 0, -1);
    show(&t, 0, 1);
    show(&t, 0, 2);
    struct node *n1 = find_event(&t, 0, 1), *n2 = find_event(&t, 0, 2);
    CHECK(tree_event_find(&t, t.all_events_dir, n1->event.flat_name) == n1); /* any state */
    CHECK(!node_seen(n1, NODE_LINK_FLAT, false));                            /* not linked yet */
    CHECK_INT_EQ(tree_link_flat(&t, n1), 0);
    CHECK_INT_EQ(tree_link_flat(&t, n1), -ENOENT);
    CHECK(node_seen(n1, NODE_LINK_FLAT, false) && node_seen(n1, NODE_LINK_MAIN, false));
    uint64_t ino1 = n1->ino;
    CHECK_INT_EQ(tree_ack_begin(&t, n1), 0);
    CHECK(!node_seen(n1, NODE_LINK_FLAT, false) && node_seen(n1, NODE_LINK_FLAT, true));
    CHECK_INT_EQ(tree_ack_end(&t, n1, NODE_LINK_FLAT, true), NODE_LINK_MAIN);
    CHECK(n1->state == NODE_REMOVED);
    CHECK(tree_event_find(&t, t.all_events_dir, n1->event.flat_name) == NULL);
    CHECK(tree_event_find(&t, n1->parent, n1->name) == n1); /* for the caller's unlink */
    CHECK(node_seen(n1, NODE_LINK_MAIN, true) && !node_seen(n1, NODE_LINK_MAIN, false));
    tree_name_gone(&t, n1, NODE_LINK_MAIN);
    CHECK(tree_get(&t, ino1) == NULL);

    /* the asset deleted: its shown names stay for the caller, a new asset of that id apart */
    CHECK_INT_EQ(tree_link_flat(&t, n2), 0);
    struct node *a = find_asset(&t, 0);
    tree_asset_drop(&t, a);
    CHECK(find_asset(&t, 0) == NULL);
    CHECK(tree_asset_find_linked(&t, "asset-0") == a && a->state == NODE_REMOVED);
    memset(model, 0, sizeof(model));
    struct node *b = add_asset(&t, 0);
    CHECK(b != a && tree_asset_find_linked(&t, "asset-0") == a);
    CHECK(tree_event_find(&t, t.all_events_dir, n2->event.flat_name) == n2);
    tree_name_gone(&t, n2, NODE_LINK_FLAT);
    CHECK(tree_event_find(&t, t.all_events_dir, n2->event.flat_name) == NULL);
    remove_names(&t, a);
    CHECK(tree_asset_find_linked(&t, "asset-0") == NULL);
    CHECK_INT_EQ(t.ino_count, FIXED + 3); /* b and its directories */
    tree_destroy(&t);
}

int main(void)
{
    RUN(test_two_names);
    RUN(test_held_nodes);
    RUN(test_random_against_model);
    return 0;
}
